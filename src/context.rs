//! One libunit context and the tokio current-thread loop that drives it on its
//! own thread: every port's fd is watched by the loop's reactor, and a readable
//! port is processed until it is empty (see `Ctx::process`). Requests are
//! served as tasks of the same loop, so no libunit call ever leaves this thread.
//!
//! The loop holds libunit's queue wake-ups to Unit's router (see
//! [`unit::notices`]) while it has work: once the requests read from a port
//! have had their first turn, one task sends the wake-ups, so the router is
//! woken once for a batch's acknowledgements and once for its responses. A
//! guest runs in a task of its own (the engine's), so one computing for a long
//! time yields at each epoch tick and the sender runs between its turns.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rvm_engine::App;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, LocalSet};

use crate::exchange::{AbortOnDrop, Exchange};
use crate::unit::{self, Ctx, Events, Level, Port, PortStatus, Request, SharedCtx, notices};

/// Port messages processed in a row before other tasks get a turn.
const MESSAGES_PER_TURN: u32 = 64;

/// A context's state, told of everything by libunit (see [`Events`]).
pub struct Context {
    app: Arc<App>,
    /// Contexts to run in this process in all; the main one starts the others.
    threads: u32,
    siblings: RefCell<Vec<std::thread::JoinHandle<()>>>,
    /// Ports added but not watched yet.
    new_ports: RefCell<Vec<Rc<Port>>>,
    watchers: RefCell<HashMap<usize, AbortHandle>>,
    /// Requests in flight, by libunit's key.
    requests: Rc<RefCell<HashMap<usize, Rc<Exchange>>>>,
    /// Wakes the loop: new ports, or quit.
    wake: Notify,
    quitting: Cell<bool>,
    /// Shared memory freed: blocked response writers may go on.
    shm_freed: Rc<Notify>,
    /// The context became ready: ports are drained once more (see `watch`).
    became_ready: Notify,
    /// Ports being drained: wake-ups then wait for the requests read.
    draining: Cell<u32>,
    /// Wakes the task that sends held wake-ups.
    notices_held: Notify,
}

impl Context {
    pub fn new(app: Arc<App>, threads: u32) -> Context {
        Context {
            app,
            threads,
            siblings: RefCell::default(),
            new_ports: RefCell::default(),
            watchers: RefCell::default(),
            requests: Rc::default(),
            wake: Notify::new(),
            quitting: Cell::new(false),
            shm_freed: Rc::new(Notify::new()),
            became_ready: Notify::new(),
            draining: Cell::new(0),
            notices_held: Notify::new(),
        }
    }

    /// Wakes the task that sends held wake-ups, if any are held: it runs after
    /// the tasks already waiting to run (those of the requests just read).
    fn send_held_soon(&self) {
        if notices::any_held() {
            self.notices_held.notify_one();
        }
    }
}

impl Events for Context {
    fn request(&self, request: Request) {
        let exchange = Rc::new(Exchange::new(request));
        self.requests
            .borrow_mut()
            .insert(exchange.key(), Rc::clone(&exchange));
        // Boxed: tokio moves a task's future as it makes and finishes the
        // task (several copies of it per request), and a pointer is cheaper to
        // move than the few KiB a request's state takes.
        let task = tokio::task::spawn_local(Box::pin(crate::exchange::serve(
            Arc::clone(&self.app),
            Rc::clone(&exchange),
            Rc::clone(&self.shm_freed),
            Rc::clone(&self.requests),
        )));
        exchange.set_task(task.abort_handle());
    }

    fn body_arrived(&self, request: usize) {
        if let Some(exchange) = self.requests.borrow().get(&request) {
            exchange.body_arrived();
        }
    }

    fn closed(&self, request: usize) {
        let exchange = self.requests.borrow_mut().remove(&request);
        if let Some(exchange) = exchange {
            exchange.cancel();
        }
    }

    fn port_added(&self, port: Rc<Port>) {
        self.new_ports.borrow_mut().push(port);
        self.wake.notify_one();
    }

    fn port_removed(&self, port: &Port) {
        let watcher = self
            .watchers
            .borrow_mut()
            .remove(&(port as *const Port as usize));
        if let Some(watcher) = watcher {
            watcher.abort();
        }
    }

    fn shm_freed(&self) {
        self.shm_freed.notify_waiters();
    }

    fn quit(&self) {
        self.quitting.set(true);
        self.wake.notify_one();
    }

    fn notices_held(&self) {
        // A drain wakes the sender when it is done.
        if self.draining.get() == 0 {
            self.notices_held.notify_one();
        }
    }

    fn ready(&self, main: SharedCtx) {
        self.became_ready.notify_waiters();
        for n in 1..self.threads {
            let app = Arc::clone(&self.app);
            let thread = std::thread::Builder::new()
                .name(format!("rvm-unit-{n}"))
                .spawn(move || {
                    let Some(ctx) = Ctx::sibling(main, Context::new(app, 1)) else {
                        unit::log(Level::Alert, "rvm: nxt_unit_ctx_alloc() failed");
                        return;
                    };
                    if let Err(error) = run(ctx) {
                        unit::log(Level::Alert, &format!("rvm: context {n}: {error:#}"));
                    }
                });
            match thread {
                Ok(thread) => self.siblings.borrow_mut().push(thread),
                Err(e) => {
                    unit::log(Level::Alert, &format!("rvm: cannot start thread {n}: {e}"));
                }
            }
        }
    }
}

/// Runs the context until libunit tells it to quit, then ends it (after the
/// contexts it started, if it is the main one).
pub fn run(ctx: Ctx<Context>) -> Result<()> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            // libunit lets go of a context only when told it is done.
            ctx.done();
            return Err(e).context("cannot start the context's event loop");
        }
    };
    let ctx = Rc::new(ctx);
    LocalSet::new().block_on(&runtime, drive(Rc::clone(&ctx)));
    // Tasks still holding the context go with the loop.
    drop(runtime);
    let ctx = Rc::into_inner(ctx).context("the context outlived its loop")?;
    for sibling in ctx.events().siblings.take() {
        let _ = sibling.join();
    }
    ctx.done();
    Ok(())
}

/// Watches each port libunit adds, until quit.
async fn drive(ctx: Rc<Ctx<Context>>) {
    let events = ctx.events();
    let sender = Rc::clone(&ctx);
    let sender = tokio::task::spawn_local(async move {
        loop {
            sender.events().notices_held.notified().await;
            notices::send_held();
        }
    });
    // What is still held when the loop ends goes out with `Ctx::done`.
    let _sender = AbortOnDrop(sender.abort_handle());
    notices::hold();
    loop {
        let ports = events.new_ports.take();
        for port in ports {
            let key = Rc::as_ptr(&port) as usize;
            let watcher = tokio::task::spawn_local(watch(Rc::clone(&ctx), port));
            events
                .watchers
                .borrow_mut()
                .insert(key, watcher.abort_handle());
        }
        if events.quitting.get() {
            return;
        }
        events.wake.notified().await;
    }
}

/// Processes `port` whenever its fd is readable, until it is removed.
///
/// A port's fd signals only that messages arrived since it was last drained
/// (Unit's shared request queue signals only when it goes from empty to not
/// empty), so readiness is cleared before draining, never after, and the port
/// is drained once as soon as it is watched: requests queued before this
/// process started (for one that died, say) would otherwise wait forever.
/// For the same reason every port is drained again when the context becomes
/// ready: until then libunit leaves the shared queue unread, so the wake-up of
/// a request queued meanwhile is spent.
async fn watch(ctx: Rc<Ctx<Context>>, port: Rc<Port>) {
    let fd = match watchable(&port) {
        Ok(fd) => fd,
        Err(e) => {
            let message = format!("rvm: cannot watch port fd {}: {e}", port.fd());
            return unit::log(Level::Alert, &message);
        }
    };
    if !drain(&ctx, &port).await {
        return;
    }
    loop {
        tokio::select! {
            ready = fd.readable() => {
                let Ok(mut ready) = ready else {
                    return;
                };
                if ready.ready().is_read_closed() {
                    // The other end is gone. libunit takes that for a graceful quit
                    // (once its requests are done) and reports the closed port as a
                    // processed message however often it is asked: tell it once, then
                    // stop watching the port rather than spin on it. Unit does this
                    // to retire a process when the application is reconfigured, so
                    // it is news, not trouble (a router that died is Unit's to report).
                    let _ = ctx.process(&port);
                    let message = format!(
                        "rvm: Unit closed port fd {}; quitting once the requests in flight are done",
                        port.fd()
                    );
                    return unit::log(Level::Info, &message);
                }
                ready.clear_ready();
            }
            () = ctx.events().became_ready.notified() => {}
        }
        if !drain(&ctx, &port).await {
            return;
        }
    }
}

/// Processes the messages waiting on `port` until libunit says it is empty,
/// letting other tasks run now and then; false once the port is gone.
async fn drain(ctx: &Ctx<Context>, port: &Port) -> bool {
    let events = ctx.events();
    events.draining.set(events.draining.get() + 1);
    let mut processed = 0u32;
    let live = loop {
        match ctx.process(port) {
            PortStatus::Processed => {
                processed += 1;
                if processed.is_multiple_of(MESSAGES_PER_TURN) {
                    // The requests read so far are served and their wake-ups sent
                    // before reading on: a port that never empties holds none back.
                    events.send_held_soon();
                    tokio::task::yield_now().await;
                }
            }
            PortStatus::Empty => break true,
            PortStatus::Failed => break port.is_live(),
        }
    };
    events.draining.set(events.draining.get() - 1);
    events.send_held_soon();
    live
}

/// A duplicate of the port's fd for the reactor: libunit closes its own when it
/// drops the port, and ours is deregistered and closed with the watcher, so the
/// reactor never holds a number libunit may reuse.
fn watchable(port: &Port) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the port is live, so libunit keeps its fd open for this call.
    let fd = unsafe { BorrowedFd::borrow_raw(port.fd()) }.try_clone_to_owned()?;
    // SAFETY: an OwnedFd is open and names the same file description until the
    // AsyncFd, which owns it, is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}
