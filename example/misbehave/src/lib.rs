//! A guest that misbehaves on demand, one path per failure the host must contain:
//!
//! | path | what the guest does |
//! |---|---|
//! | `/trap` | panics (traps) before sending a response |
//! | `/spin` | loops forever on the CPU |
//! | `/grow` | allocates memory without bound |
//! | `/hang` | waits forever without answering |
//! | `/no-response` | returns without ever setting a response |
//! | `/fail-mid-body` | sends headers and part of the body, then traps |
//! | `/outbound?url=URL` | calls `URL` over `wasi:http/outgoing-handler`, reports the outcome |
//! | `/env` | lists the environment variables it can see |
//! | `/read?path=PATH` | reads a file |
//! | `/connect?addr=HOST:PORT` | opens a TCP connection with `wasi:sockets` |
//! | `/slow?ms=N` | answers after N milliseconds (a well-behaved slow request) |
//! | `/counter` | counts its calls in a global: always 1 with a fresh instance per request |
//! | `/long-header` | answers with a 300-byte header name (more than Unit can carry) |
//! | `/big-header?kib=N` | answers with a header of N KiB (wasi:http takes up to 128 KiB of fields) |

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

struct Misbehave;

/// Survives between requests only if an instance is reused.
static CALLS: AtomicU32 = AtomicU32::new(0);

impl Guest for Misbehave {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
                .unwrap_or_default()
        };
        match path {
            "/trap" => panic!("misbehave: trap requested"),
            "/spin" => spin(),
            "/grow" => grow(),
            "/hang" => wasip2::clocks::monotonic_clock::subscribe_duration(u64::MAX).block(),
            "/no-response" => drop(out),
            "/fail-mid-body" => fail_mid_body(out),
            "/outbound" => respond(out, 200, &outbound(&param("url"))),
            "/env" => respond(out, 200, &environment()),
            "/read" => respond(out, 200, &read(&param("path"))),
            "/connect" => respond(out, 200, &connect(&param("addr"))),
            "/slow" => {
                let ms: u64 = param("ms").parse().unwrap_or(100);
                wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
                respond(out, 200, "slept\n")
            }
            "/long-header" => {
                let name = "x-".to_string() + &"long".repeat(75) + "-name";
                let headers = Fields::from_list(&[(name, b"value".to_vec())]).expect("valid field");
                let response = OutgoingResponse::new(headers);
                let body = response.body().expect("response body is taken once");
                ResponseOutparam::set(out, Ok(response));
                OutgoingBody::finish(body, None).expect("finish body");
            }
            "/big-header" => {
                let kib: usize = param("kib").parse().unwrap_or(1);
                let headers = Fields::from_list(&[("x-big".to_string(), vec![b'b'; kib << 10])])
                    .expect("valid field");
                let response = OutgoingResponse::new(headers);
                let body = response.body().expect("response body is taken once");
                ResponseOutparam::set(out, Ok(response));
                OutgoingBody::finish(body, None).expect("finish body");
            }
            "/counter" => {
                let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
                respond(out, 200, &format!("calls: {calls}\n"))
            }
            _ => respond(out, 404, "unknown misbehaviour\n"),
        }
    }
}

fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn grow() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // Filled, so every page is really touched.
        held.push(black_box(vec![0xA5; 1 << 20]));
    }
}

fn fail_mid_body(out: ResponseOutparam) {
    let response = OutgoingResponse::new(Fields::new());
    let body = response.body().expect("response body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("body stream is taken once");
    stream.blocking_write_and_flush(b"partial body, then ").expect("write body");
    // Long enough for the host to have sent the headers and this first part.
    wasip2::clocks::monotonic_clock::subscribe_duration(100_000_000).block();
    panic!("misbehave: failing after the headers were sent");
}

/// `GET url` through the host; says how it went.
fn outbound(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("bad url {url:?}\n");
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = OutgoingRequest::new(Fields::new());
    let scheme = if scheme == "https" { Scheme::Https } else { Scheme::Http };
    let path = if path.is_empty() { "/" } else { path };
    if request.set_scheme(Some(&scheme)).is_err()
        || request.set_authority(Some(authority)).is_err()
        || request.set_path_with_query(Some(path)).is_err()
    {
        return format!("bad url {url:?}\n");
    }
    let future = match outgoing_handler::handle(request, None) {
        Ok(future) => future,
        Err(code) => return format!("error: {code:?}\n"),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => format!("status: {}\n", response.status()),
        Some(Ok(Err(code))) => format!("error: {code:?}\n"),
        other => format!("error: {other:?}\n"),
    }
}

fn environment() -> String {
    std::env::vars().map(|(key, value)| format!("{key}={value}\n")).collect()
}

fn read(path: &str) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => format!("read: {text}"),
        Err(e) => format!("error: {e}\n"),
    }
}

fn connect(addr: &str) -> String {
    match std::net::TcpStream::connect(addr) {
        Ok(_) => "connected\n".to_string(),
        Err(e) => format!("error: {e}\n"),
    }
}

fn respond(out: ResponseOutparam, status: u16, text: &str) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
        .expect("valid header fields");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("valid status");
    let body = response.body().expect("response body is taken once");
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().expect("body stream is taken once");
    for chunk in text.as_bytes().chunks(4096) {
        stream.blocking_write_and_flush(chunk).expect("write body");
    }
    drop(stream);
    OutgoingBody::finish(body, None).expect("finish body");
}

wasip2::http::proxy::export!(Misbehave);
