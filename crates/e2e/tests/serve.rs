//! What only `rvm serve` does: flags over environment, signals, HTTP/1.0, and
//! streaming a body far larger than its memory.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rvm_e2e::http::{Connection, get};
use rvm_e2e::{AppSpec, RvmServe, Served};

fn serve(app: &AppSpec, flags: &[&str]) -> rvm_e2e::rvm::Running {
    RvmServe::spawn(RvmServe::command(app, flags)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn flags_win_over_the_environment() {
    let app = AppSpec::guest("secret").env("RVM_CLIENT_SECRET", "from-env");
    let served = serve(&app, &["--client-secret", "from-flag"]);
    assert_eq!(
        get(served.addr(), "/").text(),
        "secret: from-flag\nproduct: 42\n"
    );

    let app = AppSpec::guest("misbehave")
        .env("RVM_TIMEOUT", "30s")
        .env("RVM_FUEL", "0");
    let served = serve(&app, &["--timeout", "300ms", "--env", "FROM_FLAG=yes"]);
    let started = Instant::now();
    assert_eq!(get(served.addr(), "/spin").status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(served.addr(), "/env").text(), "FROM_FLAG=yes\n");
}

#[test]
fn malformed_flags_are_refused_naming_flag_and_value() {
    for (flag, value) in [
        ("--fuel", "abc"),
        ("--max-memory", "9TiB"),
        ("--timeout", "forever"),
    ] {
        let said = RvmServe::spawn(RvmServe::command(&AppSpec::guest("hello"), &[flag, value]))
            .err()
            .unwrap_or_else(|| panic!("{flag} {value} was accepted"));
        assert!(said.contains(flag) && said.contains(value), "{said}");
    }
}

#[test]
fn sigterm_and_sigint_let_in_flight_requests_finish() {
    for signal in ["TERM", "INT"] {
        let served = serve(&AppSpec::guest("misbehave"), &[]);
        let addr = served.addr();
        let in_flight = std::thread::spawn(move || get(addr, "/slow?ms=800"));
        std::thread::sleep(Duration::from_millis(200));
        let logs = served.logs().clone();
        assert!(
            served.signal_and_wait(signal),
            "exits cleanly on SIG{signal}"
        );
        let response = in_flight.join().unwrap();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "slept\n")
        );
        logs.wait_for(&["finishing in-flight requests"]);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "no longer listening"
        );
    }
}

#[test]
fn http_1_0_requests_without_host_are_served() {
    let served = serve(&AppSpec::guest("echo"), &[]);
    let response = Connection::open(served.addr())
        .unwrap()
        .exchange(b"GET /old HTTP/1.0\r\n\r\n")
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-echo-uri"), Some(&b"/old"[..]));
}

/// Resident memory of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_1_gib_echo_streams_without_growing_resident_memory() {
    const TOTAL: u64 = 1 << 30;
    const CHUNK: usize = 256 * 1024;
    let served = serve(&AppSpec::guest("echo"), &["--timeout", "5m"]);
    let pid = served.pid();
    // Warm up: the first requests map the pool slot and the code.
    let mut warm = Connection::open(served.addr()).unwrap();
    for _ in 0..3 {
        assert!(warm.post("/", &[7u8; CHUNK * 4]).unwrap().complete);
    }
    let before = resident_kib(pid);

    let mut connection = Connection::open(served.addr()).unwrap();
    connection
        .post_head("/", usize::try_from(TOTAL).unwrap())
        .unwrap();
    let mut writer = connection.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![0x5Au8; CHUNK];
        for _ in 0..TOTAL / CHUNK as u64 {
            writer.write_all(&chunk).unwrap();
        }
    });
    // Read the head, then count the body as it streams, sampling memory.
    let mut reader = std::io::BufReader::new(connection.stream().try_clone().unwrap());
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        reader.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut received = 0u64;
    let mut peak = before;
    let mut buffer = vec![0u8; CHUNK];
    while received < TOTAL {
        let n = reader.read(&mut buffer).unwrap();
        assert!(n > 0, "body cut off at {received}");
        assert!(buffer[..n].iter().all(|&b| b == 0x5A));
        received += n as u64;
        if received % (64 << 20) < n as u64 {
            peak = peak.max(resident_kib(pid));
        }
    }
    sender.join().unwrap();
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("resident before {before} KiB, peak {peak} KiB");
    assert!(growth_mib <= 8, "resident memory grew by {growth_mib} MiB");
}
