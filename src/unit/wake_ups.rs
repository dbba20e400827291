//! Queue wake-ups. libunit puts a short message to a peer (a request's
//! acknowledgement, a response head in shared memory) into the peer's shared
//! queue and, when that queue was empty, wakes the peer with a socket write of
//! its own. Under load that is one write, and one wake-up of Unit's router, per
//! message. A context's loop may hold these wake-ups while it has work, and send
//! them once per peer when the batch is served: the queue keeps the messages in
//! order, and the peer reads all of them when woken.
//!
//! libunit hands us every port write (its `port_send` callback); all but the
//! wake-ups go out at once, as libunit would send them. No libunit call the
//! module makes waits for the router (see `segments`): a response waiting for
//! shared memory waits on the loop, and the held wake-ups go out meanwhile.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::io;
use std::os::fd::RawFd;

use super::ffi;

/// One context's wake-ups, held while its loop has work.
#[derive(Default)]
pub(super) struct WakeUps {
    holding: Cell<bool>,
    /// One wake-up per peer port fd: one is as good as many.
    held: RefCell<Vec<(RawFd, ffi::nxt_port_msg_t)>>,
}

/// What became of a port write.
pub(super) enum PortWrite {
    /// Written: this many bytes.
    Sent(usize),
    /// A wake-up, held; `first` if none was held before it.
    Held { first: bool },
}

impl WakeUps {
    /// The wake-ups of a context of ours.
    ///
    /// # Safety
    /// `ctx` is a live context made by `Context::init` or `Context::sibling`,
    /// and the call happens on its thread.
    pub(super) unsafe fn of<'a>(ctx: *mut ffi::nxt_unit_ctx_t) -> &'a WakeUps {
        // SAFETY: as the caller promised, ctx->data is the context's `Slot`,
        // which is `repr(C)` with its wake-ups first (see context.rs).
        unsafe { &*(*ctx).data.cast::<WakeUps>() }
    }

    /// Holds wake-ups from now on, until [`WakeUps::stop_holding`].
    pub(super) fn hold(&self) {
        self.holding.set(true);
    }

    /// Whether wake-ups wait to be sent.
    pub(super) fn any_held(&self) -> bool {
        !self.held.borrow().is_empty()
    }

    /// Sends the wake-ups held.
    pub(super) fn send_held(&self) {
        for (fd, msg) in self.held.take() {
            let bytes = std::ptr::from_ref(&msg).cast();
            // SAFETY: `msg` is alive and readable for its size; there is no oob.
            if let Err(e) = unsafe { send(fd, bytes, size_of_val(&msg), std::ptr::null(), 0) } {
                super::log(super::Level::Warn, &format!("port fd {fd}: {e}"));
            }
        }
    }

    /// Sends what is held and holds nothing more (the loop is ending).
    pub(super) fn stop_holding(&self) {
        self.holding.set(false);
        self.send_held();
    }

    /// A write libunit makes to a port whose peer reads `fd`; `header` is the
    /// one the message starts with.
    ///
    /// # Safety
    /// `buf` is readable for `size` bytes and `oob` for `oob_size` bytes.
    pub(super) unsafe fn port_send(
        &self,
        fd: RawFd,
        header: Option<ffi::nxt_port_msg_t>,
        buf: *const c_void,
        size: usize,
        oob: *const c_void,
        oob_size: usize,
    ) -> io::Result<PortWrite> {
        // A wake-up is a bare header.
        let bare = header.filter(|_| oob_size == 0 && size == size_of::<ffi::nxt_port_msg_t>());
        if let Some(msg) = bare {
            let wake_up = u32::from(msg.type_) == ffi::nxt_port_msg_type_t__NXT_PORT_MSG_READ_QUEUE;
            if wake_up && self.holding.get() {
                let mut held = self.held.borrow_mut();
                let first = held.is_empty();
                if !held.iter().any(|&(to, _)| to == fd) {
                    held.push((fd, msg));
                }
                return Ok(PortWrite::Held { first });
            }
        }
        // SAFETY: as the caller promised.
        unsafe { send(fd, buf, size, oob, oob_size) }.map(PortWrite::Sent)
    }
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
