//! Harness of the end-to-end suite: builds the example guests, starts a front
//! end serving one of them, and talks HTTP to it.
//!
//! Every behaviour test runs against each front end in [`frontends`]: the `rvm`
//! binary always, NGINX Unit with the module where a built Unit tree exists.

pub mod http;
mod logs;
pub mod redis;
pub mod rvm;
pub mod s3;
pub mod server;
pub mod unit;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub use logs::Logs;
pub use rvm::RvmServe;
pub use unit::UnitFrontend;

/// What a test asks a front end to serve: a component, the `RVM_*` settings of
/// its application, and the directories it may use.
#[derive(Clone, Debug, Default)]
pub struct AppSpec {
    pub component: PathBuf,
    pub env: Vec<(String, String)>,
    pub dirs: Vec<PathBuf>,
}

impl AppSpec {
    /// The example guest `name` with default settings.
    pub fn guest(name: &str) -> AppSpec {
        AppSpec {
            component: guest(name),
            ..AppSpec::default()
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> AppSpec {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn dir(mut self, dir: &Path) -> AppSpec {
        self.dirs.push(dir.to_path_buf());
        self
    }
}

/// A way of serving an application.
pub trait Frontend: Sync {
    fn name(&self) -> &'static str;
    /// Serves `app`; panics if it does not come up.
    fn start(&self, app: &AppSpec) -> Box<dyn Served>;
    /// Tries to serve an application that must be refused; returns what the
    /// operator is told (exit message or log).
    fn refuse(&self, app: &AppSpec) -> String;
}

/// An application being served.
pub trait Served {
    fn addr(&self) -> SocketAddr;
    fn logs(&self) -> &Logs;
    /// Stops gracefully (as on SIGTERM); true if it exited cleanly.
    fn stop(self: Box<Self>) -> bool;
}

/// The front ends to test on this machine: `rvm serve`, and Unit from each
/// built tree found (else a line says its tests were skipped).
pub fn frontends() -> Vec<&'static dyn Frontend> {
    let mut frontends: Vec<&'static dyn Frontend> = vec![&RvmServe];
    frontends.extend(UnitFrontend::all().iter().map(|unit| unit as &dyn Frontend));
    frontends
}

/// Runs `test` against every front end available here.
pub fn each_frontend(test: impl Fn(&dyn Frontend)) {
    for frontend in frontends() {
        eprintln!("-- front end: {}", frontend.name());
        test(frontend);
    }
}

/// Sends `signal` (a name such as `TERM`) to `target`: a pid, or `-PGID` for a
/// whole process group.
pub fn kill(signal: &str, target: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .args(["-s", signal, "--", target])
        .status()
}

/// Waits until `check` holds, for at most 30 seconds (a few of a store's
/// poll intervals, a worker's restart).
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Root of this repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// The compiled example guest `name`: a Rust one (`hello`, `echo`, `secret`,
/// `misbehave`, `cipher`), built with the others on first use, or `rvm_py`, the Python
/// guest (built by `example/python/build.sh`, which needs componentize-py).
pub fn guest(name: &str) -> PathBuf {
    static RUST: OnceLock<PathBuf> = OnceLock::new();
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    let example = repo_root().join("example");
    let dir = if name.ends_with("_py") {
        PYTHON.get_or_init(|| {
            let status = Command::new(example.join("python/build.sh"))
                .status()
                .expect("run example/python/build.sh");
            assert!(
                status.success(),
                "building the Python guest failed (is componentize-py installed?)"
            );
            example.join("target/python")
        })
    } else {
        RUST.get_or_init(|| {
            let status = cargo()
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--locked",
                ])
                .current_dir(&example)
                .status()
                .expect("run cargo to build the example guests");
            assert!(status.success(), "building the example guests failed");
            example.join("target/wasm32-wasip2/release")
        })
    };
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "no example guest {}", path.display());
    path
}

/// `cargo` for a nested build, without the variables cargo set for this test binary
/// (its package's name, version, manifest directory, …): build scripts that track them
/// (ring's does) would see them change, and rebuild the dependency graph above them.
fn cargo() -> Command {
    const SET_FOR_THE_CRATE: [&str; 6] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
    ];
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if SET_FOR_THE_CRATE.iter().any(|set| name.starts_with(set)) || name == "OUT_DIR" {
            cargo.env_remove(&*name);
        }
    }
    cargo
}

/// The directory of the profile this test binary was built with (`debug` for
/// `dev`, else the profile's name), so that the binaries it runs are built alike.
fn profile_dir() -> PathBuf {
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// Builds, once, the `rvm` binary in this test's profile; returns the
/// directory it is in.
fn workspace_programs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        build_in_this_profile(&["-p", "rvm"], None);
        profile_dir()
    })
}

/// The Unit module built against `tree`, in this test's profile, kept where a
/// build for another tree does not overwrite it.
fn unit_module(tree: &Path, label: &str) -> PathBuf {
    // Every tree's build writes the same file: one at a time.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    build_in_this_profile(&["-p", "nxt_rvm"], Some(tree));
    let dir = profile_dir()
        .join("unit-modules")
        .join(label.replace(' ', "-"));
    std::fs::create_dir_all(&dir).expect("a directory for the module");
    let module = dir.join("libnxt_rvm.so");
    std::fs::copy(profile_dir().join("libnxt_rvm.so"), &module).expect("keep the module");
    module
}

/// `cargo build` of `packages` in this test's profile, against `unit_tree`.
fn build_in_this_profile(packages: &[&str], unit_tree: Option<&Path>) {
    let status = cargo_build(packages, unit_tree)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {packages:?} failed");
}

/// Tries to build the Unit module against `tree`: what cargo said, and whether
/// it succeeded.
pub fn try_building_the_module(tree: &Path) -> (bool, String) {
    let output = cargo_build(&["-p", "nxt_rvm"], Some(tree))
        .output()
        .expect("run cargo build");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn cargo_build(packages: &[&str], unit_tree: Option<&Path>) -> Command {
    let mut build = cargo();
    build
        .args(["build", "--locked"])
        .args(packages)
        .current_dir(repo_root());
    if let Some(tree) = unit_tree {
        build.env("UNIT_SRC", tree);
    }
    // `dev` builds into `debug`; every other profile into a directory of its name.
    let profile = profile_dir();
    if let Some(name) = profile.file_name().filter(|name| *name != "debug") {
        build.arg("--profile").arg(name);
    }
    build
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A scratch directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rvm-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
