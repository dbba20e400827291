//! libunit contexts and their ports, and the callbacks libunit makes into them.
//!
//! A context belongs to the thread that created it; so does everything reached
//! through it ([`Context`], [`Port`], [`super::Request`] are not `Send`). libunit
//! calls back into the context only from inside calls made on that thread
//! (`nxt_unit_init`, `nxt_unit_ctx_alloc`, `nxt_unit_process_port_msg`, …).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::c_void;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::rc::Rc;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use super::Request;
use super::ffi;
use super::segments::Segments;
use super::wake_ups::{PortWrite, WakeUps};

/// What a context is told by libunit. All calls happen on the context's thread.
pub trait Events: Sized + 'static {
    /// A request's head arrived; its body may still be arriving.
    fn request(&self, request: Request);
    /// More body of the request with this key arrived.
    fn body_arrived(&self, request: usize);
    /// libunit ends the request with this key (the context quits): finish it now.
    fn closed(&self, request: usize);
    /// A port to read from; watch its fd and call [`Context::process`] when readable.
    fn port_added(&self, port: Rc<Port>);
    /// The port is gone: stop watching it.
    fn port_removed(&self, port: &Port);
    /// Shared memory was released: responses waiting for it may go on.
    fn shm_freed(&self);
    /// Stop once in-flight work is done.
    fn quit(&self);
    /// The main context is ready (other contexts may now be allocated).
    fn ready(&self, main: SharedContext);
    /// The first queue wake-up is held (see [`Context::hold_wake_ups`]):
    /// arrange for [`Context::send_wake_ups`] to run soon.
    fn first_wake_up_held(&self);
}

/// The id of the application's shared port (`NXT_UNIT_SHARED_PORT_ID`, a
/// cast bindgen does not evaluate).
const SHARED_PORT_ID: u16 = 0xFFFF;

/// A port of a context; usable until libunit removes it.
pub struct Port {
    raw: *mut ffi::nxt_unit_port_t,
    fd: RawFd,
    /// The application's shared request queue, as opposed to a context's own
    /// port.
    shared: bool,
    live: Cell<bool>,
}

impl Port {
    /// The fd that becomes readable when the port has messages.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    pub fn is_live(&self) -> bool {
        self.live.get()
    }

    /// The port's fd, watched by the calling thread's tokio reactor for
    /// readability. A duplicate: libunit closes its own when it drops the port,
    /// and this one is deregistered and closed with the watcher, so the
    /// reactor never holds a number libunit may reuse.
    pub fn watch(&self) -> io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: the port is live, so libunit keeps its fd open for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) }.try_clone_to_owned()?;
        // SAFETY: an OwnedFd is open and names the same file description until
        // the AsyncFd, which owns it, is dropped.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }

    /// Whether libunit's "nothing to read" may be wrong. A context's own port
    /// is a queue in shared memory with the socket beside it for messages that
    /// carry an fd (a request body's file, say), marked in the queue. When the
    /// socket gives a stale queue wake-up while a marked message is due,
    /// libunit answers "again" without reading on, and the message behind the
    /// wake-up waits in the socket, whose readiness was already spent. The
    /// shared queue reads its socket until it is empty.
    fn may_hold_more(&self) -> bool {
        if self.shared {
            return false;
        }
        let mut poll = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, for an fd libunit keeps open while the port is
        // live; a zero timeout never blocks.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & libc::POLLIN != 0
    }
}

/// What a context holds for us in `ctx->data`. `repr(C)` puts the wake-ups
/// first, so that code that does not know the events' type (a request's)
/// reaches them through the same pointer (`WakeUps::of`).
#[repr(C)]
struct Slot<E> {
    wake_ups: WakeUps,
    /// Watched ports by libunit's pointer, so that removal can retire them.
    ports: RefCell<HashMap<usize, Rc<Port>>>,
    events: E,
}

impl<E> Slot<E> {
    fn new(events: E) -> Slot<E> {
        Slot {
            wake_ups: WakeUps::default(),
            ports: RefCell::default(),
            events,
        }
    }
}

/// How processing one port message went.
#[derive(Debug, PartialEq, Eq)]
pub enum PortStatus {
    /// A message was read (if only a stale wake-up): there may be more.
    Processed,
    /// Nothing left to read.
    Empty,
    Failed,
}

/// A context running on this thread.
pub struct Context<E: Events> {
    raw: NonNull<ffi::nxt_unit_ctx_t>,
    slot: *mut Slot<E>,
}

/// The main context's pointer, to allocate sibling contexts from other threads.
#[derive(Clone, Copy)]
pub struct SharedContext(*mut ffi::nxt_unit_ctx_t);

// SAFETY: the pointer is only passed to `nxt_unit_ctx_alloc`, which libunit
// makes for use from new threads with the main context (it takes the library's
// lock); nothing else dereferences it off the main thread.
unsafe impl Send for SharedContext {}

impl<E: Events> Context<E> {
    /// Runs `nxt_unit_init` with our callbacks; `events` receives them.
    pub(super) fn init(init: &mut ffi::nxt_unit_init_t, events: E) -> Option<Context<E>> {
        let slot = Box::into_raw(Box::new(Slot::new(events)));
        set_callbacks::<E>(&mut init.callbacks);
        init.ctx_data = slot.cast();
        // SAFETY: `init` was filled by nxt_unit_default_init; callbacks fired
        // during the call find `slot` through ctx->data.
        let raw = unsafe { ffi::nxt_unit_init(init) };
        Context::adopt(raw, slot)
    }

    /// A further context of this process, for the calling thread.
    pub fn sibling(main: SharedContext, events: E) -> Option<Context<E>> {
        let slot = Box::into_raw(Box::new(Slot::new(events)));
        // SAFETY: `main` is the live main context (see `SharedContext`).
        let raw = unsafe { ffi::nxt_unit_ctx_alloc(main.0, slot.cast()) };
        Context::adopt(raw, slot)
    }

    fn adopt(raw: *mut ffi::nxt_unit_ctx_t, slot: *mut Slot<E>) -> Option<Context<E>> {
        match NonNull::new(raw) {
            Some(raw) => Some(Context { raw, slot }),
            None => {
                // SAFETY: libunit failed and holds no reference to the slot.
                drop(unsafe { Box::from_raw(slot) });
                None
            }
        }
    }

    pub fn events(&self) -> &E {
        &self.slot().events
    }

    fn slot(&self) -> &Slot<E> {
        // SAFETY: the slot lives as long as this context.
        unsafe { &*self.slot }
    }

    /// Holds this context's queue wake-ups to Unit's router from now on, until
    /// it is done; [`Events::first_wake_up_held`] says when the first is held.
    pub fn hold_wake_ups(&self) {
        self.slot().wake_ups.hold();
    }

    /// Whether wake-ups wait to be sent.
    pub fn any_wake_ups_held(&self) -> bool {
        self.slot().wake_ups.any_held()
    }

    /// Sends the wake-ups held.
    pub fn send_wake_ups(&self) {
        self.slot().wake_ups.send_held();
    }

    /// Processes one message waiting on `port`.
    pub fn process(&self, port: &Port) -> PortStatus {
        if !port.is_live() {
            return PortStatus::Failed;
        }
        // SAFETY: a live port of this context, on the context's thread.
        let rc = unsafe { ffi::nxt_unit_process_port_msg(self.raw.as_ptr(), port.raw) };
        match rc as u32 {
            ffi::NXT_UNIT_OK => PortStatus::Processed,
            // A stale wake-up was read: ask again.
            ffi::NXT_UNIT_AGAIN if port.may_hold_more() => PortStatus::Processed,
            ffi::NXT_UNIT_AGAIN => PortStatus::Empty,
            _ => PortStatus::Failed,
        }
    }

    /// Ends the context (`nxt_unit_done`); its callbacks may still fire during it.
    pub fn done(self) {
        self.slot().wake_ups.stop_holding();
        // SAFETY: our context, on its thread; no call reaches it afterwards.
        unsafe { ffi::nxt_unit_done(self.raw.as_ptr()) };
        // SAFETY: libunit no longer calls back into this context.
        drop(unsafe { Box::from_raw(self.slot) });
    }
}

fn set_callbacks<E: Events>(callbacks: &mut ffi::nxt_unit_callbacks_t) {
    callbacks.request_handler = Some(on_request::<E>);
    callbacks.data_handler = Some(on_data::<E>);
    callbacks.close_handler = Some(on_close::<E>);
    callbacks.add_port = Some(on_add_port::<E>);
    callbacks.remove_port = Some(on_remove_port::<E>);
    callbacks.quit = Some(on_quit::<E>);
    callbacks.shm_ack_handler = Some(on_shm_ack::<E>);
    callbacks.ready_handler = Some(on_ready::<E>);
    callbacks.port_send = Some(on_port_send::<E>);
}

/// The slot of a context libunit calls back into.
///
/// # Safety
/// `ctx` is a context created by [`Context::init`] or [`Context::sibling`]
/// with `E`, not yet done, and the call happens on its thread.
unsafe fn slot<'a, E: Events>(ctx: *mut ffi::nxt_unit_ctx_t) -> &'a Slot<E> {
    // SAFETY: as the caller promised, ctx->data is our live slot.
    unsafe { &*(*ctx).data.cast::<Slot<E>>() }
}

/// Runs a callback body; a panic must not unwind into C.
fn guarded(what: &str, body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        super::log(
            super::Level::Alert,
            &format!("panic in libunit callback {what}"),
        );
    }
}

unsafe extern "C" fn on_request<E: Events>(req: *mut ffi::nxt_unit_request_info_t) {
    guarded("request_handler", || {
        // SAFETY: libunit hands a live request of a context of ours, on its
        // thread.
        let (slot, request) = unsafe { (slot::<E>((*req).ctx), Request::from_raw(req)) };
        slot.events.request(request);
    });
}

unsafe extern "C" fn on_data<E: Events>(req: *mut ffi::nxt_unit_request_info_t) {
    guarded("data_handler", || {
        // SAFETY: as in on_request.
        unsafe { slot::<E>((*req).ctx) }
            .events
            .body_arrived(req as usize);
    });
}

unsafe extern "C" fn on_close<E: Events>(req: *mut ffi::nxt_unit_request_info_t) {
    guarded("close_handler", || {
        // SAFETY: as in on_request.
        unsafe { slot::<E>((*req).ctx) }.events.closed(req as usize);
    });
}

unsafe extern "C" fn on_add_port<E: Events>(
    ctx: *mut ffi::nxt_unit_ctx_t,
    port: *mut ffi::nxt_unit_port_t,
) -> i32 {
    let mut rc = ffi::NXT_UNIT_OK as i32;
    guarded("add_port", || {
        // SAFETY: libunit passes a context of ours and a port valid until it
        // calls remove_port for it.
        let (slot, fd, id) = unsafe { (slot::<E>(ctx), (*port).in_fd, (*port).id.id) };
        // Ports we only write to have no fd to watch.
        if fd == -1 {
            return;
        }
        // libunit reads the port whenever we say it is readable; it must not block.
        if let Err(e) = set_nonblocking(fd) {
            super::log(super::Level::Alert, &format!("port fd {fd}: {e}"));
            rc = ffi::NXT_UNIT_ERROR as i32;
            return;
        }
        let watched = Rc::new(Port {
            raw: port,
            fd,
            shared: id == SHARED_PORT_ID,
            live: Cell::new(true),
        });
        slot.ports
            .borrow_mut()
            .insert(port as usize, Rc::clone(&watched));
        slot.events.port_added(watched);
    });
    rc
}

fn set_nonblocking(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl on an fd libunit owns and keeps open while the port lives;
    // only the file status flags change.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

unsafe extern "C" fn on_remove_port<E: Events>(
    _unit: *mut ffi::nxt_unit_t,
    ctx: *mut ffi::nxt_unit_ctx_t,
    port: *mut ffi::nxt_unit_port_t,
) {
    // Without a context the port is another process's, never one we watch.
    if ctx.is_null() {
        return;
    }
    guarded("remove_port", || {
        // SAFETY: a context of ours, on its thread.
        let slot = unsafe { slot::<E>(ctx) };
        let removed = slot.ports.borrow_mut().remove(&(port as usize));
        if let Some(watched) = removed {
            watched.live.set(false);
            slot.events.port_removed(&watched);
        }
    });
}

unsafe extern "C" fn on_quit<E: Events>(ctx: *mut ffi::nxt_unit_ctx_t) {
    // SAFETY: a context of ours, on its thread.
    guarded("quit", || unsafe { slot::<E>(ctx) }.events.quit());
}

unsafe extern "C" fn on_shm_ack<E: Events>(ctx: *mut ffi::nxt_unit_ctx_t) {
    // SAFETY: a context of ours, on its thread.
    guarded("shm_ack_handler", || {
        unsafe { slot::<E>(ctx) }.events.shm_freed()
    });
}

unsafe extern "C" fn on_ready<E: Events>(ctx: *mut ffi::nxt_unit_ctx_t) -> i32 {
    // SAFETY: the main context of ours (libunit calls this only for it).
    guarded("ready_handler", || {
        unsafe { slot::<E>(ctx) }.events.ready(SharedContext(ctx))
    });
    ffi::NXT_UNIT_OK as i32
}

unsafe extern "C" fn on_port_send<E: Events>(
    ctx: *mut ffi::nxt_unit_ctx_t,
    port: *mut ffi::nxt_unit_port_t,
    buf: *const c_void,
    buf_size: usize,
    oob: *const c_void,
    oob_size: usize,
) -> isize {
    let mut sent = -1;
    guarded("port_send", || {
        // SAFETY: libunit sends for a context of ours, on its thread, and
        // holds the port during the call.
        let (slot, fd) = unsafe { (slot::<E>(ctx), (*port).out_fd) };
        // SAFETY: libunit's buffers are readable for their sizes.
        let header = unsafe { header(buf, buf_size) };
        // SAFETY: as above.
        let write = unsafe {
            slot.wake_ups
                .port_send(fd, header, buf, buf_size, oob, oob_size)
        };
        sent = match write {
            Ok(PortWrite::Sent(n)) => {
                if let Some(header) = header.filter(|_| oob_size > 0) {
                    // SAFETY: a context of ours, whose process set up its
                    // segments; `oob` as above.
                    unsafe { Segments::of(ctx).sent_with_control_data(&header, oob, oob_size) };
                }
                n as isize
            }
            Ok(PortWrite::Held { first }) => {
                if first {
                    slot.events.first_wake_up_held();
                }
                buf_size as isize
            }
            Err(e) => {
                let message = format!("sendmsg to port fd {fd}: {e}");
                super::log(super::Level::Warn, &message);
                -1
            }
        };
    });
    sent
}

/// The header a port message starts with, if `size` bytes hold one.
///
/// # Safety
/// `buf` is readable for `size` bytes.
unsafe fn header(buf: *const c_void, size: usize) -> Option<ffi::nxt_port_msg_t> {
    // SAFETY: as the caller promised, and only when the header fits.
    (size >= size_of::<ffi::nxt_port_msg_t>())
        .then(|| unsafe { std::ptr::read_unaligned(buf.cast::<ffi::nxt_port_msg_t>()) })
}
