//! Whether a response may use shared memory. libunit makes shared memory in
//! 10 MiB segments, no more than the application's `limits.shm` allows (ten by
//! default). A new segment serves only the router thread it was sent to until
//! that thread has taken it; a response for another router thread meanwhile
//! finds no memory it may use and, once no more segments may be made, tells the
//! router so and waits in `nxt_unit_response_init`, the whole context with it,
//! for an acknowledgement. The router sends one only if it already knows of
//! free memory, and the thread that reads the notice may not know of the new
//! segment yet: then nothing wakes the context again (seen with one segment and
//! a burst of requests to a new application process). Once the router has
//! taken every segment, waiting is safe: libunit marks each full segment, and
//! the router acknowledges as soon as it frees memory in one.
//!
//! While segments may still be made, libunit makes one rather than wait. So the
//! module follows the segments made (libunit sends each one's fd to the router,
//! through our `port_send`; the module maps the segment's header to see when
//! the router has taken it), and while no more may be made and one is not yet
//! taken, responses go in plain messages of at most [`PLAIN_MESSAGE_MAX`]
//! bytes, which need no shared memory, more slowly.

use std::ffi::c_void;
use std::io;
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::ffi;

/// The largest message libunit sends plain (`NXT_UNIT_MAX_PLAIN_SIZE`, private
/// to nxt_unit.c): a response head, or a body write, of at most this size
/// needs no shared memory.
pub const PLAIN_MESSAGE_MAX: usize = 1024;
/// Bytes of one segment.
const SEGMENT: usize = ffi::PORT_MMAP_DATA_SIZE as usize;

/// Segments the process may make, as libunit counts them.
static LIMIT: AtomicUsize = AtomicUsize::new(1);
/// Segments the process has made: `SEGMENT_HEADERS`' length, kept apart so
/// that every response reads it without taking the lock.
static MADE: AtomicUsize = AtomicUsize::new(0);
/// The segments made, each as this module sees its header (`None`: it could
/// not be mapped, so it never counts as taken).
static SEGMENT_HEADERS: Mutex<Vec<Option<SegmentHeader>>> = Mutex::new(Vec::new());
/// Every segment allowed is made and the router has taken them all: shared
/// memory is safe to use for the rest of the process's life.
static ALL_TAKEN: AtomicBool = AtomicBool::new(false);
/// Contexts the process runs or is still to start: each may be making a
/// segment at any moment.
static CONTEXTS: AtomicUsize = AtomicUsize::new(1);
/// Whether the log was told that responses go without shared memory.
static TOLD: AtomicBool = AtomicBool::new(false);

/// The process's `limits.shm` and the contexts it will run, before libunit
/// starts: counted from the start, since the main context serves before the
/// others are made.
pub(super) fn set_up(shm_limit: u32, contexts: u32) {
    LIMIT.store(
        (shm_limit as usize).div_ceil(SEGMENT).max(1),
        Ordering::Relaxed,
    );
    CONTEXTS.store(contexts as usize, Ordering::Relaxed);
}

/// A context ended, or could not be made.
pub(super) fn context_ended() {
    CONTEXTS.fetch_sub(1, Ordering::Relaxed);
}

/// Whether a response may use shared memory: a segment may still be made even
/// if every other context makes one at the same moment, or all are made and
/// the router has taken every one.
pub(super) fn available() -> bool {
    let others = CONTEXTS.load(Ordering::Relaxed).saturating_sub(1);
    let limit = LIMIT.load(Ordering::Relaxed);
    if MADE.load(Ordering::Relaxed) + others < limit || ALL_TAKEN.load(Ordering::Relaxed) {
        return true;
    }
    if all_made_and_taken(limit) {
        ALL_TAKEN.store(true, Ordering::Relaxed);
        return true;
    }
    if !TOLD.swap(true, Ordering::Relaxed) {
        let message = format!(
            "rvm: limits.shm allows {limit} shared memory segment(s) of {} MiB; responses go \
             in plain messages, more slowly, while libunit could wait for a segment Unit's \
             router has not taken yet",
            SEGMENT >> 20
        );
        super::log(super::Level::Warn, &message);
    }
    false
}

fn all_made_and_taken(limit: usize) -> bool {
    let headers = segment_headers();
    headers.len() >= limit
        && headers
            .iter()
            .all(|h| h.as_ref().is_some_and(SegmentHeader::taken))
}

/// A list only ever pushed to: a panic while it was held left it whole.
fn segment_headers() -> MutexGuard<'static, Vec<Option<SegmentHeader>>> {
    SEGMENT_HEADERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// After libunit's message with control data `oob` went out: a new segment's
/// fd is the only such message it sends to the router.
///
/// # Safety
/// `oob` is readable for `oob_size` bytes.
pub(super) unsafe fn sent_with_control_data(
    header: &ffi::nxt_port_msg_t,
    oob: *const c_void,
    oob_size: usize,
) {
    if u32::from(header.type_) != ffi::nxt_port_msg_type_t__NXT_PORT_MSG_MMAP {
        return;
    }
    // SAFETY: as the caller promised.
    let fd = unsafe { passed_fd(oob, oob_size) };
    let mapped = fd
        .ok_or_else(|| io::Error::other("no file descriptor in the message"))
        .and_then(SegmentHeader::map);
    let header = mapped
        .inspect_err(|e| {
            let message = format!(
                "rvm: cannot map a shared memory segment's header ({e}); responses will go \
                 in plain messages once all segments are made"
            );
            super::log(super::Level::Warn, &message);
        })
        .ok();
    let mut headers = segment_headers();
    headers.push(header);
    MADE.store(headers.len(), Ordering::Relaxed);
}

/// The file descriptor a port message's control data passes, if any.
///
/// # Safety
/// `oob` is readable for `oob_size` bytes.
unsafe fn passed_fd(oob: *const c_void, oob_size: usize) -> Option<RawFd> {
    // SAFETY: all-zero is a valid, empty msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_control = oob.cast_mut();
    msg.msg_controllen = oob_size;
    // SAFETY: the CMSG functions stay within `msg_controllen` bytes of `oob`,
    // readable as the caller promised; libunit builds that buffer as a union
    // with `struct cmsghdr`, so each header is aligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                return Some(ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()));
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    None
}

/// A segment's header, mapped read-only for the rest of the process's life
/// (two pages per segment; ten segments by default).
struct SegmentHeader(NonNull<ffi::nxt_port_mmap_header_t>);

// SAFETY: a read-only mapping that is never unmapped: any thread may read it.
unsafe impl Send for SegmentHeader {}

impl SegmentHeader {
    /// What the router writes into `sent_over` when it has taken the segment
    /// (`nxt_port_incoming_port_mmap`); until then it names the one port the
    /// segment serves.
    const TAKEN: ffi::nxt_port_id_t = 0xFFFF;

    fn map(fd: RawFd) -> io::Result<SegmentHeader> {
        // SAFETY: a new read-only shared mapping of the segment's first bytes;
        // it aliases nothing of ours, and the kernel checks the fd and size.
        let at = unsafe {
            libc::mmap(
                ptr::null_mut(),
                size_of::<ffi::nxt_port_mmap_header_t>(),
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        NonNull::new(at.cast())
            .map(SegmentHeader)
            .ok_or_else(|| io::Error::other("mmap returned a null address"))
    }

    fn taken(&self) -> bool {
        // SAFETY: mapped for the process's life and page-aligned, so the field
        // is aligned. The router writes it once, in another process; a
        // volatile read sees the old value or the new one, as libunit's does.
        let sent_over = unsafe { ptr::read_volatile(&raw const (*self.0.as_ptr()).sent_over) };
        sent_over == Self::TAKEN
    }
}
