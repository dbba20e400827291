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
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Connections each worker's socket holds before the worker accepts them, as
/// tokio's `TcpListener::bind` sets.
const BACKLOG: u32 = 1024;

/// A private directory for the component's compiled code, which the workers
/// load instead of compiling it again; removed when dropped.
pub struct CodeDir {
    path: PathBuf,
}

impl CodeDir {
    pub fn new() -> Result<CodeDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "rvm-serve-{}-{nanos:08x}",
            std::process::id()
        ));
        // Made here, not found: nobody else can have put code in it.
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot make {}", path.display()))?;
        Ok(CodeDir { path })
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

/// In a worker: the listening socket the supervisor passed as stdin.
pub fn inherited_listener() -> Result<std::net::TcpListener> {
    // A worker outliving its supervisor would serve on unsupervised.
    rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
        .context("cannot tie this worker to its supervisor")?;
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot take stdin")?;
    let listener = std::net::TcpListener::from(stdin);
    listener
        .local_addr()
        .context("stdin is not a listening socket: workers are started by `rvm serve`")?;
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    Ok(listener)
}

/// Binds `addr` and keeps `count` workers serving it until SIGINT or SIGTERM;
/// `code` lives as long as they may need it. Runs on one thread: a worker is
/// sent SIGTERM when the thread that started it ends.
pub async fn supervise(addr: SocketAddr, count: NonZeroUsize, code: CodeDir) -> Result<()> {
    let first = listen(addr)?;
    // Port 0 chose one; the other sockets join it.
    let local = first.local_addr().context("listener address")?;
    let mut sockets = vec![first];
    for _ in 1..count.get() {
        sockets.push(listen(local)?);
    }
    let command = Arc::new(WorkerCommand {
        program: std::env::current_exe().context("cannot find the rvm program")?,
        args: worker_args(code.path()),
    });
    let (stop, stopping) = watch::channel(false);
    let mut workers = JoinSet::new();
    for (slot, socket) in (1..).zip(sockets) {
        let worker = keep_running(slot, Arc::clone(&command), socket, stopping.clone());
        workers.spawn(worker);
    }
    tracing::info!("serving on http://{local} with {count} worker processes");
    let signal = shutdown_signal().await;
    tracing::info!("{signal}: stopping the workers");
    let _ = stop.send(true);
    let mut clean = true;
    while let Some(stopped) = workers.join_next().await {
        clean &= stopped.unwrap_or(false);
    }
    if !clean {
        bail!("a worker did not stop cleanly");
    }
    tracing::info!("stopped");
    Ok(())
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

/// How to start a worker.
struct WorkerCommand {
    program: PathBuf,
    args: Vec<OsString>,
}

impl WorkerCommand {
    /// A worker serving `listener`.
    fn spawn(&self, listener: &std::net::TcpListener) -> Result<Child> {
        let listener = listener.try_clone().context("cannot share the listener")?;
        Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))
    }
}

/// This process's own `serve` arguments, with what makes it a worker.
fn worker_args(code: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["serve".into(), "--worker-code".into(), code.into()];
    args.extend(std::env::args_os().skip_while(|a| a != "serve").skip(1));
    args
}

/// Runs worker `slot`, starting it again whenever it exits, until told to
/// stop; then whether it exited cleanly.
async fn keep_running(
    slot: usize,
    command: Arc<WorkerCommand>,
    listener: std::net::TcpListener,
    mut stop: watch::Receiver<bool>,
) -> bool {
    loop {
        match command.spawn(&listener) {
            Ok(mut child) => {
                let pid = child.id();
                let exited = tokio::select! {
                    status = child.wait() => Some(status),
                    _ = stop.wait_for(|stop| *stop) => None,
                };
                match exited {
                    None => return terminate(child, pid).await,
                    Some(Ok(status)) if status.success() => {
                        // SIGINT from a terminal reaches the workers with
                        // the supervisor: not a reason to start another.
                        if stopping_within(&mut stop, RESTART_PAUSE).await {
                            return true;
                        }
                        tracing::warn!("worker {slot} ({}) was stopped; starting another", shown(pid));
                        continue;
                    }
                    Some(Ok(status)) => {
                        tracing::error!(
                            "worker {slot} ({}) {}; starting another",
                            shown(pid),
                            ended(status)
                        );
                    }
                    Some(Err(error)) => {
                        tracing::error!("worker {slot} ({}): {error}; starting another", shown(pid));
                    }
                }
            }
            Err(error) => tracing::error!("cannot start worker {slot}: {error:#}"),
        }
        if stopping_within(&mut stop, RESTART_PAUSE).await {
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

/// Asks a worker to finish its requests and exit; whether it exited cleanly.
async fn terminate(mut child: Child, pid: Option<u32>) -> bool {
    let pid = pid.and_then(|pid| Pid::from_raw(i32::try_from(pid).ok()?));
    if let Some(pid) = pid
        && let Err(error) = rustix::process::kill_process(pid, Signal::TERM)
    {
        tracing::warn!("cannot stop worker {pid:?}: {error}");
    }
    child.wait().await.is_ok_and(|status| status.success())
}

fn shown(pid: Option<u32>) -> String {
    pid.map_or_else(|| "pid unknown".into(), |pid| format!("pid {pid}"))
}

fn ended(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => format!("was killed by signal {signal}"),
        None => format!("exited with {status}"),
    }
}
