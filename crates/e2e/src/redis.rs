//! A real `redis-server` of a test's own, on a free loopback port, keeping
//! nothing on disk; the tests that need one print one loud line and skip
//! where it is not installed.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long the server has to accept connections.
const START_WAIT: Duration = Duration::from_secs(20);

pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// A fresh server, or `None` (said loudly) where `redis-server` is missing.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_on(free_port())
    }

    /// Stops it answering (`SIGSTOP`), or (`resume`) lets it answer again,
    /// everything it holds intact: a store that is down for a while.
    pub fn pause(&self) {
        let _ = crate::kill("STOP", &self.child.id().to_string());
    }

    pub fn resume(&self) {
        let _ = crate::kill("CONT", &self.child.id().to_string());
    }

    fn start_on(port: u16) -> Option<RedisServer> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: tests with a shared Redis store: no redis-server \
                 (scripts/setup installs it) ***\n"
            );
            return None;
        };
        let server = RedisServer { child, port };
        let deadline = Instant::now() + START_WAIT;
        while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    /// The store URI of its database 0.
    pub fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
