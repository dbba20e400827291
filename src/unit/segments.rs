//! Which responses may go through shared memory. libunit gives each shared
//! memory segment it makes for responses (10 MiB) to the router port and the
//! thread it was made for, for good, and makes no more segments than the
//! application's `limits.shm` allows (ten by default). Unit's router has a port
//! per thread, and a thread per CPU: on a machine with more router threads than
//! segments, a response that needs shared memory for a router port that has no
//! segment, when no more can be made, waits for ever, and in
//! `nxt_unit_response_init` the whole context with it.
//!
//! So the module knows which ports this thread has a segment for (libunit sends
//! each new segment's fd over the port, through our `port_send`) and how many
//! the process has made. A response goes through shared memory only where it
//! has a segment or one can still be made; elsewhere it goes in plain messages
//! of at most [`PLAIN_MESSAGE_MAX`] bytes, which need none.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::ffi;

/// The largest message libunit sends plain (`NXT_UNIT_MAX_PLAIN_SIZE`, private
/// to nxt_unit.c): a response head, or a body write, of at most this size
/// needs no shared memory.
pub const PLAIN_MESSAGE_MAX: usize = 1024;
/// Bytes of one segment.
const SEGMENT: usize = ffi::PORT_MMAP_DATA_SIZE as usize;

/// Segments the process may make, as libunit counts them.
static LIMIT: AtomicUsize = AtomicUsize::new(1);
/// Segments the process has made.
static MADE: AtomicUsize = AtomicUsize::new(0);
/// Contexts running: each may be making a segment at any moment.
static CONTEXTS: AtomicUsize = AtomicUsize::new(0);
/// Whether the log was told that some responses go without shared memory.
static TOLD: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The router ports this thread's context has a segment for.
    static PORTS: RefCell<Vec<PortKey>> = const { RefCell::new(Vec::new()) };
}

/// A port's identity (the same port may be reached through different fds).
type PortKey = (ffi::pid_t, u16);

fn key(port: &ffi::nxt_unit_port_id_t) -> PortKey {
    (port.pid, port.id)
}

/// The process's `limits.shm`, before libunit starts.
pub(super) fn set_limit(shm_limit: u32) {
    LIMIT.store(
        (shm_limit as usize).div_ceil(SEGMENT).max(1),
        Ordering::Relaxed,
    );
}

pub(super) fn context_started() {
    CONTEXTS.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn context_ended() {
    CONTEXTS.fetch_sub(1, Ordering::Relaxed);
}

/// Whether a response to `port` from this thread may use shared memory: the
/// port has a segment, or one can be made even if every other context makes
/// one at the same moment.
pub(super) fn available(port: &ffi::nxt_unit_port_id_t) -> bool {
    if PORTS.with(|ports| ports.borrow().contains(&key(port))) {
        return true;
    }
    let others = CONTEXTS.load(Ordering::Relaxed).saturating_sub(1);
    let limit = LIMIT.load(Ordering::Relaxed);
    if MADE.load(Ordering::Relaxed) + others < limit {
        return true;
    }
    if !TOLD.swap(true, Ordering::Relaxed) {
        let message = format!(
            "rvm: all {limit} shared memory segment(s) of limits.shm are taken, each by one \
             router thread and one context; responses for others go in plain messages, \
             more slowly (a segment is {} MiB; Unit's router runs a thread per CPU)",
            SEGMENT >> 20
        );
        super::log(super::Level::Warn, &message);
    }
    false
}

/// After libunit's message `buf` with control data went out to `port`: a new
/// segment's fd is the only such message it sends to the router.
///
/// # Safety
/// `buf` is readable for `size` bytes.
pub(super) unsafe fn sent_with_control_data(
    port: &ffi::nxt_unit_port_id_t,
    buf: *const c_void,
    size: usize,
) {
    if size < size_of::<ffi::nxt_port_msg_t>() {
        return;
    }
    // SAFETY: as the caller promised; the message starts with its header.
    let msg = unsafe { std::ptr::read_unaligned(buf.cast::<ffi::nxt_port_msg_t>()) };
    if u32::from(msg.type_) != ffi::nxt_port_msg_type_t__NXT_PORT_MSG_MMAP {
        return;
    }
    MADE.fetch_add(1, Ordering::Relaxed);
    PORTS.with(|ports| {
        let mut ports = ports.borrow_mut();
        if !ports.contains(&key(port)) {
            ports.push(key(port));
        }
    });
}
