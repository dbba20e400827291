//! Whether a response may use shared memory. libunit makes shared memory in
//! 10 MiB segments, no more than the application's `limits.shm` allows (ten by
//! default). A new segment serves only the router thread it was sent to until
//! that thread has taken it; a response for another router thread meanwhile
//! finds no memory it may use and, once no more segments may be made, tells the
//! router so and waits in `nxt_unit_response_init`, the whole context with it,
//! for an acknowledgement. The router sends one only if it already knows of
//! free memory, and the thread that reads the notice may not know of the new
//! segment yet: then nothing wakes the context again (seen with one segment and
//! a burst of requests to a new application process).
//!
//! While segments may still be made, libunit makes one rather than wait. So the
//! module counts the segments made (libunit sends each one's fd to the router,
//! through our `port_send`), and once no more may be made, responses go in
//! plain messages of at most [`PLAIN_MESSAGE_MAX`] bytes, which need no shared
//! memory, more slowly.

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
/// Whether the log was told that responses go without shared memory.
static TOLD: AtomicBool = AtomicBool::new(false);

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

/// Whether a response may use shared memory: a segment may still be made even
/// if every other context makes one at the same moment.
pub(super) fn available() -> bool {
    let others = CONTEXTS.load(Ordering::Relaxed).saturating_sub(1);
    let limit = LIMIT.load(Ordering::Relaxed);
    if MADE.load(Ordering::Relaxed) + others < limit {
        return true;
    }
    if !TOLD.swap(true, Ordering::Relaxed) {
        let message = format!(
            "rvm: limits.shm allows {limit} shared memory segment(s) of {} MiB and all are \
             made; responses go in plain messages from now on, more slowly",
            SEGMENT >> 20
        );
        super::log(super::Level::Warn, &message);
    }
    false
}

/// After libunit's message with control data (file descriptors) went out: a
/// new segment's fd is the only such message it sends to the router.
pub(super) fn sent_with_control_data(header: &ffi::nxt_port_msg_t) {
    if u32::from(header.type_) == ffi::nxt_port_msg_type_t__NXT_PORT_MSG_MMAP {
        MADE.fetch_add(1, Ordering::Relaxed);
    }
}
