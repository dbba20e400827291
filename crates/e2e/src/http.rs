//! A deliberately small HTTP/1.1 client over a raw socket: tests need to send
//! bytes no well-behaved client sends (non-UTF-8 headers, oversize heads, half
//! bodies) and to tell a complete body from one that was cut off.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits for any one read before calling the server stuck.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The body ended as its framing says it must (Content-Length reached, last
    /// chunk read). `false` means the server cut it off.
    pub complete: bool,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection; requests on it reuse it (keep-alive).
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        Connection::open_waiting(addr, READ_TIMEOUT)
    }

    /// A connection whose reads give up after `timeout`: for tests where a
    /// stuck server is the failure they look for.
    pub fn open_waiting(addr: SocketAddr, timeout: Duration) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Sends raw bytes and reads one response.
    pub fn exchange(&mut self, request: &[u8]) -> io::Result<Response> {
        self.stream().write_all(request)?;
        self.read_response(false)
    }

    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.exchange(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
    }

    pub fn post(&mut self, path: &str, body: &[u8]) -> io::Result<Response> {
        self.post_head(path, body.len())?;
        self.exchange(body)
    }

    /// Sends the head of a POST whose body of `length` bytes the caller sends.
    pub fn post_head(&mut self, path: &str, length: usize) -> io::Result<()> {
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n\r\n");
        self.stream().write_all(head.as_bytes())
    }

    /// Reads a response; `head_only` for answers to HEAD.
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let status_line = self.line()?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let mut line = Vec::new();
            self.reader.read_until(b'\n', &mut line)?;
            let line = line
                .strip_suffix(b"\r\n")
                .ok_or_else(|| bad("truncated head"))?;
            if line.is_empty() {
                break;
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or_else(|| bad("bad header"))?;
            let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
            headers.push((name, line[colon + 1..].trim_ascii().to_vec()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            complete: true,
        };
        if head_only || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case(b"chunked"));
        let length = response
            .header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        response.complete = if chunked {
            self.read_chunked(&mut response.body)
        } else if let Some(length) = length {
            let read = (&mut self.reader)
                .take(length)
                .read_to_end(&mut response.body);
            read.is_ok_and(|n| n as u64 == length)
        } else {
            self.reader.read_to_end(&mut response.body).is_ok()
        };
        Ok(response)
    }

    /// Reads chunks into `body`; whether the last chunk arrived.
    fn read_chunked(&mut self, body: &mut Vec<u8>) -> bool {
        loop {
            let Ok(size_line) = self.line() else {
                return false;
            };
            let Ok(size) = usize::from_str_radix(size_line.split(';').next().unwrap_or(""), 16)
            else {
                return false;
            };
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while let Ok(line) = self.line() {
                    if line.is_empty() {
                        return true;
                    }
                }
                return false;
            }
            let start = body.len();
            body.resize(start + size, 0);
            if self.reader.read_exact(&mut body[start..]).is_err() || self.line().is_err() {
                body.truncate(start);
                return false;
            }
        }
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        line.strip_suffix("\r\n")
            .map(str::to_string)
            .ok_or_else(|| bad(format!("truncated line {line:?}")))
    }
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// One request with `headers` and `body` on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    Connection::open(addr)
        .and_then(|mut c| c.exchange(&request))
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

/// One request on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Connection::open(addr)
        .and_then(|mut c| c.get(path))
        .unwrap_or_else(|e| panic!("GET {path} on {addr}: {e}"))
}
