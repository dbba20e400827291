//! The engine driven directly, as a front end drives it: `http::Request` in,
//! `http::Response` out, on the kind of runtime the Unit module uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rvm_e2e::guest;
use rvm_engine::{App, Embedding, Limits, Policy, PoolConfig, Runtime};

fn app(name: &str, policy: Policy) -> App {
    let runtime = Arc::new(Runtime::new(&PoolConfig::default(), Embedding::BeforeFork).unwrap());
    App::load(runtime, name, &guest(name), policy).unwrap()
}

fn request(path: &str, body: &'static [u8]) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(if body.is_empty() { "GET" } else { "POST" })
        .uri(format!("http://engine.test{path}"))
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

/// Status and whole body; the body's error if it was cut off.
async fn send(app: &App, path: &str, body: &'static [u8]) -> (u16, Result<Bytes, String>) {
    let response = app.handle(request(path, body)).await;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await;
    (
        status,
        body.map(|b| b.to_bytes()).map_err(|e| e.to_string()),
    )
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn serves_requests_on_a_current_thread_runtime() {
    let hello = app("hello", Policy::default());
    let echo = app("echo", Policy::default());
    current_thread().block_on(async {
        assert_eq!(
            send(&hello, "/", b"").await,
            (200, Ok(Bytes::from("Hello from rvm\n")))
        );
        assert_eq!(
            send(&echo, "/", b"round trip").await,
            (200, Ok(Bytes::from("round trip")))
        );
    });
}

#[test]
fn a_spinning_guest_yields_to_others_on_the_same_thread() {
    let limits = Limits {
        fuel: None,
        timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let misbehave = app(
        "misbehave",
        Policy {
            limits,
            ..Policy::default()
        },
    );
    current_thread().block_on(async {
        let started = Instant::now();
        let spin = async {
            let outcome = send(&misbehave, "/spin", b"").await;
            (outcome, started.elapsed())
        };
        let other = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let outcome = send(&misbehave, "/counter", b"").await;
            (outcome, started.elapsed())
        };
        let ((spun, spin_took), (counted, count_took)) = tokio::join!(spin, other);
        assert_eq!(spun.0, 504);
        assert!(spin_took >= Duration::from_millis(800), "{spin_took:?}");
        assert_eq!(counted, (200, Ok(Bytes::from("calls: 1\n"))));
        assert!(
            count_took < Duration::from_millis(400),
            "waited for the spinner: {count_took:?}"
        );
    });
}

#[test]
fn a_failure_after_the_headers_ends_the_body_with_an_error() {
    let misbehave = app("misbehave", Policy::default());
    current_thread().block_on(async {
        let (status, body) = send(&misbehave, "/fail-mid-body", b"").await;
        assert_eq!(status, 200);
        let error = body.expect_err("a cut-off body is an error, not an end");
        assert!(error.contains("guest trapped"), "{error}");
    });
}

#[test]
fn an_app_may_not_ask_for_more_memory_than_the_pool_holds() {
    let runtime = Runtime::new(&PoolConfig::default(), Embedding::BeforeFork).unwrap();
    let mut policy = Policy::default();
    policy.limits.max_memory *= 2;
    let error = App::load(Arc::new(runtime), "hello", &guest("hello"), policy)
        .err()
        .unwrap();
    let message = format!("{error:#}");
    assert!(
        message.contains("exceeds the 256MiB the engine was sized for"),
        "{message}"
    );
}

/// A component built against WASI 0.2.0 (older toolchains) imports and exports
/// 0.2.0 names: they resolve to the 0.2.x the engine links.
#[test]
fn a_component_of_an_older_wasi_0_2_minor_is_served() {
    // Takes the request and returns without answering it.
    let component = wat::parse_str(
        r#"(component
            (import "wasi:http/types@0.2.0" (instance $types
                (export "incoming-request" (type (sub resource)))
                (export "response-outparam" (type (sub resource)))))
            (alias export $types "incoming-request" (type $request))
            (alias export $types "response-outparam" (type $outparam))
            (core module $m (func (export "handle") (param i32 i32)))
            (core instance $i (instantiate $m))
            (func $handle (param "request" (own $request)) (param "response-out" (own $outparam))
                (canon lift (core func $i "handle")))
            (instance $handler (export "handle" (func $handle)))
            (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))"#,
    )
    .unwrap();
    let runtime = Arc::new(Runtime::new(&PoolConfig::default(), Embedding::BeforeFork).unwrap());
    let app = App::from_binary(runtime, "wasi-0.2.0", &component, Policy::default()).unwrap();
    current_thread().block_on(async {
        assert_eq!(
            send(&app, "/", b"").await,
            (
                500,
                Ok(Bytes::from("the application returned no response\n"))
            )
        );
    });
}
