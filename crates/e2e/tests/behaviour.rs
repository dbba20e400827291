//! What every front end must do: serve the example guests over real HTTP, and
//! contain every failure with a clear answer, a log line naming the cause, and
//! the next request served by the same process.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use rvm_e2e::http::{Connection, get};
use rvm_e2e::{AppSpec, Served, TempDir, each_frontend};

/// The process behind `served` still answers, with a fresh instance.
fn still_serves(served: &dyn Served) {
    let response = get(served.addr(), "/counter");
    assert_eq!(
        response.status, 200,
        "the next request after a failure: {response:?}"
    );
    assert_eq!(response.text(), "calls: 1\n");
}

#[test]
fn hello_answers_and_logs_the_request() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("hello"));
        let response = get(served.addr(), "/some/path?q=1");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "Hello from rvm\n");
        assert!(response.complete);
        let line = served
            .logs()
            .wait_for(&["request served", "path=/some/path", "status=200"]);
        assert!(
            line.contains("app=hello") && line.contains("method=GET"),
            "{line}"
        );
        assert!(line.contains("fuel=") && line.contains("ms="), "{line}");
        assert!(!line.contains("q=1"), "queries stay out of the log: {line}");
    });
}

#[test]
fn keep_alive_connections_serve_many_requests() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("hello"));
        let mut connection = Connection::open(served.addr()).unwrap();
        for _ in 0..20 {
            let response = connection.get("/").unwrap();
            assert_eq!(
                (response.status, response.text().as_str()),
                (200, "Hello from rvm\n")
            );
        }
        // Every request ends as served: a front end that stops reading the body
        // at its Content-Length must not pass for a client gone.
        assert_eq!(served.logs().count_at_least("request served", 20), 20);
        assert!(
            !served.logs().text().contains("abandoned"),
            "{}",
            served.logs().text()
        );
    });
}

#[test]
fn every_request_gets_a_fresh_instance() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave"));
        let mut connection = Connection::open(served.addr()).unwrap();
        for _ in 0..5 {
            assert_eq!(connection.get("/counter").unwrap().text(), "calls: 1\n");
        }
    });
}

#[test]
fn instances_are_reused_only_when_asked_and_retired_by_a_failure() {
    each_frontend(|frontend| {
        // A budget that requests sharing it would exhaust long before the end.
        let app = AppSpec::guest("misbehave")
            .env("RVM_INSTANCE_REUSE", "3")
            .env("RVM_FUEL", "2000000");
        let served = frontend.start(&app);
        let mut connection = Connection::open(served.addr()).unwrap();
        let mut counter = || connection.get("/counter").unwrap().text();
        // One instance serves three requests in turn, its globals surviving.
        for expected in [
            "calls: 1\n",
            "calls: 2\n",
            "calls: 3\n",
            "calls: 1\n",
            "calls: 2\n",
        ] {
            assert_eq!(counter(), expected);
        }
        let mut connection = Connection::open(served.addr()).unwrap();
        assert_eq!(connection.get("/trap").unwrap().status, 500);
        // A trap retires its instance: the next request starts afresh.
        assert_eq!(connection.get("/counter").unwrap().text(), "calls: 1\n");
        // Fuel is each request's own.
        for _ in 0..200 {
            assert_eq!(connection.get("/counter").unwrap().status, 200);
        }
        assert_eq!(connection.get("/spin").unwrap().status, 500);
        served
            .logs()
            .wait_for(&["path=/spin", "fuel budget of 2000000 exhausted"]);
        assert_eq!(connection.get("/counter").unwrap().text(), "calls: 1\n");
    });
}

#[test]
fn echo_streams_the_body_back_with_request_details() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("echo"));
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let response = Connection::open(served.addr())
            .unwrap()
            .post("/up?x=1", &body)
            .unwrap();
        assert_eq!(response.status, 200);
        assert!(response.complete);
        assert!(response.body == body, "echoed body differs");
        assert_eq!(response.header("x-echo-method"), Some(&b"POST"[..]));
        assert_eq!(response.header("x-echo-uri"), Some(&b"/up?x=1"[..]));
    });
}

#[test]
fn rvm_world_guest_gets_the_client_secret_and_multiply() {
    each_frontend(|frontend| {
        let app = AppSpec::guest("secret").env("RVM_CLIENT_SECRET", "s3cr3t-value");
        let served = frontend.start(&app);
        let response = get(served.addr(), "/?a=2.5&b=4");
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "secret: s3cr3t-value\nproduct: 10\n");

        let dir = TempDir::new("secret");
        let file = dir.path().join("secret.txt");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let app = AppSpec::guest("secret").env("RVM_CLIENT_SECRET_FILE", file.to_str().unwrap());
        let served = frontend.start(&app);
        assert_eq!(
            get(served.addr(), "/").text(),
            "secret: from-a-file\nproduct: 42\n"
        );
    });
}

#[test]
fn python_guest_for_the_rvm_world_runs_unchanged() {
    // componentize-py components import all of WASI, not just the proxy world.
    each_frontend(|frontend| {
        let app = AppSpec::guest("rvm_py").env("RVM_CLIENT_SECRET", "from-python");
        let served = frontend.start(&app);
        let response = get(served.addr(), "/?a=2.5&b=4");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), "secret: from-python\nproduct: 10\n");
        assert_eq!(
            get(served.addr(), "/").text(),
            "secret: from-python\nproduct: 42\n"
        );
    });
}

#[test]
fn client_secret_is_empty_when_none_is_set() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("secret"));
        assert_eq!(get(served.addr(), "/").text(), "secret: \nproduct: 42\n");
    });
}

#[test]
fn trap_before_the_response_is_a_500_with_the_trap_in_the_log() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave"));
        let response = get(served.addr(), "/trap");
        assert_eq!(response.status, 500);
        assert_eq!(response.text(), "the application failed (trap)\n");
        let line = served
            .logs()
            .wait_for(&["request failed", "path=/trap", "status=500"]);
        assert!(
            line.contains("guest trapped: wasm trap: wasm `unreachable`"),
            "{line}"
        );
        assert!(
            line.contains(" at ") && line.contains(" <- "),
            "wasm backtrace: {line}"
        );
        still_serves(&*served);
    });
}

#[test]
fn a_host_call_that_fails_the_guest_is_a_500_with_the_cause_in_the_log() {
    // wasi:http takes up to 128 KiB of header fields: a guest asking for more
    // is stopped there, as by a trap. A large head within it is served.
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave"));
        let response = get(served.addr(), "/big-header?kib=100");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-big").map(<[u8]>::len), Some(100 << 10));
        let response = get(served.addr(), "/big-header?kib=200");
        assert_eq!(response.status, 500);
        assert_eq!(response.text(), "the application failed (trap)\n");
        let line = served
            .logs()
            .wait_for(&["request failed", "path=/big-header", "status=500"]);
        assert!(
            line.contains("guest trapped: total size of fields exceeds limit at "),
            "{line}"
        );
        still_serves(&*served);
    });
}

#[test]
fn exhausted_fuel_is_a_500_naming_the_budget() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave").env("RVM_FUEL", "5000000"));
        let response = get(served.addr(), "/spin");
        assert_eq!(response.status, 500);
        assert_eq!(
            response.text(),
            "the application exhausted its fuel budget\n"
        );
        served
            .logs()
            .wait_for(&["path=/spin", "fuel budget of 5000000 exhausted (RVM_FUEL)"]);
        still_serves(&*served);
    });
}

#[test]
fn memory_limit_is_a_500_naming_the_limit() {
    each_frontend(|frontend| {
        let app = AppSpec::guest("misbehave").env("RVM_MAX_MEMORY", "16MiB");
        let served = frontend.start(&app);
        let response = get(served.addr(), "/grow");
        assert_eq!(response.status, 500);
        assert_eq!(response.text(), "the application hit its memory limit\n");
        served.logs().wait_for(&[
            "path=/grow",
            "memory limit of 16MiB reached (RVM_MAX_MEMORY)",
        ]);
        still_serves(&*served);
    });
}

#[test]
fn spinning_guest_is_stopped_at_the_wall_clock_limit_while_others_are_served() {
    each_frontend(|frontend| {
        let app = AppSpec::guest("misbehave")
            .env("RVM_FUEL", "0")
            .env("RVM_TIMEOUT", "2s");
        let served = frontend.start(&app);
        let addr = served.addr();
        let spinning = std::thread::spawn(move || {
            let started = Instant::now();
            (get(addr, "/spin"), started.elapsed())
        });
        // While one guest spins, others are answered promptly.
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(get(addr, "/counter").status, 200);
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "{:?}",
                started.elapsed()
            );
        }
        let (response, took) = spinning.join().unwrap();
        assert_eq!(response.status, 504);
        assert_eq!(
            response.text(),
            "the application did not finish within 2s\n"
        );
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(4),
            "{took:?}"
        );
        served
            .logs()
            .wait_for(&["path=/spin", "status=504", "wall-clock limit of 2s reached"]);
        still_serves(&*served);
    });
}

#[test]
fn guest_that_never_answers_gets_a_504() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave").env("RVM_TIMEOUT", "500ms"));
        let response = get(served.addr(), "/hang");
        assert_eq!(response.status, 504);
        served
            .logs()
            .wait_for(&["path=/hang", "status=504", "wall-clock limit of 500ms"]);
        still_serves(&*served);
    });
}

#[test]
fn guest_that_sets_no_response_is_a_500() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave"));
        let response = get(served.addr(), "/no-response");
        assert_eq!(response.status, 500);
        assert_eq!(response.text(), "the application returned no response\n");
        served.logs().wait_for(&[
            "path=/no-response",
            "guest returned without setting a response",
        ]);
        still_serves(&*served);
    });
}

#[test]
fn failure_after_the_headers_cuts_the_response_off() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave"));
        let response = Connection::open(served.addr())
            .unwrap()
            .get("/fail-mid-body")
            .unwrap();
        assert_eq!(response.status, 200);
        // What was written may or may not reach the client before the cut.
        let text = response.text();
        assert!("partial body, then ".starts_with(&text), "{text}");
        assert!(!response.complete, "the body must not end cleanly");
        served
            .logs()
            .wait_for(&["path=/fail-mid-body", "status=200", "guest trapped"]);
        still_serves(&*served);
    });
}

#[test]
fn outbound_calls_are_denied_unless_allowed() {
    // A local server the guest may be allowed to reach.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
        }
    });
    let url = format!("/outbound?url=http://127.0.0.1:{port}/");
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("misbehave"));
        let response = get(served.addr(), &url);
        assert_eq!(response.status, 200, "the request itself goes on");
        assert_eq!(response.text(), "error: ErrorCode::HttpRequestDenied\n");
        served
            .logs()
            .wait_for(&["outbound request denied", "127.0.0.1"]);

        let allowed = format!("http://127.0.0.1:{port}");
        let app = AppSpec::guest("misbehave").env("RVM_ALLOWED_OUTBOUND_HOSTS", &allowed);
        let served = frontend.start(&app);
        assert_eq!(get(served.addr(), &url).text(), "status: 204\n");
        let other = get(served.addr(), "/outbound?url=http://127.0.0.2:9/");
        assert_eq!(other.text(), "error: ErrorCode::HttpRequestDenied\n");
    });
}

#[test]
fn guest_sees_only_its_own_environment_and_no_files_or_sockets() {
    each_frontend(|frontend| {
        let app = AppSpec::guest("misbehave")
            .env("RVM_ENV_GREETING", "hello")
            .env("RVM_CLIENT_SECRET", "never-in-the-environment");
        let served = frontend.start(&app);
        assert_eq!(get(served.addr(), "/env").text(), "GREETING=hello\n");
        let read = get(served.addr(), "/read?path=/etc/hostname").text();
        assert!(read.starts_with("error: "), "{read}");
        let connect = get(served.addr(), &format!("/connect?addr={}", served.addr())).text();
        assert!(connect.starts_with("error: "), "{connect}");
    });
}

#[test]
fn granted_directories_are_readable_at_the_same_path() {
    each_frontend(|frontend| {
        let dir = TempDir::new("dir");
        let file = dir.path().join("note.txt");
        std::fs::write(&file, "granted\n").unwrap();
        let served = frontend.start(&AppSpec::guest("misbehave").dir(dir.path()));
        let response = get(served.addr(), &format!("/read?path={}", file.display()));
        assert_eq!(response.text(), "read: granted\n");
    });
}

#[test]
fn non_utf8_header_bytes_reach_the_guest_and_bad_hosts_get_a_400() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("echo"));
        let mut connection = Connection::open(served.addr()).unwrap();
        let request = b"GET / HTTP/1.1\r\nHost: test\r\nX-Bin: caf\xe9 \xff\r\n\r\n";
        let response = connection.exchange(request).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-echo-x-bin"), Some(&b"caf\xe9 \xff"[..]));

        let response = Connection::open(served.addr())
            .unwrap()
            .exchange(b"GET / HTTP/1.1\r\nHost: h\xffst\r\n\r\n")
            .unwrap();
        assert_eq!(response.status, 400);
        served.logs().wait_for(&["status=400", "bad request"]);
        assert_eq!(get(served.addr(), "/").status, 200);
    });
}

#[test]
fn oversize_headers_are_refused_and_the_server_goes_on() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("hello"));
        let big = "x".repeat(200 * 1024);
        let request = format!("GET / HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
        let mut connection = Connection::open(served.addr()).unwrap();
        match connection.exchange(request.as_bytes()) {
            Ok(response) => assert!(
                response.status == 431 || response.status == 400,
                "{response:?}"
            ),
            // Refusing may also close the connection before the head was read.
            Err(e) => eprintln!("oversize head: connection closed ({e})"),
        }
        assert_eq!(get(served.addr(), "/").text(), "Hello from rvm\n");
    });
}

#[test]
fn a_client_that_disconnects_does_not_disturb_the_server() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("echo"));
        // Half a body, then gone.
        let mut connection = Connection::open(served.addr()).unwrap();
        connection.post_head("/", 1_000_000).unwrap();
        connection.stream().write_all(&[b'a'; 300_000]).unwrap();
        drop(connection);
        // A large echo whose response is left unread.
        let mut connection = Connection::open(served.addr()).unwrap();
        let body = vec![b'b'; 8 << 20];
        connection.post_head("/", body.len()).unwrap();
        let _ = connection.stream().write_all(&body[..4 << 20]);
        drop(connection);

        std::thread::sleep(Duration::from_millis(200));
        let response = Connection::open(served.addr())
            .unwrap()
            .post("/", b"still here")
            .unwrap();
        assert_eq!(response.text(), "still here");
    });
}

#[test]
fn excess_requests_wait_for_a_free_instance() {
    each_frontend(|frontend| {
        // The bound is per process: one here.
        let app = AppSpec::guest("misbehave")
            .env("RVM_MAX_INSTANCES", "1")
            .env("RVM_WORKERS", "1");
        let served = frontend.start(&app);
        let addr = served.addr();
        let started = Instant::now();
        let slow: Vec<_> = (0..3)
            .map(|_| std::thread::spawn(move || get(addr, "/slow?ms=400").status))
            .collect();
        for request in slow {
            assert_eq!(request.join().unwrap(), 200);
        }
        // One at a time.
        assert!(
            started.elapsed() >= Duration::from_millis(1200),
            "{:?}",
            started.elapsed()
        );
    });
}

#[test]
fn fuel_consumed_header_is_added_on_request() {
    each_frontend(|frontend| {
        let served = frontend.start(&AppSpec::guest("hello"));
        assert_eq!(get(served.addr(), "/").header("x-rvm-fuel-consumed"), None);
        let served = frontend.start(&AppSpec::guest("hello").env("RVM_FUEL_HEADERS", "1"));
        let response = get(served.addr(), "/");
        let fuel = response.header("x-rvm-fuel-consumed").expect("fuel header");
        let fuel: u64 = std::str::from_utf8(fuel).unwrap().parse().unwrap();
        assert!(fuel > 100, "{fuel}");
    });
}

#[test]
fn bad_components_and_settings_are_refused_with_the_cause() {
    let dir = TempDir::new("bad");
    let not_wasm = dir.path().join("not-wasm.wasm");
    std::fs::write(&not_wasm, "plain text").unwrap();
    let core_module = dir.path().join("core.wasm");
    std::fs::write(&core_module, wat::parse_str("(module)").unwrap()).unwrap();
    let unsatisfiable = dir.path().join("unsatisfiable.wasm");
    let component =
        r#"(component (import "rvm:missing/thing@1.0.0" (instance (export "f" (func)))))"#;
    std::fs::write(&unsatisfiable, wat::parse_str(component).unwrap()).unwrap();
    let no_handler = dir.path().join("no-handler.wasm");
    std::fs::write(&no_handler, wat::parse_str("(component)").unwrap()).unwrap();
    let missing = dir.path().join("missing.wasm");

    each_frontend(|frontend| {
        let refuse = |path: &std::path::Path, cause: &str| {
            let app = AppSpec {
                component: path.to_path_buf(),
                ..AppSpec::default()
            };
            let said = frontend.refuse(&app);
            assert!(
                said.contains(&path.display().to_string()),
                "names the file: {said}"
            );
            assert!(said.contains(cause), "names the cause {cause:?}: {said}");
        };
        refuse(&not_wasm, "not a valid WebAssembly component");
        refuse(&core_module, "not a valid WebAssembly component");
        refuse(&unsatisfiable, "rvm:missing/thing@1.0.0");
        refuse(&no_handler, "wasi:http/incoming-handler");
        refuse(&missing, "cannot read");

        for (key, value) in [
            ("RVM_FUEL", "plenty"),
            ("RVM_MAX_MEMORY", "lots"),
            ("RVM_TIMEOUT", "0s"),
            ("RVM_MAX_INSTANCES", "none"),
            ("RVM_ALLOWED_OUTBOUND_HOSTS", "example.com/path"),
        ] {
            let said = frontend.refuse(&AppSpec::guest("hello").env(key, value));
            assert!(
                said.contains(key) && said.contains(value),
                "{key}={value}: {said}"
            );
        }
        let said = frontend.refuse(&AppSpec::guest("hello").dir(&dir.path().join("absent")));
        assert!(said.contains("absent"), "{said}");
    });
}
