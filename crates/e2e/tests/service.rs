//! The RVM service through `rvm server`: deploy over HTTP into a store, invoke
//! by name, several servers sharing one store (a directory, a real Redis).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rvm_e2e::http::{Response, request};
use rvm_e2e::redis::RedisServer;
use rvm_e2e::rvm::rvm_binary;
use rvm_e2e::server::{RvmServer, Scratch, ServerSpec};
use rvm_e2e::{eventually, guest};
use sha2::Digest;

fn server(scratch: &Scratch) -> RvmServer {
    ServerSpec::new(scratch.store().to_str().unwrap(), &scratch.cache()).start()
}

fn json(response: &Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| panic!("{e}: {}", response.text()))
}

#[test]
fn deploy_invoke_redeploy_under_load_and_delete() {
    let scratch = Scratch::new("service-cycle");
    let server = server(&scratch);

    let deployed = server.deploy("app", &guest("hello"), "");
    assert_eq!(deployed.status, 200, "{}", deployed.text());
    let answer = json(&deployed);
    assert_eq!(answer["name"], "app");
    assert_eq!(answer["hash"].as_str().unwrap().len(), 64);
    assert!(answer["size"].as_u64().unwrap() > 0);
    assert!(answer["deployed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(server.invoke("/app").text(), "Hello from rvm\n");

    // Requests keep coming while the name moves to another component.
    let stop = Arc::new(AtomicBool::new(false));
    let (failed, served) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, failed, served) = (stop.clone(), failed.clone(), served.clone());
        let addr = server.invoke;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let response = rvm_e2e::http::get(addr, "/app/?a=2&b=3");
                let ok = response.status == 200
                    && (response.text() == "Hello from rvm\n"
                        || response.text().contains("product: 6"));
                if ok {
                    served.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let secret = [("x-rvm-client-secret", "version two")];
    let bytes = std::fs::read(guest("secret")).unwrap();
    let redeployed = server.deploy_bytes("app", &bytes, "", &secret);
    assert_eq!(redeployed.status, 200, "{}", redeployed.text());
    // The new version answers as soon as the deploy returns, query kept.
    assert_eq!(
        server.invoke("/app/x?a=6&b=7").text(),
        "secret: version two\nproduct: 42\n"
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the redeploy"
    );
    assert!(served.load(Ordering::Relaxed) > 10);

    let deleted = server.admin_call("DELETE", "/deploy/app", &[]);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let gone = server.invoke("/app/");
    assert_eq!(gone.status, 404);
    assert!(gone.text().contains("no component named"));
    assert_eq!(server.admin_call("DELETE", "/deploy/app", &[]).status, 404);
    assert_eq!(
        json(&server.admin_call("GET", "/deploy", &[])),
        serde_json::json!([])
    );
    // One log line per request, naming the component.
    server
        .logs()
        .wait_for(&["request served", "app=app", "path=/x"]);
    // Bytes no record points to are removed.
    eventually("the store holds no component bytes", || {
        std::fs::read_dir(scratch.store().join("components")).map_or(true, |d| d.count() == 0)
    });
}

#[test]
fn a_restart_serves_every_component_from_the_compiled_code_cache() {
    let scratch = Scratch::new("service-restart");
    let first = server(&scratch);
    for (name, component) in [("one", "hello"), ("two", "echo"), ("three", "misbehave")] {
        assert_eq!(first.deploy(name, &guest(component), "").status, 200);
    }
    assert!(first.stop());

    let second = server(&scratch);
    assert_eq!(second.invoke("/one/").text(), "Hello from rvm\n");
    assert_eq!(second.invoke("/three/counter").text(), "calls: 1\n");
    let logs = second.logs().text();
    assert_eq!(logs.matches("code=\"from cache\"").count(), 3, "{logs}");
    assert!(
        !logs.contains("code=\"compiled\""),
        "a component was compiled again:\n{logs}"
    );
}

#[test]
fn bad_uploads_get_their_status_and_nothing_is_stored() {
    let scratch = Scratch::new("service-bad");
    let server = ServerSpec::new(scratch.store().to_str().unwrap(), &scratch.cache())
        .env("RVM_MAX_COMPONENT_SIZE", "64KiB")
        .start();
    let core_module = wat::parse_str("(module)").unwrap();
    let unsatisfiable = wat::parse_str(
        r#"(component (import "example:missing/thing@1.0.0" (instance (export "f" (func)))))"#,
    )
    .unwrap();
    let cases: [(&str, &[u8], &str, u16, &str); 5] = [
        (
            "app",
            b"not wasm at all",
            "",
            400,
            "not a valid WebAssembly component",
        ),
        (
            "app",
            &core_module,
            "",
            400,
            "not a valid WebAssembly component",
        ),
        ("app", &unsatisfiable, "", 400, "example:missing/thing"),
        ("app", &[0; 70 * 1024], "", 413, "larger than"),
        ("app", b"", "fuel=lots", 400, "fuel"),
    ];
    for (name, bytes, query, status, says) in cases {
        let response = server.deploy_bytes(name, bytes, query, &[]);
        assert_eq!(response.status, status, "{says}: {}", response.text());
        let error = json(&response)["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }
    for (query, says) in [
        ("dir=/etc", "directories"),
        ("max-memory=8GiB", "max-memory"),
    ] {
        let response = server.deploy_bytes("app", b"x", query, &[]);
        assert_eq!(response.status, 400, "{}", response.text());
        assert!(json(&response)["error"].as_str().unwrap().contains(says));
    }
    // A real component over the limit is refused before it is read.
    assert_eq!(server.deploy("app", &guest("hello"), "").status, 413);
    for bad in ["..", "%2e%2e", "App", "a.b", "-x", &"x".repeat(65)] {
        let response = request(server.admin, "POST", &format!("/deploy/{bad}"), &[], b"x");
        assert_eq!(response.status, 400, "{bad}: {}", response.text());
    }
    let traversal = request(server.admin, "POST", "/deploy/../etc", &[], b"x");
    assert!(
        matches!(traversal.status, 400 | 404),
        "{}",
        traversal.text()
    );
    assert_eq!(server.admin_call("PATCH", "/deploy/app", &[]).status, 405);
    assert_eq!(server.admin_call("GET", "/elsewhere", &[]).status, 404);

    assert_eq!(
        json(&server.admin_call("GET", "/deploy", &[])),
        serde_json::json!([])
    );
    for dir in ["names", "components"] {
        let entries = std::fs::read_dir(scratch.store().join(dir)).map_or(0, |d| d.count());
        assert_eq!(entries, 0, "{dir} holds something");
    }
}

#[test]
fn a_failed_redeploy_leaves_the_old_version_live() {
    let scratch = Scratch::new("service-keep");
    let server = server(&scratch);
    assert_eq!(server.deploy("app", &guest("hello"), "").status, 200);
    assert_eq!(
        server.deploy_bytes("app", b"\0asm broken", "", &[]).status,
        400
    );
    assert_eq!(server.invoke("/app/").text(), "Hello from rvm\n");
}

#[test]
fn a_deploy_compiling_does_not_hold_up_other_components() {
    let scratch = Scratch::new("service-compiling");
    let server = Arc::new(server(&scratch));
    assert_eq!(server.deploy("hello", &guest("hello"), "").status, 200);
    let deploying = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || {
            let started = Instant::now();
            let status = server.deploy("python", &guest("rvm_py"), "").status;
            (status, started.elapsed())
        })
    };
    let (mut served, mut slowest) = (0, Duration::ZERO);
    while !deploying.is_finished() {
        let started = Instant::now();
        assert_eq!(server.invoke("/hello/").status, 200);
        slowest = slowest.max(started.elapsed());
        served += 1;
    }
    let (status, took) = deploying.join().unwrap();
    assert_eq!(status, 200);
    // Compiling a Python component takes seconds; hello answered throughout.
    assert!(took > Duration::from_secs(1), "the compile took {took:?}");
    assert!(
        served > 10 && slowest < Duration::from_secs(1),
        "{served} served, slowest {slowest:?}"
    );
}

#[test]
fn concurrent_deploys_of_one_name_end_consistent() {
    let scratch = Scratch::new("service-race");
    let server = Arc::new(server(&scratch));
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                let component = if n % 2 == 0 { "hello" } else { "secret" };
                assert_eq!(server.deploy("app", &guest(component), "").status, 200);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let record = json(&server.admin_call("GET", "/deploy/app", &[]));
    let hello_hash = json(&server.deploy("probe", &guest("hello"), ""))["hash"].clone();
    let served = server.invoke("/app/").text();
    if record["hash"] == hello_hash {
        assert_eq!(served, "Hello from rvm\n");
    } else {
        assert!(served.starts_with("secret: "), "{served}");
    }
}

#[test]
fn settings_given_at_deploy_apply_to_that_component_only() {
    let scratch = Scratch::new("service-settings");
    let server = server(&scratch);
    let misbehave = guest("misbehave");
    assert_eq!(
        server
            .deploy(
                "tight",
                &misbehave,
                "fuel=5000000&fuel-headers=1&env=SHIFT%3D3"
            )
            .status,
        200
    );
    assert_eq!(server.deploy("loose", &misbehave, "").status, 200);

    let spun = server.invoke("/tight/spin");
    assert_eq!(spun.status, 500);
    server.logs().wait_for(&[
        "app=tight",
        "fuel budget of 5000000 exhausted (deploy setting fuel)",
    ]);
    let counted = server.invoke("/tight/counter");
    assert!(
        counted.header("x-rvm-fuel-consumed").is_some(),
        "{counted:?}"
    );
    assert!(
        counted.header("x-rvm-fuel-remaining").is_some(),
        "{counted:?}"
    );
    assert!(server.invoke("/tight/env").text().contains("SHIFT=3"));
    let loose = server.invoke("/loose/counter");
    assert_eq!(loose.status, 200);
    assert!(loose.header("x-rvm-fuel-consumed").is_none());
    assert!(!server.invoke("/loose/env").text().contains("SHIFT"));

    let secret = [("x-rvm-client-secret", "s3cr3t-value")];
    let bytes = std::fs::read(guest("secret")).unwrap();
    assert_eq!(
        server.deploy_bytes("secret", &bytes, "", &secret).status,
        200
    );
    assert!(
        server
            .invoke("/secret/")
            .text()
            .contains("secret: s3cr3t-value")
    );
    for listing in [
        server.admin_call("GET", "/deploy", &[]),
        server.admin_call("GET", "/deploy/secret", &[]),
    ] {
        assert!(
            !listing.text().contains("s3cr3t-value"),
            "{}",
            listing.text()
        );
        assert!(listing.text().contains("redacted"), "{}", listing.text());
    }
    assert!(!server.logs().text().contains("s3cr3t-value"));
    assert!(
        !std::fs::read_to_string(scratch.store().join("names/tight.json"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_component_s_reused_instances_are_its_own() {
    let scratch = Scratch::new("service-reuse");
    let server = server(&scratch);
    let misbehave = guest("misbehave");
    for name in ["one", "two"] {
        assert_eq!(
            server.deploy(name, &misbehave, "instance-reuse=10").status,
            200
        );
    }
    assert_eq!(server.deploy("fresh", &misbehave, "").status, 200);
    assert_eq!(server.invoke("/one/counter").text(), "calls: 1\n");
    assert_eq!(server.invoke("/one/counter").text(), "calls: 2\n");
    assert_eq!(server.invoke("/two/counter").text(), "calls: 1\n");
    assert_eq!(server.invoke("/fresh/counter").text(), "calls: 1\n");
    assert_eq!(server.invoke("/fresh/counter").text(), "calls: 1\n");
    assert_eq!(server.invoke("/one/counter").text(), "calls: 3\n");
}

#[test]
fn the_admin_token_guards_every_call() {
    let scratch = Scratch::new("service-token");
    let server = ServerSpec::new(scratch.store().to_str().unwrap(), &scratch.cache())
        .env("RVM_ADMIN_TOKEN", "let-me-in")
        .start();
    let hello = std::fs::read(guest("hello")).unwrap();
    for headers in [
        &[][..],
        &[("authorization", "Bearer wrong")][..],
        &[("authorization", "let-me-in")][..],
    ] {
        assert_eq!(server.deploy_bytes("app", &hello, "", headers).status, 401);
        assert_eq!(
            request(server.admin, "GET", "/deploy", headers, b"").status,
            401
        );
        assert_eq!(
            request(server.admin, "DELETE", "/deploy/app", headers, b"").status,
            401
        );
    }
    let good = [("authorization", "Bearer let-me-in")];
    assert_eq!(server.deploy_bytes("app", &hello, "", &good).status, 200);
    assert_eq!(
        request(server.admin, "GET", "/deploy", &good, b"").status,
        200
    );

    let mut open = ServerSpec::new(scratch.store().to_str().unwrap(), &scratch.cache());
    open.admin = "0.0.0.0:0".into();
    let open = open.spawn();
    let said = open
        .err()
        .expect("an admin listener open to all without a token started");
    assert!(
        said.contains("RVM_ADMIN_TOKEN") && said.contains("loopback"),
        "{said}"
    );
}

#[test]
fn an_rvm_layout_store_directory_is_served_as_it_is() {
    let scratch = Scratch::new("service-rvm-layout");
    std::fs::create_dir_all(scratch.store()).unwrap();
    std::fs::copy(guest("hello"), scratch.store().join("hello.wasm")).unwrap();
    std::fs::copy(guest("echo"), scratch.store().join("echo.wasm")).unwrap();
    std::fs::write(scratch.store().join("broken.wasm"), b"not a component").unwrap();
    let server = server(&scratch);
    assert_eq!(server.invoke("/hello/").text(), "Hello from rvm\n");
    let echoed = request(server.invoke, "POST", "/echo/", &[], b"as RVM stored it");
    assert_eq!(echoed.text(), "as RVM stored it");
    server.logs().wait_for(&["component=broken", "skipped"]);
    let listing = json(&server.admin_call("GET", "/deploy", &[]));
    assert_eq!(listing.as_array().unwrap().len(), 3, "{listing}");
}

#[test]
fn two_servers_sharing_a_redis_store_serve_each_others_deploys() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a_scratch, b_scratch) = (Scratch::new("redis-a"), Scratch::new("redis-b"));
    let a = ServerSpec::new(&redis.uri(), &a_scratch.cache()).start();
    let b = ServerSpec::new(&redis.uri(), &b_scratch.cache()).start();

    assert_eq!(a.deploy("hello", &guest("hello"), "").status, 200);
    assert_eq!(b.deploy("echo", &guest("echo"), "").status, 200);
    eventually("b serves what a deployed", || {
        b.invoke("/hello/").status == 200
    });
    eventually("a serves what b deployed", || {
        request(a.invoke, "POST", "/echo/", &[], b"via a").text() == "via a"
    });
    assert_eq!(b.invoke("/hello/").text(), "Hello from rvm\n");
    let listing = json(&a.admin_call("GET", "/deploy", &[]));
    assert_eq!(listing.as_array().unwrap().len(), 2, "{listing}");

    assert_eq!(b.admin_call("DELETE", "/deploy/hello", &[]).status, 200);
    eventually("a stops serving what b deleted", || {
        a.invoke("/hello/").status == 404
    });

    // A third node started now serves what the store holds.
    let c_scratch = Scratch::new("redis-c");
    let c = ServerSpec::new(&redis.uri(), &c_scratch.cache()).start();
    assert_eq!(request(c.invoke, "POST", "/echo/", &[], b"c").text(), "c");
    assert_eq!(c.invoke("/hello/").status, 404);
}

#[test]
fn a_store_that_stops_answering_is_said_once_and_what_was_loaded_stays_served() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let scratch = Scratch::new("redis-down");
    let server = ServerSpec::new(&redis.uri(), &scratch.cache()).start();
    assert_eq!(server.deploy("hello", &guest("hello"), "").status, 200);
    redis.pause();
    server
        .logs()
        .wait_for(&["the store does not answer", "served=1"]);
    for _ in 0..5 {
        assert_eq!(server.invoke("/hello/").text(), "Hello from rvm\n");
    }
    // A deploy needs the store: it is refused, and the old version stays.
    let refused = server.deploy("hello", &guest("echo"), "");
    assert_eq!(refused.status, 503, "{}", refused.text());
    redis.resume();
    server.logs().wait_for(&["the store answers again"]);
    assert_eq!(
        server.logs().count_at_least("the store does not answer", 1),
        1
    );
    assert_eq!(server.invoke("/hello/").text(), "Hello from rvm\n");
    assert_eq!(server.deploy("echo", &guest("echo"), "").status, 200);
}

#[test]
fn compiled_code_that_does_not_load_is_compiled_again() {
    let scratch = Scratch::new("service-bad-cache");
    let first = server(&scratch);
    assert_eq!(first.deploy("hello", &guest("hello"), "").status, 200);
    assert!(first.stop());
    for entry in std::fs::read_dir(scratch.cache()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            std::fs::write(&path, b"not machine code").unwrap();
        }
    }
    let second = server(&scratch);
    assert_eq!(second.invoke("/hello/").text(), "Hello from rvm\n");
    second.logs().wait_for(&["does not load, compiling again"]);
    second
        .logs()
        .wait_for(&["component loaded", "component=hello", "code=\"compiled\""]);
}

#[test]
fn two_servers_sharing_an_s3_store_serve_each_others_deploys() {
    let Some(s3) = rvm_e2e::s3::S3Server::start() else {
        return;
    };
    let (a_scratch, b_scratch) = (Scratch::new("s3-a"), Scratch::new("s3-b"));
    let spec = |scratch: &Scratch| {
        let mut spec = ServerSpec::new(&s3.uri(), &scratch.cache());
        spec.env.extend(s3.env());
        spec
    };
    let (a, b) = (spec(&a_scratch).start(), spec(&b_scratch).start());
    assert_eq!(a.deploy("hello", &guest("hello"), "").status, 200);
    eventually("b serves what a deployed", || {
        b.invoke("/hello/").status == 200
    });
    assert_eq!(b.invoke("/hello/").text(), "Hello from rvm\n");
    assert_eq!(b.admin_call("DELETE", "/deploy/hello", &[]).status, 200);
    eventually("a stops serving what b deleted", || {
        a.invoke("/hello/").status == 404
    });
    assert_eq!(
        json(&a.admin_call("GET", "/deploy", &[])),
        serde_json::json!([])
    );
}

#[test]
fn the_command_line_client_deploys_lists_and_deletes() {
    let scratch = Scratch::new("service-client");
    let server = server(&scratch);
    let admin = format!("http://{}", server.admin);
    let rvm = |args: &[&str]| {
        let output = Command::new(rvm_binary())
            .args(args)
            .env("RVM_CACHE_DIR", scratch.cache())
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let secret = guest("secret");
    let secret = secret.to_str().unwrap();
    let (ok, out, err) = rvm(&[
        "deploy",
        "app",
        secret,
        "--admin",
        &admin,
        "--client-secret",
        "cli",
        "--fuel",
        "9000000",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"hash\""), "{out}");
    assert!(server.invoke("/app/").text().contains("secret: cli"));
    let (ok, out, _) = rvm(&["list", "--admin", &admin]);
    assert!(
        ok && out.contains("\"app\"") && out.contains("9000000"),
        "{out}"
    );
    assert!(!out.contains("cli\""), "{out}");
    let (ok, _, err) = rvm(&["deploy", "bad", "/dev/null", "--admin", &admin]);
    assert!(!ok && err.contains("400"), "{err}");
    let (ok, _, _) = rvm(&["delete", "app", "--admin", &admin]);
    assert!(ok);
    assert_eq!(server.invoke("/app/").status, 404);

    // Straight into the store, validated the same way; the server picks it up.
    let store = scratch.store();
    let store = store.to_str().unwrap();
    let hello = guest("hello");
    let (ok, out, err) = rvm(&[
        "deploy",
        "direct",
        hello.to_str().unwrap(),
        "--store",
        store,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"direct\""), "{out}");
    eventually("the server serves what was written into its store", || {
        server.invoke("/direct/").status == 200
    });
    let (ok, _, err) = rvm(&["deploy", "junk", "/dev/null", "--store", store]);
    assert!(!ok && err.contains("refused"), "{err}");
    assert!(!Path::new(store).join("names/junk.json").exists());
}

/// A server on a free loopback port that answers every request with `body`.
fn origin(body: &'static [u8]) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n")
                && std::io::Read::read(&mut stream, &mut byte).unwrap_or(0) == 1
            {
                head.push(byte[0]);
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
            let _ = std::io::Write::write_all(&mut stream, body);
        }
    });
    addr
}

#[test]
fn the_python_guest_serves_rvms_three_routes() {
    let scratch = Scratch::new("service-python");
    let server = server(&scratch);
    let fetched: &[u8] = b"what the origin serves";
    let origin = origin(fetched);
    let query = format!("allowed-outbound-hosts=http%3A%2F%2F{origin}");
    let bytes = std::fs::read(guest("rvm_py")).unwrap();
    let deployed = server.deploy_bytes(
        "py",
        &bytes,
        &query,
        &[("x-rvm-client-secret", "py-secret")],
    );
    assert_eq!(deployed.status, 200, "{}", deployed.text());

    assert_eq!(server.invoke("/py/secret").text(), "py-secret");

    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = request(server.invoke, "POST", "/py/echo", &[], &body);
    assert_eq!(echoed.status, 200);
    assert!(
        echoed.complete && echoed.body == body,
        "{} bytes back",
        echoed.body.len()
    );

    let allowed = format!("http://{origin}/file");
    let hashed = request(
        server.invoke,
        "GET",
        "/py/hash-all",
        &[("url", &allowed), ("url", "http://example.com/")],
        b"",
    );
    assert_eq!(hashed.status, 200, "{}", hashed.text());
    let digest = sha2::Sha256::digest(fetched);
    let expected = format!("{allowed}: {}\n", hex(&digest));
    let lines: Vec<&str> = hashed.text().leak().split_inclusive('\n').collect();
    assert_eq!(lines[0], expected);
    assert!(
        lines[1].starts_with("http://example.com/: error:") && lines[1].contains("Denied"),
        "{}",
        lines[1]
    );
    server
        .logs()
        .wait_for(&["outbound request denied", "app=py", "example.com"]);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_component_of_plain_functions_is_called_by_name_with_json() {
    let scratch = Scratch::new("service-functions");
    let server = server(&scratch);
    let deployed = server.deploy(
        "cipher",
        &guest("cipher"),
        "env=SHIFT_AMOUNT=1&fuel=5000000",
    );
    assert_eq!(deployed.status, 200, "{}", deployed.text());

    let call = |path: &str, body: &str| request(server.invoke, "POST", path, &[], body.as_bytes());
    let secret = call("/cipher/encrypt", r#"{"message": "HAL"}"#);
    assert_eq!(json(&secret), serde_json::json!("IBM"), "{}", secret.text());
    server
        .logs()
        .wait_for(&["audit", "app=cipher", "action=encrypt"]);

    let described = json(&server.invoke("/cipher/"));
    assert!(
        described["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "/decrypt"),
        "{described}"
    );
    let spin = call("/cipher/rvm:cipher/kinds@0.1.0/spin", "[100000000]");
    assert_eq!(spin.status, 500, "{}", spin.text());
    server
        .logs()
        .wait_for(&["fuel budget of 5000000 exhausted", "deploy setting fuel"]);
    assert_eq!(call("/cipher/nope", "[]").status, 404);
    assert_eq!(
        json(&call("/cipher/decrypt", r#"["IBM"]"#)),
        serde_json::json!("HAL")
    );
}
