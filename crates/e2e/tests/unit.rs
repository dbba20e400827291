//! What only the NGINX Unit module does: registration beside Unit's own module,
//! one compile for many processes, threads, reconfiguration under load, a
//! killed application process, large bodies through shared memory (also when it
//! runs out, without stopping the context), and the limits of what Unit can
//! carry. Skipped, with one line
//! saying so, where no built Unit tree is found.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rvm_e2e::free_port;
use rvm_e2e::http::{Connection, get, request};
use rvm_e2e::server::ServerSpec;
use rvm_e2e::unit::{Unitd, app_name, application, config};
use rvm_e2e::{AppSpec, TempDir, UnitFrontend, eventually, repo_root};
use serde_json::json;

/// A unitd serving `app`, with `tune` applied to its application object.
fn serve(
    unit: &UnitFrontend,
    app: &AppSpec,
    tune: impl FnOnce(&mut serde_json::Value),
) -> (Unitd, u16) {
    let unitd = unit.unitd();
    let port = free_port();
    let mut config = config(app, port);
    tune(&mut config["applications"][app_name(app)]);
    unitd
        .put("/config", &config)
        .unwrap_or_else(|e| panic!("{e}\n{}", unitd.logs().text()));
    (unitd, port)
}

/// A unitd serving `app` with `limits.shm` of `bytes`.
fn serve_with_shm(unit: &UnitFrontend, app: &AppSpec, bytes: u32) -> (Unitd, u16) {
    serve(unit, app, |conf| conf["limits"] = json!({ "shm": bytes }))
}

/// Runs `test` against Unit from each built tree found, naming the tree.
fn each_unit(test: impl Fn(&'static UnitFrontend)) {
    for unit in UnitFrontend::all() {
        eprintln!("-- {}", rvm_e2e::Frontend::name(unit));
        test(unit);
    }
}

fn addr(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn registers_as_wasm_wasi_component_with_its_own_version() {
    each_unit(|unit| {
        let (unitd, port) = serve(unit, &AppSpec::guest("hello"), |app| {
            app["type"] = json!("wasm-wasi-component rvm");
        });
        let line = unitd.logs().wait_for(&["module: wasm-wasi-component rvm"]);
        assert!(line.contains("rvm.unit.so"), "{line}");
        assert_eq!(get(addr(port), "/").text(), "Hello from rvm\n");
    });
}

#[test]
fn several_processes_share_one_compile_and_several_threads_serve() {
    each_unit(|unit| {
        let app = AppSpec::guest("misbehave").env("RVM_THREADS", "3");
        let (unitd, port) = serve(unit, &app, |app| app["processes"] = json!(2));
        for _ in 0..20 {
            assert_eq!(get(addr(port), "/counter").text(), "calls: 1\n");
        }
        let compiled = unitd.logs().text().matches("compiled in").count();
        assert_eq!(
            compiled,
            1,
            "one compile for all processes:\n{}",
            unitd.logs().text()
        );
        let pids = unitd.app_pids("misbehave");
        assert_eq!(pids.len(), 2, "{pids:?}");
        let contexts = |pid: u32| {
            std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .filter(|t| {
                    let comm = t.as_ref().unwrap().path().join("comm");
                    std::fs::read_to_string(comm)
                        .unwrap_or_default()
                        .starts_with("rvm-unit-")
                })
                .count()
        };
        for pid in pids {
            // A process starts its other contexts once Unit says it is ready,
            // which on a busy machine may come after the other served all of the
            // requests above.
            let deadline = Instant::now() + Duration::from_secs(10);
            while contexts(pid) < 2 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(
                contexts(pid),
                2,
                "two contexts besides the main one in {pid}"
            );
        }
    });
}

#[test]
fn reconfiguration_under_load_loses_no_request() {
    each_unit(|unit| {
        let app = AppSpec::guest("misbehave").env("RVM_ENV_GENERATION", "1");
        let (unitd, port) = serve(unit, &app, |_| {});
        let stop = Arc::new(AtomicBool::new(false));
        let load = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let response = get(addr(port), "/env");
                    assert_eq!(response.status, 200, "a request was lost: {response:?}");
                    seen.push(response.text());
                }
                seen
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        for generation in 2..=4 {
            let app =
                AppSpec::guest("misbehave").env("RVM_ENV_GENERATION", &generation.to_string());
            unitd
                .put("/config/applications/misbehave", &application(&app))
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
        }
        // Load goes on until the last generation answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(addr(port), "/env").text() != "GENERATION=4\n" {
            assert!(
                Instant::now() < deadline,
                "the last configuration never answered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        let seen = load.join().unwrap();
        assert!(seen.len() > 20, "{} requests", seen.len());
        assert_eq!(seen.first().unwrap(), "GENERATION=1\n");
        assert_eq!(seen.last().unwrap(), "GENERATION=4\n");
    });
}

#[test]
fn a_killed_application_process_is_replaced() {
    each_unit(|unit| {
        let (unitd, port) = serve(unit, &AppSpec::guest("hello"), |_| {});
        assert_eq!(get(addr(port), "/").status, 200);
        let [pid] = unitd.app_pids("hello")[..] else {
            panic!("one application process")
        };
        rvm_e2e::kill("KILL", &pid.to_string()).unwrap();
        // A request Unit routes to the process before it learns of its death is lost
        // inside Unit; wait until it knows.
        unitd
            .logs()
            .wait_for(&[&format!("app process {pid} exited on signal 9")]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answered = Connection::open_waiting(addr(port), Duration::from_secs(2))
                .and_then(|mut c| c.get("/"));
            let answered = match answered {
                Ok(r) if r.status == 200 => break,
                Ok(r) => format!("status {}", r.status),
                Err(e) => e.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "not served again (last answer: {answered}):\n{}",
                unitd.logs().text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!unitd.app_pids("hello").contains(&pid));
    });
}

#[test]
fn a_64_mib_body_is_echoed_byte_for_byte() {
    each_unit(|unit| {
        let (_unitd, port) = serve(unit, &AppSpec::guest("echo"), |_| {});
        let body: Vec<u8> = (0..64u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let response = Connection::open(addr(port))
            .unwrap()
            .post("/", &body)
            .unwrap();
        assert_eq!(response.status, 200);
        assert!(response.complete);
        assert_eq!(response.body.len(), body.len());
        assert!(response.body == body, "echoed body differs");
    });
}

/// Posts `body` and reads the response only after `pause`, as a slow client
/// does: meanwhile the response waits in Unit's shared memory.
fn post_and_read_after(
    mut connection: Connection,
    body: &[u8],
    pause: Duration,
) -> std::io::Result<rvm_e2e::http::Response> {
    connection.post_head("/", body.len())?;
    connection.stream().write_all(body)?;
    std::thread::sleep(pause);
    connection.read_response(false)
}

#[test]
fn responses_wait_for_shared_memory_and_all_finish() {
    each_unit(|unit| {
        // 48 MiB of responses through 20 MiB of shared memory, to clients that read
        // only after a pause: streamed responses wait until the router frees memory
        // (shm_ack_handler), and a small one asked for meanwhile is answered too.
        let (_unitd, port) = serve_with_shm(unit, &AppSpec::guest("echo"), 20 << 20);
        let echo = |connection: Connection, body: &[u8], pause: Duration| {
            let response = post_and_read_after(connection, body, pause).unwrap();
            assert_eq!(response.status, 200);
            assert!(response.body == body, "echoed body differs");
        };
        let slow: Vec<_> = (0..6u32)
            .map(|n| {
                std::thread::spawn(move || {
                    let body: Vec<u8> = (0..8u32 << 20).map(|i| (i ^ n) as u8).collect();
                    echo(
                        Connection::open(addr(port)).unwrap(),
                        &body,
                        Duration::from_millis(1500),
                    );
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        echo(
            Connection::open(addr(port)).unwrap(),
            &[7; 16 << 10],
            Duration::ZERO,
        );
        for client in slow {
            client.join().unwrap();
        }
    });
}

#[test]
fn request_bodies_sent_as_files_arrive_while_shared_memory_is_short() {
    each_unit(|unit| {
        // Unit hands a request body over 16 KiB to the application as a file, on
        // the context's own port beside its queue. Among the wake-ups of a busy
        // exchange (large responses waiting for shared memory) such a message
        // once stayed unread in the port's socket, and its request never ended.
        // It happened in one round of a few dozen, so there are many rounds.
        let (unitd, port) = serve_with_shm(unit, &AppSpec::guest("echo"), 20 << 20);
        let echo = move |body: Vec<u8>, pause: Duration| {
            std::thread::spawn(move || {
                let connection =
                    Connection::open_waiting(addr(port), Duration::from_secs(15)).unwrap();
                post_and_read_after(connection, &body, pause)
                    .is_ok_and(|r| r.status == 200 && r.body == body)
            })
        };
        for round in 0..16u32 {
            let mut clients: Vec<_> = (0..12u32)
                .map(|n| {
                    let body = (0..(4u32 << 20) + n * (1 << 19)).map(|i| (i ^ n ^ round) as u8);
                    echo(
                        body.collect(),
                        Duration::from_millis(300 + 137 * u64::from(n % 5)),
                    )
                })
                .collect();
            for k in 0..4u32 {
                std::thread::sleep(Duration::from_millis(90 + 40 * u64::from(k)));
                clients.push(echo(
                    vec![k as u8; (2 << 10) + k as usize * 7000],
                    Duration::ZERO,
                ));
            }
            let answered: Vec<bool> = clients.into_iter().map(|c| c.join().unwrap()).collect();
            assert!(
                answered.iter().all(|&ok| ok),
                "round {round}: answered in full {answered:?}\n{}",
                unitd.logs().text()
            );
        }
    });
}

#[test]
fn a_burst_to_a_new_process_with_one_segment_is_answered() {
    each_unit(|unit| {
        // The process's one segment serves only the router thread it was sent to
        // until that thread takes it; answers for the other router thread meanwhile
        // used to wait in libunit for an acknowledgement that never came, the
        // whole context with them.
        let (_unitd, port) = serve_with_shm(unit, &AppSpec::guest("hello"), 10 << 20);
        let clients: Vec<_> = (0..64)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut connection =
                        Connection::open_waiting(addr(port), Duration::from_secs(10)).unwrap();
                    connection.get("/").unwrap().status
                })
            })
            .collect();
        for client in clients {
            assert_eq!(client.join().unwrap(), 200);
        }
    });
}

#[test]
fn response_heads_in_shared_memory_are_served_with_one_segment() {
    each_unit(|unit| {
        // One segment, one context: a response head too large for a plain message
        // (over 1 KiB) needs shared memory, from the first response, which makes
        // the segment, to the ones after it, which wait for the router to take it
        // whenever they are for a router thread it was not sent to.
        let (unitd, port) = serve_with_shm(unit, &AppSpec::guest("echo"), 10 << 20);
        // The echo guest returns the request's headers in its response's.
        let big = "b".repeat(2 << 10);
        for round in 0..20 {
            let request = format!("GET / HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
            let mut connection = Connection::open(addr(port)).unwrap();
            let response = connection.exchange(request.as_bytes()).unwrap();
            assert_eq!(
                response.status,
                200,
                "round {round}:\n{}",
                unitd.logs().text()
            );
            assert_eq!(response.header("x-echo-x-big"), Some(big.as_bytes()));
        }
    });
}

#[test]
fn responses_are_served_when_shared_memory_has_one_segment() {
    each_unit(|unit| {
        // With one segment and two contexts, the context that did not make the
        // segment waits until the router has taken it (or freed room in it).
        let app = AppSpec::guest("echo").env("RVM_THREADS", "2");
        let (_unitd, port) = serve_with_shm(unit, &app, 10 << 20);
        // Many connections at once, so that both contexts serve.
        let clients: Vec<_> = (0..32u32)
            .map(|n| {
                std::thread::spawn(move || {
                    let mut connection =
                        Connection::open_waiting(addr(port), Duration::from_secs(10)).unwrap();
                    for (round, size) in
                        [100, 40 << 10, 300 << 10].repeat(4).into_iter().enumerate()
                    {
                        let body: Vec<u8> = (0..size)
                            .map(|i: u32| (i ^ n ^ round as u32) as u8)
                            .collect();
                        connection.post_head("/", body.len()).unwrap();
                        connection.stream().write_all(&body).unwrap();
                        let response = connection.read_response(false).unwrap();
                        assert_eq!(response.status, 200);
                        assert!(response.body == body, "echoed body of {size} bytes differs");
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

#[test]
fn a_response_waiting_for_shared_memory_does_not_stop_its_context() {
    each_unit(|unit| {
        // Slow clients hold all 20 MiB of shared memory; a response asked for
        // meanwhile waits for some, and the context goes on serving: a bad
        // request's answer, which needs none, comes at once, long before the slow
        // clients read.
        let (_unitd, port) = serve_with_shm(unit, &AppSpec::guest("echo"), 20 << 20);
        let pause = Duration::from_secs(4);
        let slow: Vec<_> = (0..6u32)
            .map(|n| {
                std::thread::spawn(move || {
                    let body: Vec<u8> = (0..8u32 << 20).map(|i| (i ^ n) as u8).collect();
                    let connection = Connection::open(addr(port)).unwrap();
                    let response = post_and_read_after(connection, &body, pause).unwrap();
                    assert_eq!(response.status, 200);
                    assert!(response.body == body, "echoed body differs");
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        let waiting = std::thread::spawn(move || {
            let mut connection = Connection::open(addr(port)).unwrap();
            connection.post("/", &[7; 16 << 10]).unwrap()
        });
        std::thread::sleep(Duration::from_millis(200));
        let asked = Instant::now();
        let mut connection = Connection::open(addr(port)).unwrap();
        let response = connection
            .exchange(b"GET / HTTP/1.1\r\nHost: h\xffst\r\n\r\n")
            .unwrap();
        let took = asked.elapsed();
        assert_eq!(response.status, 400);
        assert!(
            took < pause / 2,
            "the bad request was answered after {took:?}, as if its context had waited for memory"
        );
        let waited = waiting.join().unwrap();
        assert_eq!(waited.status, 200);
        assert!(waited.body == [7; 16 << 10], "echoed body differs");
        for client in slow {
            client.join().unwrap();
        }
    });
}

#[test]
fn a_header_name_unit_cannot_carry_is_a_500() {
    each_unit(|unit| {
        let (unitd, port) = serve(unit, &AppSpec::guest("misbehave"), |_| {});
        let response = get(addr(port), "/long-header");
        assert_eq!(response.status, 500);
        unitd
            .logs()
            .wait_for(&["response header", "Unit carries at most 255"]);
        assert_eq!(get(addr(port), "/counter").status, 200);
    });
}

#[test]
fn a_malformed_thread_count_is_refused() {
    each_unit(|unit| {
        let said =
            rvm_e2e::Frontend::refuse(unit, &AppSpec::guest("hello").env("RVM_THREADS", "many"));
        assert!(said.contains("RVM_THREADS=\"many\" is not valid"), "{said}");
    });
}

#[test]
fn the_unit_config_examples_are_accepted_and_serve() {
    each_unit(|unit| {
        let guests = rvm_e2e::guest("hello")
            .parent()
            .unwrap()
            .display()
            .to_string();
        let data = TempDir::new("srv-rvm-data");
        // The store example's directories, which its application processes write.
        let shared = TempDir::new("srv-rvm-shared");
        open_to_all(shared.path());
        let store = shared.path().join("store");
        std::fs::create_dir(&store).unwrap();
        open_to_all(&store);
        let cache = shared.path().join("cache");
        let mut files: Vec<_> = std::fs::read_dir(repo_root().join("unit-config"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 6, "{files:?}");
        for file in files {
            // The examples expect the guests in /srv/rvm and a data directory in it.
            let text = std::fs::read_to_string(&file)
                .unwrap()
                .replace("/srv/rvm/data", &data.path().display().to_string())
                .replace("/srv/rvm/store", &store.display().to_string())
                .replace("/srv/rvm/cache", &cache.display().to_string())
                .replace("/srv/rvm", &guests);
            let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
            let port = free_port();
            let pass = config["listeners"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .clone();
            config["listeners"] = json!({ format!("127.0.0.1:{port}"): pass });
            let unitd = unit.unitd();
            unitd
                .put("/config", &config)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let response = get(addr(port), "/");
            assert!(
                response.status < 500 && response.complete,
                "{}: {response:?}",
                file.display()
            );
        }
    });
}

#[test]
fn an_application_process_whose_router_dies_exits() {
    each_unit(|unit| {
        let (unitd, port) = serve(unit, &AppSpec::guest("hello"), |_| {});
        assert_eq!(get(addr(port), "/").status, 200);
        let [app] = unitd.app_pids("hello")[..] else {
            panic!("one application process")
        };
        let router = unitd.pids_named("unit: router");
        let [router] = router[..] else {
            panic!("one router: {router:?}")
        };
        rvm_e2e::kill("KILL", &router.to_string()).unwrap();
        unitd
            .logs()
            .wait_for(&[&format!("{app}#"), "Unit closed port"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{app}")).exists() {
            assert!(
                Instant::now() < deadline,
                "application process {app} did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

#[test]
fn a_request_in_flight_during_reconfiguration_finishes() {
    each_unit(|unit| {
        let (unitd, port) = serve(unit, &AppSpec::guest("misbehave"), |_| {});
        let in_flight = std::thread::spawn(move || get(addr(port), "/slow?ms=1000"));
        std::thread::sleep(Duration::from_millis(300));
        // The old application processes are told to quit gracefully.
        let app = AppSpec::guest("misbehave").env("RVM_ENV_GENERATION", "2");
        unitd
            .put("/config/applications/misbehave", &application(&app))
            .unwrap();
        let response = in_flight.join().unwrap();
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "slept\n")
        );
        assert_eq!(get(addr(port), "/env").text(), "GENERATION=2\n");
    });
}

/// Lets Unit's application processes, which run as another user, write into `dir`.
fn open_to_all(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// A unitd serving the store `store` by name on one port and its admin API on
/// another, both with `environment`; the ports.
fn serve_store(
    unit: &UnitFrontend,
    store: &str,
    environment: serde_json::Value,
) -> (Unitd, u16, u16) {
    let (invoke, admin) = (free_port(), free_port());
    let mut admin_environment = environment.clone();
    admin_environment["RVM_ROLE"] = json!("admin");
    let config = json!({
        "settings": { "http": { "max_body_size": 256 << 20 } },
        "listeners": {
            format!("127.0.0.1:{invoke}"): { "pass": "applications/invoke" },
            format!("127.0.0.1:{admin}"): { "pass": "applications/admin" },
        },
        "applications": {
            "invoke": {
                "type": "wasm-wasi-component",
                "component": store,
                "environment": environment,
                "processes": 2,
            },
            "admin": {
                "type": "wasm-wasi-component",
                "component": store,
                "environment": admin_environment,
            },
        },
    });
    let unitd = unit.unitd();
    unitd
        .put("/config", &config)
        .unwrap_or_else(|e| panic!("{e}\n{}", unitd.logs().text()));
    (unitd, invoke, admin)
}

/// The environment of a store application: quick polls, a compiled code cache
/// its processes may make, a line per request.
fn store_environment(scratch: &std::path::Path) -> serde_json::Value {
    open_to_all(scratch);
    json!({
        "RVM_STORE_POLL": "100ms",
        "RVM_CACHE_DIR": scratch.join("cache"),
        "RUST_LOG": "info",
    })
}

#[test]
fn store_mode_serves_by_name_what_its_admin_role_deploys() {
    each_unit(|unit| {
        let scratch = TempDir::new("unit-store");
        let store = scratch.path().join("store");
        std::fs::create_dir(&store).unwrap();
        open_to_all(&store);
        let environment = store_environment(scratch.path());
        let (unitd, invoke, admin) = serve_store(unit, store.to_str().unwrap(), environment);

        let hello = std::fs::read(rvm_e2e::guest("hello")).unwrap();
        let deployed = request(addr(admin), "POST", "/deploy/hello", &[], &hello);
        assert_eq!(
            deployed.status,
            200,
            "{}\n{}",
            deployed.text(),
            unitd.logs().text()
        );
        // Both application processes pick it up from the store.
        eventually("every process serves the deploy", || {
            (0..8).all(|_| get(addr(invoke), "/hello/x?y=1").text() == "Hello from rvm\n")
        });
        unitd
            .logs()
            .wait_for(&["request served", "app=hello", "path=/x"]);

        let refused = request(addr(admin), "POST", "/deploy/broken", &[], b"not wasm");
        assert_eq!(refused.status, 400, "{}", refused.text());
        assert!(refused.text().contains("not a valid WebAssembly component"));

        let secret = std::fs::read(rvm_e2e::guest("secret")).unwrap();
        let header = [("x-rvm-client-secret", "from unit")];
        let redeployed = request(addr(admin), "POST", "/deploy/hello", &header, &secret);
        assert_eq!(redeployed.status, 200, "{}", redeployed.text());
        eventually("the new version is served", || {
            get(addr(invoke), "/hello/")
                .text()
                .starts_with("secret: from unit")
        });
        let listing = request(addr(admin), "GET", "/deploy", &[], b"");
        assert!(listing.text().contains("\"hello\"") && !listing.text().contains("from unit"));

        let deleted = request(addr(admin), "DELETE", "/deploy/hello", &[], b"");
        assert_eq!(deleted.status, 200, "{}", deleted.text());
        eventually("a deleted name is gone", || {
            (0..8).all(|_| get(addr(invoke), "/hello/").status == 404)
        });
    });
}

#[test]
fn unit_and_two_rvm_servers_share_one_redis_store() {
    each_unit(|unit| {
        let Some(redis) = rvm_e2e::redis::RedisServer::start() else {
            return;
        };
        let scratch = TempDir::new("unit-redis");
        let environment = store_environment(scratch.path());
        let (_unitd, invoke, admin) = serve_store(unit, &redis.uri(), environment);
        let caches = [scratch.path().join("a"), scratch.path().join("b")];
        let a = ServerSpec::new(&redis.uri(), &caches[0]).start();
        let b = ServerSpec::new(&redis.uri(), &caches[1]).start();

        assert_eq!(a.deploy("hello", &rvm_e2e::guest("hello"), "").status, 200);
        eventually("Unit serves what rvm server deployed", || {
            get(addr(invoke), "/hello/").text() == "Hello from rvm\n"
        });
        let echo = std::fs::read(rvm_e2e::guest("echo")).unwrap();
        let deployed = request(addr(admin), "POST", "/deploy/echo", &[], &echo);
        assert_eq!(deployed.status, 200, "{}", deployed.text());
        eventually("both servers serve what Unit deployed", || {
            [a.invoke, b.invoke]
                .iter()
                .all(|&at| request(at, "POST", "/echo/", &[], b"shared").text() == "shared")
        });
        assert_eq!(b.admin_call("DELETE", "/deploy/hello", &[]).status, 200);
        eventually("Unit stops serving what rvm server deleted", || {
            get(addr(invoke), "/hello/").status == 404
        });
    });
}
