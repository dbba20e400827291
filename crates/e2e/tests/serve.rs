//! What only `rvm serve` does: flags over environment, signals, HTTP/1.0, and
//! streaming a body far larger than its memory.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rvm_e2e::http::{Connection, get};
use rvm_e2e::{AppSpec, RvmServe, Served, eventually};

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
        ("--workers", "0"),
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
        served.signal(signal);
        eventually("new connections refused while one is in flight", || {
            std::net::TcpStream::connect(addr).is_err()
        });
        assert!(!in_flight.is_finished(), "the drain outlasted the request");
        assert!(served.wait(), "exits cleanly on SIG{signal}");
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

/// The processes `pid` started that are still running.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|child| child.parse().unwrap())
        .filter(|&child| running(child))
        .collect()
}

/// Whether `pid` is a process that has not ended (a zombie has).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|s| !s.starts_with('Z'))
    })
}

#[test]
fn workers_that_end_are_replaced_and_end_with_their_supervisor() {
    let served = serve(&AppSpec::guest("hello"), &["--workers", "2"]);
    let supervisor = served.pid();
    assert!(served.logs().count_at_least(" ready on http://", 2) >= 2);
    let workers = children(supervisor);
    assert_eq!(workers.len(), 2, "{workers:?}");

    // Killed, or stopped by someone else: another takes its place.
    for (signal, said) in [
        ("KILL", "was killed by signal 9"),
        ("TERM", "was stopped; starting another"),
    ] {
        let before = children(supervisor);
        rvm_e2e::kill(signal, &before[0].to_string()).unwrap();
        served
            .logs()
            .wait_for(&[&format!("(pid {}) {said}", before[0])]);
        eventually("a new worker in place of the one that ended", || {
            let now = children(supervisor);
            now.len() == 2 && now.contains(&before[1]) && !now.contains(&before[0])
        });
        for _ in 0..20 {
            assert_eq!(get(served.addr(), "/").status, 200);
        }
    }

    // Many restarts later (more than a socket queues datagrams), a new
    // worker still comes to serve.
    for _ in 0..12 {
        let before = children(supervisor);
        std::thread::sleep(Duration::from_millis(600));
        rvm_e2e::kill("KILL", &before[0].to_string()).unwrap();
        let mut replaced = Vec::new();
        eventually("a new worker", || {
            replaced = children(supervisor);
            replaced.len() == 2 && !replaced.contains(&before[0])
        });
        let new = replaced.iter().find(|&&pid| pid != before[1]).unwrap();
        served
            .logs()
            .wait_for(&[&format!("worker{{pid={new}}}"), " ready on http://"]);
    }
    assert_eq!(get(served.addr(), "/").status, 200);

    // A port in use is refused, not shared with the workers holding it.
    let mut second = std::process::Command::new(rvm_e2e::rvm::rvm_binary());
    second
        .args([
            "serve",
            "--workers",
            "2",
            "--listen",
            &served.addr().to_string(),
        ])
        .arg(AppSpec::guest("hello").component);
    let said = RvmServe::spawn(second)
        .err()
        .expect("a second server on the same port was started");
    assert!(said.contains("cannot listen on"), "{said}");

    // A worker is started by its supervisor, with its listener as stdin.
    let worker = |supervisor: u32| {
        let said = std::process::Command::new(rvm_e2e::rvm::rvm_binary())
            .args(["serve", "--worker-code", "/nonexistent", "--worker-of"])
            .arg(supervisor.to_string())
            .arg(AppSpec::guest("hello").component)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(!said.status.success());
        String::from_utf8_lossy(&said.stderr).into_owned()
    };
    let said = worker(std::process::id());
    assert!(said.contains("stdin is not a listening socket"), "{said}");
    let said = worker(supervisor);
    assert!(
        said.contains(&format!("the supervisor (pid {supervisor}) is gone")),
        "{said}"
    );

    // A supervisor killed outright takes its workers with it.
    let workers = children(supervisor);
    drop(served);
    eventually("the workers end with their supervisor", || {
        workers.iter().all(|&worker| !running(worker))
    });
}

#[test]
fn sigint_to_the_process_group_stops_every_worker_once() {
    use std::os::unix::process::CommandExt;
    // As a terminal's Ctrl-C: the signal reaches the supervisor and its workers.
    let mut command = RvmServe::command(&AppSpec::guest("hello"), &["--workers", "2"]);
    command.process_group(0);
    let served = RvmServe::spawn(command).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(served.addr(), "/").status, 200);
    let logs = served.logs().clone();
    rvm_e2e::kill("INT", &format!("-{}", served.pid())).unwrap();
    assert!(served.wait(), "exits cleanly");
    logs.wait_for(&["rvm::workers", "stopped"]);
    assert!(!logs.text().contains("starting another"), "{}", logs.text());
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
    // One process, whose memory is the server's.
    let served = serve(
        &AppSpec::guest("echo"),
        &["--timeout", "5m", "--workers", "1"],
    );
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
