//! Queue wake-ups. libunit puts a short message to a peer (a request's
//! acknowledgement, a response head in shared memory) into the peer's shared
//! queue and, when that queue was empty, wakes the peer with a socket write of
//! its own. Under load that is one write, and one wake-up of Unit's router, per
//! message. A context's loop may hold these wake-ups while it has work, and send
//! them once per peer when the batch is served: the queue keeps the messages in
//! order, and the peer reads all of them when woken. Sending them after every
//! fourth response instead, so that the router starts on a batch's first
//! responses sooner, made no difference that 6 alternating pairs of runs could
//! tell apart from the noise.
//!
//! libunit hands us every port write (its `port_send` callback); all but the
//! wake-ups go out at once, as libunit would send them. No libunit call the
//! module makes waits for the router (see `segments`): a response waiting for
//! shared memory waits on the loop, and the held wake-ups go out meanwhile.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::io;
use std::os::fd::RawFd;

use crate::ffi;

thread_local! {
    /// This thread's context's held wake-ups (a context runs on one thread).
    static HELD: Held = Held::default();
}

#[derive(Default)]
struct Held {
    holding: Cell<bool>,
    /// One wake-up per peer port fd: one is as good as many.
    notices: RefCell<Vec<(RawFd, ffi::nxt_port_msg_t)>>,
}

/// What became of a port write.
pub(super) enum Outcome {
    /// Written: this many bytes.
    Sent(usize),
    /// A wake-up, held; `first` if none was held before it.
    Held { first: bool },
}

/// Holds this thread's wake-ups from now on, until its context ends.
pub fn hold() {
    HELD.with(|held| held.holding.set(true));
}

/// Whether wake-ups wait to be sent.
pub fn any_held() -> bool {
    HELD.with(|held| !held.notices.borrow().is_empty())
}

/// Sends the wake-ups held on this thread.
pub fn send_held() {
    let notices = HELD.with(|held| held.notices.take());
    for (fd, msg) in notices {
        let bytes = std::ptr::from_ref(&msg).cast();
        // SAFETY: `msg` is alive and readable for its size; there is no oob.
        if let Err(e) = unsafe { send(fd, bytes, size_of_val(&msg), std::ptr::null(), 0) } {
            super::log(super::Level::Warn, &format!("rvm: port fd {fd}: {e}"));
        }
    }
}

/// Sends what is held and holds nothing more (the loop is ending).
pub(super) fn stop_holding() {
    HELD.with(|held| held.holding.set(false));
    send_held();
}

/// A write libunit makes to a port whose peer reads `fd`; `header` is the one
/// the message starts with.
///
/// # Safety
/// `buf` is readable for `size` bytes and `oob` for `oob_size` bytes.
pub(super) unsafe fn port_send(
    fd: RawFd,
    header: Option<ffi::nxt_port_msg_t>,
    buf: *const c_void,
    size: usize,
    oob: *const c_void,
    oob_size: usize,
) -> io::Result<Outcome> {
    // A wake-up is a bare header.
    let bare = header.filter(|_| oob_size == 0 && size == size_of::<ffi::nxt_port_msg_t>());
    if let Some(msg) = bare {
        let wake_up = u32::from(msg.type_) == ffi::nxt_port_msg_type_t__NXT_PORT_MSG_READ_QUEUE;
        let held = HELD.with(|held| {
            if !(wake_up && held.holding.get()) {
                return None;
            }
            let mut notices = held.notices.borrow_mut();
            let first = notices.is_empty();
            if !notices.iter().any(|&(to, _)| to == fd) {
                notices.push((fd, msg));
            }
            Some(Outcome::Held { first })
        });
        if let Some(held) = held {
            return Ok(held);
        }
    }
    // SAFETY: as the caller promised.
    unsafe { send(fd, buf, size, oob, oob_size) }.map(Outcome::Sent)
}

/// One `sendmsg` of a port message with its control data, as libunit makes it.
///
/// # Safety
/// `buf` is readable for `size` bytes and `oob` for `oob_size` bytes.
unsafe fn send(
    fd: RawFd,
    buf: *const c_void,
    size: usize,
    oob: *const c_void,
    oob_size: usize,
) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.cast_mut(),
        iov_len: size,
    };
    // SAFETY: all-zero is a valid, empty msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if oob_size > 0 {
        msg.msg_control = oob.cast_mut();
        msg.msg_controllen = oob_size;
    }
    loop {
        // SAFETY: `msg` points at `iov` and at the caller's buffers, readable
        // for the sizes given (as the caller promised); sendmsg only reads them.
        let n = unsafe { libc::sendmsg(fd, &msg, 0) };
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
