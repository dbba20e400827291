//! The worker processes of `rvm serve`. The supervisor binds one listening
//! socket per worker on the same address (`SO_REUSEPORT`, so that the kernel
//! spreads connections over them) and starts each worker with its socket as
//! stdin; it starts another on the same socket when one exits, so that the
//! connections waiting there are served; on SIGINT or SIGTERM it passes SIGTERM
//! on and waits for them. Processes rather than threads: a copy-on-write fault
//! in a guest's memory then flushes the TLB of the one core running that
//! process, not of every core serving.

use std::ffi::OsString;
use std::fs::DirBuilder;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal};
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::listener::shutdown_signal;

/// Least time between two starts of one worker, so that a worker that cannot
/// start does not spin.
const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// Exits in a row, each within [`RESTART_PAUSE`] of its start, after which a
/// worker is taken to be unable to start and the supervisor stops.
const MAX_QUICK_EXITS: u32 = 3;

/// Connections each worker's socket holds before the worker accepts them, as
/// tokio's `TcpListener::bind` sets.
const BACKLOG: u32 = 1024;

/// Where in the code directory workers say they are serving.
const READY_SOCKET: &str = "ready.sock";

/// Longest a worker waits to say it is serving.
const READY_WAIT: Duration = Duration::from_secs(1);

/// Longest the supervisor waits for every worker to say so.
const START_LIMIT: Duration = Duration::from_secs(60);

/// What the code directories are called: `rvm-serve-{pid}-{nanos}`.
const CODE_DIR_PREFIX: &str = "rvm-serve-";

/// Held locked by the supervisor that made a code directory, for its life.
const OWNER_LOCK: &str = "owner.lock";

/// A private directory for the component's compiled code, which the workers
/// load instead of compiling it again; removed when dropped.
pub struct CodeDir {
    path: PathBuf,
    /// Locked while this supervisor lives, so that none removes the directory.
    _owner: std::fs::File,
}

impl CodeDir {
    pub fn new() -> Result<CodeDir> {
        remove_abandoned_code_dirs();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "{CODE_DIR_PREFIX}{}-{nanos:08x}",
            std::process::id()
        ));
        // Made here, not found: nobody else can have put code in it.
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot make {}", path.display()))?;
        let owner = std::fs::File::create(path.join(OWNER_LOCK))
            .and_then(|owner| owner.lock().map(|()| owner))
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(CodeDir {
            path,
            _owner: owner,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for CodeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the code directories whose supervisor is gone without removing
/// its own (killed outright): those whose owner lock nobody holds.
fn remove_abandoned_code_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(CODE_DIR_PREFIX)
        {
            continue;
        }
        // A directory just made has no lock file yet: it is left alone.
        let abandoned = std::fs::File::open(entry.path().join(OWNER_LOCK))
            .is_ok_and(|owner| owner.try_lock().is_ok());
        if abandoned {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// In a worker: the listening socket the supervisor passed as stdin, which is
/// then `/dev/null`, so that the socket closes when the worker stops accepting.
pub fn inherited_listener(supervisor: u32) -> Result<std::net::TcpListener> {
    // A worker outliving its supervisor would serve on unsupervised; one
    // that died before this line was reached is no longer the parent.
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
        .context("cannot tie this worker to its supervisor")?;
    let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get());
    if parent != i32::try_from(supervisor).ok() {
        bail!("the supervisor (pid {supervisor}) is gone");
    }
    let socket = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot take stdin")?;
    if !rustix::net::sockopt::socket_acceptconn(&socket).unwrap_or(false) {
        bail!("stdin is not a listening socket: workers are started by `rvm serve`");
    }
    let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
    rustix::stdio::dup2_stdin(null).context("cannot let go of stdin")?;
    let listener = std::net::TcpListener::from(socket);
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    Ok(listener)
}

/// In a worker: tells the supervisor, which made `code`, that it serves.
pub fn report_ready(code: &Path) {
    // Only the first workers are waited for; a later one finds no one there.
    let _ = UnixDatagram::unbound().and_then(|socket| {
        socket.set_write_timeout(Some(READY_WAIT))?;
        socket.send_to(&[], code.join(READY_SOCKET))
    });
}

/// Binds `addr` and keeps `count` workers serving it until SIGINT or SIGTERM;
/// `code` lives as long as they may need it. Runs on one thread: a worker is
/// sent SIGTERM when the thread that started it ends.
pub async fn supervise(addr: SocketAddr, count: NonZeroUsize, code: CodeDir) -> Result<()> {
    // Without SO_REUSEPORT first, so that a port another server holds is
    // refused rather than shared with it.
    let local = std::net::TcpListener::bind(addr)
        .and_then(|probe| probe.local_addr())
        .with_context(|| format!("cannot listen on {addr}"))?;
    let sockets = (0..count.get())
        .map(|_| listen(local))
        .collect::<Result<Vec<_>>>()?;
    let ready = tokio::net::UnixDatagram::bind(code.path().join(READY_SOCKET))
        .context("cannot make the workers' ready socket")?;
    let command = Arc::new(WorkerCommand {
        args: worker_args(code.path()),
    });
    let (stop, stopping) = watch::channel(false);
    let mut workers = JoinSet::new();
    for (slot, socket) in (1..).zip(sockets) {
        let worker = keep_running(slot, Arc::clone(&command), socket, stopping.clone());
        workers.spawn(worker);
    }
    let signal = shutdown_signal();
    tokio::pin!(signal);
    // The socket closes with this: a worker started later is told at once
    // that no one waits, and none waits on a full queue.
    let all_ready = async move {
        for _ in 0..count.get() {
            let _ = ready.recv(&mut []).await;
        }
    };
    let all_ready = tokio::time::timeout(START_LIMIT, all_ready);
    let cause = tokio::select! {
        started = all_ready => match started {
            Err(_) => Err("the workers did not all start in time"),
            Ok(()) => {
                tracing::info!("serving on http://{local} with {count} worker processes");
                tokio::select! {
                    signal = &mut signal => Ok(signal),
                    _ = workers.join_next() => Err("a worker cannot serve"),
                }
            }
        },
        signal = &mut signal => Ok(signal),
        _ = workers.join_next() => Err("a worker cannot start"),
    };
    if let Ok(signal) = cause {
        tracing::info!("{signal}: stopping the workers");
    }
    let _ = stop.send(true);
    let mut clean = true;
    while let Some(stopped) = workers.join_next().await {
        clean &= stopped.unwrap_or(false);
    }
    match cause {
        Err(why) => bail!("{why} (its log is above): stopped"),
        Ok(_) if !clean => bail!("a worker did not stop cleanly"),
        Ok(_) => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// One worker's listening socket on `addr`, open to the others'.
fn listen(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let listen = || {
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)?.into_std()
    };
    listen().with_context(|| format!("cannot listen on {addr}"))
}

/// This very program, even if its file was replaced since it started.
const THIS_PROGRAM: &str = "/proc/self/exe";

/// How to start a worker: [`THIS_PROGRAM`] with this process's `serve`
/// arguments.
struct WorkerCommand {
    args: Vec<OsString>,
}

impl WorkerCommand {
    /// A worker serving `listener`.
    fn spawn(&self, listener: &std::net::TcpListener) -> Result<Child> {
        let listener = listener.try_clone().context("cannot share the listener")?;
        Command::new(THIS_PROGRAM)
            .args(&self.args)
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .spawn()
            .context("cannot start a worker")
    }
}

/// This process's own `serve` arguments, with what makes it a worker.
fn worker_args(code: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "serve".into(),
        "--worker-code".into(),
        code.into(),
        "--worker-of".into(),
        std::process::id().to_string().into(),
    ];
    // `rvm` has no options of its own: the subcommand is always the first argument.
    args.extend(std::env::args_os().skip(2));
    args
}

/// Runs worker `slot` on `listener`, starting it again whenever it exits,
/// until told to stop (then whether it stopped cleanly) or it cannot start
/// (then false).
async fn keep_running(
    slot: usize,
    command: Arc<WorkerCommand>,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let mut quick_exits = 0;
    loop {
        if *stop.borrow() {
            return true;
        }
        let started = Instant::now();
        let mut lived = Duration::ZERO;
        match command.spawn(&listener) {
            Ok(mut child) => {
                let pid = Shown(child.id());
                let exited = tokio::select! {
                    status = child.wait() => Some(status),
                    _ = stop.wait_for(|stop| *stop) => None,
                };
                lived = started.elapsed();
                match exited {
                    None => {
                        // New connections are refused, not queued for no one.
                        drop(listener);
                        return terminate(slot, child, pid).await;
                    }
                    // SIGINT from a terminal reaches the workers with the
                    // supervisor: no reason to start another if it stops.
                    Some(Ok(status)) if stopped(status) => {
                        if stopping_within(&mut stop, RESTART_PAUSE).await {
                            return true;
                        }
                        tracing::warn!("worker {slot} ({pid}) was stopped; starting another");
                    }
                    Some(Ok(status)) => {
                        tracing::error!("worker {slot} ({pid}) {}", ended(status));
                    }
                    Some(Err(error)) => {
                        tracing::error!("worker {slot} ({pid}) is lost: {error}");
                    }
                }
            }
            Err(error) => tracing::error!("worker {slot}: {error:#}"),
        }
        quick_exits = if lived < RESTART_PAUSE {
            quick_exits + 1
        } else {
            0
        };
        if quick_exits == MAX_QUICK_EXITS {
            tracing::error!(
                "worker {slot} ended {MAX_QUICK_EXITS} times within {RESTART_PAUSE:?} of starting"
            );
            return false;
        }
        if stopping_within(&mut stop, RESTART_PAUSE.saturating_sub(lived)).await {
            return true;
        }
    }
}

/// Whether the supervisor stops within `pause`.
async fn stopping_within(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::time::timeout(pause, stop.wait_for(|stop| *stop))
        .await
        .is_ok()
}

/// Asks a worker to finish its requests and exit; whether it did.
async fn terminate(slot: usize, mut child: Child, pid: Shown) -> bool {
    if let Some(raw) = pid
        .0
        .and_then(|pid| Pid::from_raw(i32::try_from(pid).ok()?))
        && let Err(error) = rustix::process::kill_process(raw, Signal::TERM)
    {
        tracing::warn!("cannot stop worker {slot} ({pid}): {error}");
    }
    match child.wait().await {
        Ok(status) if stopped(status) => true,
        Ok(status) => {
            tracing::error!("worker {slot} ({pid}) {} as it stopped", ended(status));
            false
        }
        Err(error) => {
            tracing::error!("worker {slot} ({pid}) is lost: {error}");
            false
        }
    }
}

/// Whether a worker ended as asked: exited 0, or a stop signal came before it
/// could watch for one (as it started).
fn stopped(status: ExitStatus) -> bool {
    let asked = [Signal::TERM.as_raw(), Signal::INT.as_raw()];
    status.success()
        || status
            .signal()
            .is_some_and(|signal| asked.contains(&signal))
}

fn ended(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended: {status}"),
    }
}

/// A worker's pid, for log lines.
#[derive(Clone, Copy)]
struct Shown(Option<u32>);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(pid) => write!(f, "pid {pid}"),
            None => f.write_str("pid unknown"),
        }
    }
}
