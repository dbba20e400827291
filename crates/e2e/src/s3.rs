//! A real S3 endpoint of a test's own: moto's server (`moto_server`, which
//! scripts/setup installs), on a free loopback port, with one bucket. The
//! tests that need one print one loud line and skip where it is missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

/// How long the server has to answer (it is a Python program).
const START_WAIT: Duration = Duration::from_secs(60);
/// The bucket the tests' store lives in.
pub const BUCKET: &str = "rvm-store";

pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// A fresh endpoint with an empty bucket, or `None` (said loudly) where
    /// `moto_server` is missing.
    pub fn start() -> Option<S3Server> {
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: tests with an S3 store: no moto_server (scripts/setup installs it) ***\n"
            );
            return None;
        };
        let server = S3Server { child, port };
        let deadline = Instant::now() + START_WAIT;
        while !server.make_bucket() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    fn make_bucket(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
        else {
            return false;
        };
        let request = format!(
            "PUT /{BUCKET} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }

    /// The store URI, under a prefix.
    pub fn uri(&self) -> String {
        format!("s3://{BUCKET}/components")
    }

    /// The variables an S3 client of this endpoint reads.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
