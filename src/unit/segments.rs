//! Whether libunit would wait for shared memory, so that it never does.
//!
//! libunit makes shared memory in 10 MiB segments of 16 KiB chunks, no more
//! than the application's `limits.shm` allows (ten by default). A response head
//! past libunit's plain-message size takes whole chunks in a row. When no
//! segment the calling thread may use has them and no more segments may be
//! made, `nxt_unit_response_init` tells the router and waits inside libunit for
//! its acknowledgement: the whole context stops, and libunit sets aside the
//! other messages its port receives until the port's next one. The router may
//! never answer: a new segment serves only the router thread it was sent to
//! until that thread has taken it, and a notice read by another thread that
//! knows of no free memory is not acknowledged (seen with one segment and a
//! burst of requests to a new process).
//!
//! So the module follows the segments made (libunit sends each one's fd to the
//! router through our `port_send`; the module maps the segment's header, which
//! holds its free chunks and whether the router has taken it) and, before
//! `nxt_unit_response_init`, checks as libunit would whether it finds room
//! ([`Segments::room`]). Without room nothing is called, and the response waits
//! on the context's loop, which goes on serving meanwhile. A check and the
//! call it clears happen under one process-wide lock ([`Segments::allocating`]),
//! also held by every other call that takes shared memory, so that no other
//! context takes the room in between; the router only ever frees memory.
//!
//! The segments are the process's, shared by its contexts: [`Segments`] lives
//! in libunit's `nxt_unit_t` (its `data`), which every context reaches.

use std::ffi::c_void;
use std::io;
use std::os::fd::RawFd;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use rvm_unit_logic::room::{Room, Segment, Shm};

use super::ffi;

/// The largest message libunit sends plain (`NXT_UNIT_MAX_PLAIN_SIZE`, private
/// to nxt_unit.c, which build.rs reads): a response head, or a body write, of
/// at most this size needs no shared memory.
pub const PLAIN_MESSAGE_MAX: usize = ffi::NXT_UNIT_MAX_PLAIN_SIZE;
/// Bytes of one segment (the largest buffer libunit makes in one piece), and
/// of one chunk of it.
const SEGMENT: usize = ffi::PORT_MMAP_DATA_SIZE as usize;
const CHUNK: usize = ffi::PORT_MMAP_CHUNK_SIZE as usize;

// A segment's map of free chunks is read as atomic words.
const _: () = assert!(size_of::<ffi::nxt_free_map_t>() == size_of::<AtomicU64>());

/// The shared memory segments this process made, and the lock that keeps a
/// check of their room and the call it clears together.
pub(super) struct Segments {
    shm: Shm,
    /// Held by every call that may take shared memory, and by the check before it.
    allocating: Mutex<()>,
    /// The segments made, in libunit's order.
    made: Mutex<Vec<MadeSegment>>,
}

// Every context's thread reaches the process's segments.
const _: fn() = || {
    fn shared_by_threads<T: Sync>() {}
    shared_by_threads::<Segments>();
};

impl Segments {
    /// The segments of the process a context of ours belongs to.
    ///
    /// # Safety
    /// `ctx` is a live context of this process, which `AppProcess::init` set
    /// up.
    pub(super) unsafe fn of<'a>(ctx: *mut ffi::nxt_unit_ctx_t) -> &'a Segments {
        // SAFETY: as the caller promised: `init.data` became unit->data, and
        // holds segments that live as long as the process.
        unsafe { &*(*(*ctx).unit).data.cast::<Segments>() }
    }

    /// A process whose `limits.shm` is `shm_limit` bytes, before libunit starts.
    pub(super) fn new(shm_limit: u32) -> Segments {
        Segments {
            shm: Shm::new(SEGMENT, CHUNK, shm_limit),
            allocating: Mutex::new(()),
            made: Mutex::new(Vec::new()),
        }
    }

    /// The lock under which [`Segments::room`] is asked and the call it
    /// clears is made, and every other call that may take shared memory.
    pub(super) fn allocating(&self) -> MutexGuard<'_, ()> {
        // It guards no data: a panic while it was held left nothing half done.
        self.allocating
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether libunit would find room for `bytes` in a row for a message to
    /// the router port `port` from this thread. Ask it holding
    /// [`Segments::allocating`].
    pub(super) fn room(&self, port: ffi::nxt_port_id_t, bytes: usize) -> Room {
        let made = self.made();
        // SAFETY: no preconditions; libunit compares the same value.
        let thread = unsafe { libc::pthread_self() };
        let seen = made.iter().map(|segment| match &segment.header {
            None => Segment::Unknown,
            Some(header) if header.usable(port, segment.thread == thread) => Segment::Usable(
                header
                    .free_map()
                    .iter()
                    .map(|word| word.load(Ordering::Relaxed)),
            ),
            Some(_) => Segment::Unusable,
        });
        self.shm.room(bytes, seen)
    }

    /// A list only ever pushed to: a panic while it was held left it whole.
    fn made(&self) -> MutexGuard<'_, Vec<MadeSegment>> {
        self.made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// After libunit's message with control data `oob` went out on this
    /// thread: a new segment's fd is the only such message it sends to the
    /// router, from the thread that made the segment.
    ///
    /// # Safety
    /// `oob` is readable for `oob_size` bytes.
    pub(super) unsafe fn sent_with_control_data(
        &self,
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
                    "cannot map a shared memory segment's header ({e}); once all segments \
                     are made, a response may wait inside libunit, and every context with it"
                );
                super::log(super::Level::Warn, &message);
            })
            .ok();
        // SAFETY: no preconditions.
        let thread = unsafe { libc::pthread_self() };
        self.made().push(MadeSegment { header, thread });
    }
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

/// A segment libunit made.
struct MadeSegment {
    /// Its header as this module sees it; `None` if it could not be mapped.
    header: Option<SegmentHeader>,
    /// The thread that made it: until the router takes the segment, libunit
    /// uses it only from this thread.
    thread: libc::pthread_t,
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

    /// Whether libunit uses the segment for a message to `port` from a thread
    /// that made it (`own`) or not.
    fn usable(&self, port: ffi::nxt_port_id_t, own: bool) -> bool {
        // SAFETY: mapped for the process's life and page-aligned, so the field
        // is aligned. The router writes it once, in another process; a
        // volatile read sees the old value or the new one, as libunit's does.
        let sent_over = unsafe { ptr::read_volatile(&raw const (*self.0.as_ptr()).sent_over) };
        sent_over == Self::TAKEN || (sent_over == port && own)
    }

    /// The segment's map of free chunks (a set bit is a free chunk), which
    /// libunit and the router change atomically.
    fn free_map(&self) -> &[AtomicU64] {
        // SAFETY: mapped for the process's life; the map's words are 8-byte
        // aligned in the page-aligned header and as wide as an AtomicU64
        // (checked above), and every writer changes them atomically.
        unsafe {
            let map = &raw const (*self.0.as_ptr()).free_map;
            std::slice::from_raw_parts(map.cast::<AtomicU64>(), array_len(map))
        }
    }
}

fn array_len<T, const N: usize>(_: *const [T; N]) -> usize {
    N
}
