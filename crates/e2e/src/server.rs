//! `rvm server` for the service's tests: a store, a compiled code cache and a
//! log of its own, both listeners on free loopback ports, and the admin API's
//! calls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::http::{Response, request};
use crate::rvm::start_listening;
use crate::{Logs, TempDir};

/// A running `rvm server`; killed when dropped.
pub struct RvmServer {
    child: Child,
    pub invoke: SocketAddr,
    pub admin: SocketAddr,
    logs: Logs,
}

/// What an `rvm server` is started with.
pub struct ServerSpec {
    pub store: String,
    /// The admin listener's address.
    pub admin: String,
    pub cache: PathBuf,
    pub env: Vec<(String, String)>,
}

impl ServerSpec {
    /// A server of `store`, keeping compiled code in `cache`.
    pub fn new(store: &str, cache: &Path) -> ServerSpec {
        ServerSpec {
            store: store.to_string(),
            admin: "127.0.0.1:0".to_string(),
            cache: cache.to_path_buf(),
            env: vec![("RVM_STORE_POLL".into(), "100ms".into())],
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> ServerSpec {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(crate::rvm::rvm_binary());
        command
            .env_clear()
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["server", "--listen", "127.0.0.1:0", "--admin", &self.admin])
            .arg("--store")
            .arg(&self.store)
            .arg("--cache-dir")
            .arg(&self.cache);
        command
    }

    /// Starts the server; panics if it does not come up.
    pub fn start(&self) -> RvmServer {
        self.spawn()
            .unwrap_or_else(|said| panic!("rvm server did not start: {said}"))
    }

    /// Starts the server; everything it said if it exited instead.
    pub fn spawn(&self) -> Result<RvmServer, String> {
        let announcements = ["invoking components on http://", "admin API on http://"];
        let (child, addrs, logs) = start_listening(self.command(), &announcements)?;
        Ok(RvmServer {
            child,
            invoke: addrs[0],
            admin: addrs[1],
            logs,
        })
    }
}

impl RvmServer {
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// `POST /deploy/{name}?{query}` with the component at `path`.
    pub fn deploy(&self, name: &str, path: &Path, query: &str) -> Response {
        let bytes = std::fs::read(path).expect("read the component");
        self.deploy_bytes(name, &bytes, query, &[])
    }

    pub fn deploy_bytes(
        &self,
        name: &str,
        bytes: &[u8],
        query: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let target = if query.is_empty() {
            format!("/deploy/{name}")
        } else {
            format!("/deploy/{name}?{query}")
        };
        request(self.admin, "POST", &target, headers, bytes)
    }

    /// An admin call without a body.
    pub fn admin_call(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.admin, method, path, headers, b"")
    }

    /// `GET` on the invoke listener.
    pub fn invoke(&self, path: &str) -> Response {
        crate::http::get(self.invoke, path)
    }

    /// Stops it as SIGTERM does; whether it exited 0.
    pub fn stop(mut self) -> bool {
        let _ = crate::kill("TERM", &self.child.id().to_string());
        self.child.wait().is_ok_and(|status| status.success())
    }
}

impl Drop for RvmServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store directory and a cache directory of a test's own.
pub struct Scratch {
    dir: TempDir,
}

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        Scratch {
            dir: TempDir::new(label),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
}
