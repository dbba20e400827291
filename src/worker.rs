//! One libunit context and the tokio current-thread loop that drives it on its
//! own thread: every port's fd is watched by the loop's reactor, and a readable
//! port is processed until it is empty (see `drain`). Requests are served as
//! tasks of the same loop, so no libunit call ever leaves this thread.
//!
//! The loop holds libunit's queue wake-ups to Unit's router (see
//! [`Context::hold_wake_ups`]) while it has work: once the requests read from
//! a port have had their first turn, the loop sends the wake-ups, so the router
//! is woken once for a batch's acknowledgements and once for its responses. A
//! guest runs in a task of its own (the engine's), so one computing for a long
//! time yields at each epoch tick and the task that sends the wake-ups runs
//! between its turns.

#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::sync::Notify;
use tokio::task::{AbortHandle, LocalSet};

use crate::exchange::{self, Exchange};
use crate::serving::Serving;
use crate::unit::{self, Context, Events, Level, Port, PortStatus, Request, SharedContext};

/// Port messages processed in a row before other tasks get a turn.
const MESSAGES_PER_TURN: u32 = 64;
/// Failed reads in a row after which a port waits for its next wake-up.
const FAILURES_IN_A_ROW: u32 = 8;

/// A libunit context's loop: its state, told of everything by libunit (see
/// [`Events`]).
pub struct Worker {
    serving: Arc<Serving>,
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
    wake_ups_to_send: Notify,
}

impl Worker {
    pub fn new(serving: Arc<Serving>, threads: u32) -> Worker {
        Worker {
            serving,
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
            wake_ups_to_send: Notify::new(),
        }
    }
}

impl Events for Worker {
    /// Registers the request and serves it in a task of its own, which
    /// removes it when done.
    fn request(&self, request: Request) {
        let exchange = Rc::new(Exchange::new(request));
        let key = exchange.key();
        let requests = Rc::clone(&self.requests);
        let serve = exchange::serve(
            Arc::clone(&self.serving),
            Rc::clone(&exchange),
            Rc::clone(&self.shm_freed),
        );
        // Boxed: tokio moves a task's future as it makes and finishes the
        // task (several copies of it per request), and a pointer is cheaper to
        // move than the few KiB a request's state takes.
        let task = tokio::task::spawn_local(Box::pin(async move {
            serve.await;
            requests.borrow_mut().remove(&key);
        }));
        exchange.set_task(task.abort_handle());
        self.requests.borrow_mut().insert(key, exchange);
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

    fn first_wake_up_held(&self) {
        // A drain has them sent when it is done.
        if self.draining.get() == 0 {
            self.wake_ups_to_send.notify_one();
        }
    }

    fn ready(&self, main: SharedContext) {
        self.became_ready.notify_waiters();
        for n in 1..self.threads {
            let serving = Arc::clone(&self.serving);
            let thread = std::thread::Builder::new()
                .name(format!("rvm-unit-{n}"))
                .spawn(move || {
                    let Some(context) = Context::sibling(main, Worker::new(serving, 1)) else {
                        unit::log(Level::Alert, "nxt_unit_ctx_alloc() failed");
                        return;
                    };
                    if let Err(error) = run(context) {
                        unit::log(Level::Alert, &format!("context {n}: {error:#}"));
                    }
                });
            match thread {
                Ok(thread) => self.siblings.borrow_mut().push(thread),
                Err(e) => {
                    unit::log(Level::Alert, &format!("cannot start thread {n}: {e}"));
                }
            }
        }
    }
}

/// Runs the context until libunit tells it to quit, then ends it (after the
/// contexts it started, if it is the main one).
pub fn run(context: Context<Worker>) -> Result<()> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            // libunit lets go of a context only when told it is done.
            context.done();
            return Err(e).context("cannot start the context's event loop");
        }
    };
    let context = Rc::new(context);
    LocalSet::new().block_on(&runtime, drive(Rc::clone(&context)));
    // Tasks still holding the context go with the loop.
    drop(runtime);
    let context = Rc::into_inner(context).context("the context outlived its loop")?;
    // The other contexts quit on messages whose wake-ups this one may hold.
    context.send_wake_ups();
    for sibling in context.events().siblings.take() {
        let _ = sibling.join();
    }
    context.done();
    Ok(())
}

/// Watches each port libunit adds, until quit. The task that sends held
/// wake-ups, like the watchers, ends with the loop's tasks; what is still
/// held then goes out as the context ends.
async fn drive(context: Rc<Context<Worker>>) {
    context.hold_wake_ups();
    tokio::task::spawn_local(send_wake_ups_when_asked(Rc::clone(&context)));
    let worker = context.events();
    loop {
        for port in worker.new_ports.take() {
            let key = Rc::as_ptr(&port) as usize;
            let watcher = tokio::task::spawn_local(watch(Rc::clone(&context), port));
            worker
                .watchers
                .borrow_mut()
                .insert(key, watcher.abort_handle());
        }
        if worker.quitting.get() {
            return;
        }
        worker.wake.notified().await;
    }
}

/// Sends the held wake-ups each time [`send_wake_ups_soon`] asks for it. A
/// task of its own, so that it runs after the tasks already waiting to run:
/// those of the requests just read, whose acknowledgements go out with the
/// same write.
async fn send_wake_ups_when_asked(context: Rc<Context<Worker>>) {
    loop {
        context.events().wake_ups_to_send.notified().await;
        context.send_wake_ups();
    }
}

/// Has the held wake-ups sent soon, if any are held.
fn send_wake_ups_soon(context: &Context<Worker>) {
    if context.any_wake_ups_held() {
        context.events().wake_ups_to_send.notify_one();
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
async fn watch(context: Rc<Context<Worker>>, port: Rc<Port>) {
    let fd = match port.watch() {
        Ok(fd) => fd,
        Err(e) => {
            let message = format!("cannot watch port fd {}: {e}", port.fd());
            return unit::log(Level::Alert, &message);
        }
    };
    if !drain(&context, &port).await {
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
                    let _ = context.process(&port);
                    let message = format!(
                        "Unit closed port fd {}; quitting once the requests in flight are done",
                        port.fd()
                    );
                    return unit::log(Level::Info, &message);
                }
                ready.clear_ready();
            }
            () = context.events().became_ready.notified() => {}
        }
        if !drain(&context, &port).await {
            return;
        }
    }
}

/// Processes the messages waiting on `port` until libunit says it is empty,
/// letting other tasks run now and then; false once the port is gone.
async fn drain(context: &Context<Worker>, port: &Port) -> bool {
    let worker = context.events();
    worker.draining.set(worker.draining.get() + 1);
    let (mut processed, mut failed) = (0u32, 0u32);
    let live = loop {
        match context.process(port) {
            PortStatus::Processed => {
                failed = 0;
                processed += 1;
                if processed.is_multiple_of(MESSAGES_PER_TURN) {
                    // The requests read so far are served and their wake-ups sent
                    // before reading on: a port that never empties holds none back.
                    send_wake_ups_soon(context);
                    tokio::task::yield_now().await;
                }
            }
            PortStatus::Empty => break true,
            PortStatus::Failed if !port.is_live() => break false,
            // One message libunit refuses (FreeUnit 1.36 refuses malformed
            // ones) must not hold back those behind it, which no wake-up
            // announces again; a port whose every read fails must not spin.
            PortStatus::Failed => {
                failed += 1;
                if failed == FAILURES_IN_A_ROW {
                    break true;
                }
            }
        }
    };
    worker.draining.set(worker.draining.get() - 1);
    send_wake_ups_soon(context);
    live
}
