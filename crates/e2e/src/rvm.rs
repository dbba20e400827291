//! The `rvm serve` front end: the application's settings become the server's
//! environment, its directories `--dir` flags.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{AppSpec, Frontend, Logs, Served};

/// A variable of the host's environment that no guest may see.
pub const HOST_ONLY_VARIABLE: (&str, &str) = ("RVM_TEST_HOST_ONLY", "visible-to-the-host-only");

/// How long a server has to compile its component and start listening.
const START_WAIT: Duration = Duration::from_secs(120);

pub struct RvmServe;

/// The `rvm` binary, built in this test's profile.
pub fn rvm_binary() -> std::path::PathBuf {
    crate::workspace_programs().join("rvm")
}

impl RvmServe {
    /// `rvm serve` of `app` with `extra` arguments before the component.
    pub fn command(app: &AppSpec, extra: &[&str]) -> Command {
        let mut command = Command::new(rvm_binary());
        command
            .env_clear()
            .env("RUST_LOG", "info")
            .env(HOST_ONLY_VARIABLE.0, HOST_ONLY_VARIABLE.1)
            .envs(app.env.iter().map(|(k, v)| (k, v)))
            .args(["serve", "--listen", "127.0.0.1:0"]);
        for dir in &app.dirs {
            command.arg("--dir").arg(dir);
        }
        command.args(extra).arg(&app.component);
        command
    }

    /// Starts `command`; the running server, or everything it said before it exited.
    pub fn spawn(command: Command) -> Result<Running, String> {
        let (child, addrs, logs) = start_listening(command, &["serving on http://"])?;
        Ok(Running {
            child,
            addr: addrs[0],
            logs,
        })
    }
}

/// Starts an `rvm` command and waits until its log announces each of
/// `announcements` ("… on http://ADDR"); the addresses announced, in their
/// order, or everything it said if it exited first.
pub(crate) fn start_listening(
    mut command: Command,
    announcements: &[&str],
) -> Result<(Child, Vec<SocketAddr>, Logs), String> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rvm");
    let logs = Logs::collect(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + START_WAIT;
    while Instant::now() < deadline {
        let lines: Option<Vec<String>> = announcements
            .iter()
            .map(|said| logs.wait_for_within(&[said], Duration::from_millis(50)))
            .collect();
        if let Some(lines) = lines {
            return Ok((
                child,
                lines.iter().map(|line| address(line)).collect(),
                logs,
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Let the log thread drain what the process wrote before exiting.
            std::thread::sleep(Duration::from_millis(100));
            return Err(format!("exited with {status}:\n{}", logs.text()));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(format!("did not start listening in time:\n{}", logs.text()))
}

/// The address a "… on http://ADDR" log line announces.
fn address(line: &str) -> SocketAddr {
    line.rsplit("http://")
        .next()
        .and_then(|a| a.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .expect("listen address in the log")
}

impl Frontend for RvmServe {
    fn name(&self) -> &'static str {
        "rvm serve"
    }

    fn start(&self, app: &AppSpec) -> Box<dyn Served> {
        Box::new(RvmServe::spawn(RvmServe::command(app, &[])).unwrap_or_else(|e| panic!("{e}")))
    }

    fn refuse(&self, app: &AppSpec) -> String {
        match RvmServe::spawn(RvmServe::command(app, &[])) {
            Ok(running) => panic!("{} started, but should have been refused", running.addr),
            Err(said) => said,
        }
    }
}

/// A running `rvm serve`; killed when dropped.
pub struct Running {
    child: Child,
    addr: SocketAddr,
    logs: Logs,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (a name such as `TERM`).
    pub fn signal(&self, signal: &str) {
        let _ = crate::kill(signal, &self.child.id().to_string());
    }

    /// Waits for the process to end; whether it exited 0.
    pub fn wait(mut self) -> bool {
        self.child.wait().is_ok_and(|status| status.success())
    }

    /// Sends `signal` and waits for the process to end; whether it exited 0.
    pub fn signal_and_wait(self, signal: &str) -> bool {
        self.signal(signal);
        self.wait()
    }
}

impl Served for Running {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn logs(&self) -> &Logs {
        &self.logs
    }

    fn stop(self: Box<Self>) -> bool {
        self.signal_and_wait("TERM")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
