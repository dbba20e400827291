//! The NGINX Unit front end: a `unitd` of its own in a temporary directory
//! (modules, state, control socket, log, pid), the module installed there as
//! `rvm.unit.so`, and each application PUT over the control socket.
//!
//! Unit is found through `UNIT_SRC`, else `/opt/unit`: a built source tree.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{AppSpec, Frontend, Logs, Served, TempDir, free_port};

/// Where a built Unit tree is looked for when `UNIT_SRC` is not set.
const DEFAULT_TREE: &str = "/opt/unit";
/// How long unitd has to come up, and an application to start.
const START_WAIT: Duration = Duration::from_secs(60);
/// Bodies up to this size reach the application (Unit's default is 8 MiB).
const MAX_BODY: u64 = 256 << 20;

pub struct UnitFrontend {
    unitd: PathBuf,
    module: PathBuf,
}

impl UnitFrontend {
    /// The Unit front end, if a built Unit tree is here; says once, loudly, if not.
    pub fn available() -> Option<&'static UnitFrontend> {
        static FRONTEND: OnceLock<Option<UnitFrontend>> = OnceLock::new();
        FRONTEND
            .get_or_init(|| match built_tree() {
                Ok(tree) => Some(UnitFrontend {
                    unitd: tree.join("build/sbin/unitd"),
                    module: crate::workspace_programs().join("libnxt_rvm.so"),
                }),
                Err(tree) => {
                    // Straight to stderr: the test harness captures eprintln!.
                    let _ = writeln!(
                        std::io::stderr(),
                        "\n*** SKIPPED: NGINX Unit tests: no built Unit tree at {} (set UNIT_SRC to one where \
                         `./configure && make && make build/lib/libunit.a` ran) ***\n",
                        tree.display()
                    );
                    None
                }
            })
            .as_ref()
    }

    /// A fresh unitd with the module installed and nothing configured.
    pub fn unitd(&self) -> Unitd {
        Unitd::start(self)
    }
}

/// The Unit tree named by `UNIT_SRC`, else `/opt/unit`, if it is built (has
/// `unitd` and libunit's object); else where it was looked for.
pub(crate) fn built_tree() -> Result<PathBuf, PathBuf> {
    let tree =
        std::env::var_os("UNIT_SRC").map_or_else(|| PathBuf::from(DEFAULT_TREE), PathBuf::from);
    let built =
        tree.join("build/sbin/unitd").exists() && tree.join("build/src/nxt_unit.o").exists();
    if built { Ok(tree) } else { Err(tree) }
}

impl Frontend for UnitFrontend {
    fn name(&self) -> &'static str {
        "NGINX Unit"
    }

    fn start(&self, app: &AppSpec) -> Box<dyn Served> {
        let mut unitd = self.unitd();
        let port = free_port();
        if let Err(said) = unitd.put("/config", &config(app, port)) {
            panic!(
                "Unit refused the application: {said}\n{}",
                unitd.logs.text()
            );
        }
        unitd.addr = SocketAddr::from(([127, 0, 0, 1], port));
        Box::new(unitd)
    }

    fn refuse(&self, app: &AppSpec) -> String {
        let unitd = self.unitd();
        match unitd.put("/config", &config(app, free_port())) {
            Ok(()) => panic!("Unit accepted an application it should have refused"),
            Err(said) => {
                // The prototype's alert may reach the log file just after the answer.
                unitd
                    .logs
                    .wait_for_within(&["[alert]", "rvm: application"], Duration::from_secs(10));
                format!("{said}\n{}", unitd.logs.text())
            }
        }
    }
}

/// The configuration serving `app` alone on `port`.
pub fn config(app: &AppSpec, port: u16) -> Value {
    let name = app_name(app);
    json!({
        "settings": { "http": { "max_body_size": MAX_BODY } },
        "listeners": { format!("127.0.0.1:{port}"): { "pass": format!("applications/{name}") } },
        "applications": { name: application(app) },
    })
}

/// One application object for `app`.
pub fn application(app: &AppSpec) -> Value {
    // A log line per request, as `rvm serve` writes, for the tests to read.
    let mut environment = serde_json::Map::from_iter([("RUST_LOG".to_string(), json!("info"))]);
    environment.extend(
        app.env
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str()))),
    );
    let mut application = json!({
        "type": "wasm-wasi-component",
        "component": app.component,
        "environment": environment,
        "processes": 1,
    });
    if !app.dirs.is_empty() {
        application["access"] = json!({ "filesystem": app.dirs });
    }
    application
}

/// Applications are named after their component, as `rvm serve` names them.
pub fn app_name(app: &AppSpec) -> String {
    app.component
        .file_stem()
        .map_or("app".into(), |s| s.to_string_lossy().into_owned())
}

/// A running unitd of its own; stopped when dropped.
pub struct Unitd {
    child: Child,
    /// unitd's files; removed after unitd stops (fields drop after `Drop::drop`).
    _dir: TempDir,
    control: PathBuf,
    addr: SocketAddr,
    logs: Logs,
}

impl Unitd {
    fn start(frontend: &UnitFrontend) -> Unitd {
        let dir = TempDir::new("unit");
        for sub in ["modules", "state", "tmp"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("unit directories");
        }
        // The router, which writes large request bodies there, runs unprivileged.
        let tmp = dir.path().join("tmp");
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .expect("make Unit's tmp directory writable");
        std::fs::copy(&frontend.module, dir.path().join("modules/rvm.unit.so"))
            .expect("install the module");
        let control = dir.path().join("control.sock");
        let log = dir.path().join("unit.log");
        std::fs::write(&log, "").expect("unit log");
        let child = Command::new(&frontend.unitd)
            .arg("--no-daemon")
            .arg("--control")
            .arg(format!("unix:{}", control.display()))
            .arg("--pid")
            .arg(dir.path().join("unit.pid"))
            .arg("--log")
            .arg(&log)
            .arg("--modulesdir")
            .arg(dir.path().join("modules"))
            .arg("--statedir")
            .arg(dir.path().join("state"))
            .arg("--tmpdir")
            .arg(dir.path().join("tmp"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A group of its own, so that none of its processes outlives the test.
            .process_group(0)
            .spawn()
            .expect("start unitd");
        let logs = Logs::tail(&log);
        let deadline = Instant::now() + START_WAIT;
        while UnixStream::connect(&control).is_err() {
            assert!(
                Instant::now() < deadline,
                "unitd did not start:\n{}",
                logs.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Unitd {
            child,
            _dir: dir,
            control,
            addr,
            logs,
        }
    }

    /// PUTs `value` at `path` of the control API; the error answer if refused.
    pub fn put(&self, path: &str, value: &Value) -> Result<(), String> {
        let (status, answer) = self.control_request("PUT", path, &value.to_string());
        if status == 200 {
            Ok(())
        } else {
            Err(format!("{status}: {answer}"))
        }
    }

    /// Status and body of a control API request.
    pub fn control_request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = UnixStream::connect(&self.control).expect("connect to the control socket");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .expect("send to the control socket");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("read the control socket");
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_string();
        (status, body)
    }

    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Pids of the application processes of `name`.
    pub fn app_pids(&self, name: &str) -> Vec<u32> {
        self.pids_named(&format!("unit: \"{name}\" application"))
    }

    /// Pids of this unitd's processes whose title contains `title`.
    pub fn pids_named(&self, title: &str) -> Vec<u32> {
        live_pids()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(title))
            })
            .filter(|pid| self.is_ours(*pid))
            .collect()
    }

    /// Whether `pid` descends from this unitd.
    fn is_ours(&self, mut pid: u32) -> bool {
        while pid > 1 {
            if pid == self.child.id() {
                return true;
            }
            let Some(parent) = stat_field(pid, PARENT) else {
                return false;
            };
            pid = parent;
        }
        false
    }

    fn signal(&self, signal: &str) {
        let _ = crate::kill(signal, &self.child.id().to_string());
    }
}

impl Served for Unitd {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn logs(&self) -> &Logs {
        &self.logs
    }

    fn stop(mut self: Box<Self>) -> bool {
        // SIGQUIT is Unit's graceful stop.
        self.signal("QUIT");
        self.child.wait().is_ok_and(|status| status.success())
    }
}

impl Drop for Unitd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("TERM");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Unit tells its children to quit over their ports; one that was still
        // starting when unitd went (a prototype compiling, say) can miss that
        // and sleep on as an orphan. Say so, and end the group.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut left = group_members(self.child.id());
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left = group_members(self.child.id());
        }
        if !left.is_empty() {
            eprintln!(
                "unitd {} left processes behind, killed: {left:?}",
                self.child.id()
            );
            let _ = crate::kill("KILL", &format!("-{}", self.child.id()));
        }
    }
}

/// The pids of the processes alive now.
fn live_pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
}

/// Fields of `/proc/PID/stat`, counted after the parenthesised name.
const PARENT: usize = 1;
const GROUP: usize = 2;

fn stat_field(pid: u32, field: usize) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(field)?
        .parse()
        .ok()
}

/// Pids and titles of the live processes in process group `group`.
fn group_members(group: u32) -> Vec<String> {
    live_pids()
        .filter(|pid| stat_field(*pid, GROUP) == Some(group))
        .filter_map(|pid| {
            // A zombie has no command line, and is already gone.
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (!title.is_empty()).then_some(())?;
            Some(format!(
                "{pid} {}",
                String::from_utf8_lossy(&title).trim_end_matches(['\0', ' '])
            ))
        })
        .collect()
}
