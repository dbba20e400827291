//! The NGINX Unit front end: a `unitd` of its own in a temporary directory
//! (modules, state, control socket, log, pid), the module installed there as
//! `rvm.unit.so`, and each application PUT over the control socket.
//!
//! Unit is found through `UNIT_SRC` (one built source tree, or several
//! separated by `:`), else `/opt/unit`.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
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

/// NGINX Unit, or FreeUnit, from one built source tree, with the module built
/// against that tree.
pub struct UnitFrontend {
    /// What the tests' output calls it: `NGINX Unit 1.35.0`, `FreeUnit 1.36.0`.
    label: &'static str,
    tree: PathBuf,
    unitd: PathBuf,
    module: OnceLock<PathBuf>,
}

impl UnitFrontend {
    /// A front end for each built tree `UNIT_SRC` names (a `:`-separated
    /// list), else for `/opt/unit` if it is built. A named tree that is not
    /// built is an error; no tree at all is said once, loudly, and no test of
    /// Unit runs.
    pub fn all() -> &'static [UnitFrontend] {
        static FRONTENDS: OnceLock<Vec<UnitFrontend>> = OnceLock::new();
        FRONTENDS.get_or_init(|| {
            let trees = unit_trees().unwrap_or_else(|error| panic!("{error}"));
            if trees.is_empty() {
                // Straight to stderr: the test harness captures eprintln!.
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPED: NGINX Unit tests: no built Unit tree at {DEFAULT_TREE} (set \
                     UNIT_SRC to one or more, `:`-separated, where `./configure && make && \
                     make build/lib/libunit.a` ran) ***\n"
                );
            }
            trees
                .into_iter()
                .map(|tree| UnitFrontend {
                    label: Box::leak(tree_label(&tree).into_boxed_str()),
                    unitd: tree.join("build/sbin/unitd"),
                    tree,
                    module: OnceLock::new(),
                })
                .collect()
        })
    }

    /// A fresh unitd with the module installed and nothing configured.
    pub fn unitd(&self) -> Unitd {
        Unitd::start(self)
    }

    /// The module built against this tree, once.
    fn module(&self) -> &Path {
        self.module
            .get_or_init(|| crate::unit_module(&self.tree, self.label))
    }
}

/// The trees `UNIT_SRC` names, each checked to be built, or `/opt/unit` if it is.
pub(crate) fn unit_trees() -> Result<Vec<PathBuf>, String> {
    let Some(named) = std::env::var_os("UNIT_SRC") else {
        let tree = PathBuf::from(DEFAULT_TREE);
        return Ok(if is_built(&tree) {
            vec![tree]
        } else {
            Vec::new()
        });
    };
    std::env::split_paths(&named)
        .filter(|tree| !tree.as_os_str().is_empty())
        .map(|tree| {
            if is_built(&tree) {
                Ok(tree)
            } else {
                Err(format!(
                    "UNIT_SRC names {}, which is not a built Unit tree (no build/sbin/unitd \
                     and build/src/nxt_unit.o)",
                    tree.display()
                ))
            }
        })
        .collect()
}

fn is_built(tree: &Path) -> bool {
    tree.join("build/sbin/unitd").exists() && tree.join("build/src/nxt_unit.o").exists()
}

/// `FreeUnit 1.36.0` or `NGINX Unit 1.35.0`: the family from the tree's
/// README, the version its build generated.
fn tree_label(tree: &Path) -> String {
    let readme = std::fs::read_to_string(tree.join("README.md")).unwrap_or_default();
    let family = if readme.starts_with("# FreeUnit") {
        "FreeUnit"
    } else {
        "NGINX Unit"
    };
    let version =
        version_define(tree, "NXT_VERSION").unwrap_or_else(|| "of unknown version".to_string());
    format!("{family} {version}")
}

/// A definition of the tree's generated `nxt_version.h`, unquoted.
fn version_define(tree: &Path, name: &str) -> Option<String> {
    let header = std::fs::read_to_string(tree.join("build/include/nxt_version.h")).ok()?;
    header.lines().find_map(|line| {
        let value = line.strip_prefix("#define ")?.strip_prefix(name)?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

impl Frontend for UnitFrontend {
    fn name(&self) -> &'static str {
        self.label
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
        std::fs::copy(frontend.module(), dir.path().join("modules/rvm.unit.so"))
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
