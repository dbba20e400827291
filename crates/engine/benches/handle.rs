//! What one request costs the engine, without any front end: `App::handle` on
//! a hello guest (Rust's, or Python's with `--guest hello_py`), one request
//! after another on a current-thread runtime (the Unit module's kind), next to
//! the least any server that gives each request a fresh instance pays in the
//! same engine: a store with bare WASI and wasi:http contexts, instantiate,
//! call, read the body, drop (what `wasmtime serve` does per request). Not a
//! test: it prints, it does not judge.
//!
//!   cargo bench -p rvm-engine --bench handle
//!
//! With `--instructions rvm` (or `bare`) it times nothing: run under
//! valgrind's callgrind (as `bench/engine.sh --instructions` does), it makes
//! that kind of request in [`counted_requests`], whose instructions callgrind
//! counts the same however busy the machine is.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use rvm_engine::{App, Embedding, Policy, PoolConfig, Runtime};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

// The Unit module's allocator: this loop is its kind (one thread, one request after another).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The answer of every hello guest (Rust's `hello`, Python's `hello_py`).
const HELLO: &[u8] = b"Hello from rvm\n";

/// How many requests make a measurement of a guest.
struct Scale {
    /// Rounds of requests; the fastest quarter is reported, as this
    /// machine's neighbours come and go.
    rounds: usize,
    requests_per_round: usize,
    /// Requests counted under callgrind, after as many uncounted ones: the
    /// first use of each pool slot costs more than the others.
    counted: usize,
}

/// For the Rust hello, about 15 µs a request.
const SMALL_GUEST: Scale = Scale {
    rounds: 40,
    requests_per_round: 2000,
    counted: 1000,
};
/// For a guest that takes milliseconds (a Python one).
const LARGE_GUEST: Scale = Scale {
    rounds: 20,
    requests_per_round: 50,
    counted: 50,
};
/// Instances in the pool under callgrind: each one's memory slots and their
/// guard regions reserve 64 GiB of address space, more than valgrind lets a
/// process reserve for the default thousand (or even for four). The requests
/// come one at a time, so two are enough.
const COUNTED_POOL: u32 = 2;

fn main() {
    let arg = |name: &str| std::env::args().skip_while(|arg| arg != name).nth(1);
    let counting = arg("--instructions");
    let guest = arg("--guest").unwrap_or_else(|| "hello".to_string());
    let scale = if guest == "hello" {
        SMALL_GUEST
    } else {
        LARGE_GUEST
    };
    let hello = rvm_e2e::guest(&guest);
    let mut pool = PoolConfig::default();
    if counting.is_some() {
        pool.max_instances = COUNTED_POOL;
    }
    let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving).unwrap());
    let app = App::load(Arc::clone(&runtime), &guest, &hello, Policy::default()).unwrap();
    // The same, one instance serving every request: what is left of a request
    // is the guest's own work and the engine's plumbing, without instantiating.
    let reusing = Policy {
        instance_reuse: u32::MAX,
        ..Policy::default()
    };
    let reused = App::load(Arc::clone(&runtime), &guest, &hello, reusing).unwrap();
    let bare = Bare::new(&runtime, &hello);

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rvm_request = || async {
        let response = app.handle(get()).await;
        response.into_body().collect().await.unwrap().to_bytes()
    };
    let bare_request = || bare.handle();
    let reused_request = || async {
        let response = reused.handle(get()).await;
        response.into_body().collect().await.unwrap().to_bytes()
    };
    if let Some(kind) = counting {
        match kind.as_str() {
            "rvm" => counted(&tokio, scale.counted, rvm_request),
            "bare" => counted(&tokio, scale.counted, bare_request),
            _ => panic!("--instructions takes rvm or bare, not {kind}"),
        }
        println!("requests counted: {}", scale.counted);
        return;
    }
    let rvm = tokio.block_on(per_request(&scale, rvm_request));
    let floor = tokio.block_on(per_request(&scale, bare_request));
    let kept = tokio.block_on(per_request(&scale, reused_request));

    println!(
        "machine: {} cores, one thread",
        std::thread::available_parallelism().unwrap()
    );
    println!("guest: {guest}");
    println!("{:<44} {rvm:6.2} us/request", "App::handle (rvm engine)");
    println!(
        "{:<44} {floor:6.2} us/request",
        "fresh instance, bare WASI (reference)"
    );
    println!("ratio: {:.2}", rvm / floor);
    println!(
        "{:<44} {kept:6.2} us/request (making and dropping an instance: {:.2})",
        "App::handle, one instance reused",
        rvm - kept
    );
}

fn get() -> http::Request<Empty<Bytes>> {
    http::Request::get("http://bench.test/")
        .body(Empty::new())
        .unwrap()
}

/// Microseconds per request, from the fastest quarter of the rounds.
async fn per_request<F, R>(scale: &Scale, mut request: F) -> f64
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    let mut rounds = Vec::with_capacity(scale.rounds);
    for _ in 0..scale.rounds {
        let started = Instant::now();
        repeat(scale.requests_per_round, &mut request).await;
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / scale.requests_per_round as f64);
    }
    rounds.sort_by(f64::total_cmp);
    let fastest = &rounds[..scale.rounds / 4];
    fastest.iter().sum::<f64>() / fastest.len() as f64
}

/// Makes `count` requests one after another, checking each answer.
async fn repeat<F, R>(count: usize, mut request: F)
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    for _ in 0..count {
        assert_eq!(request().await, HELLO);
    }
}

/// Warms the pool up with uncounted requests, then makes the counted ones.
fn counted<F, R>(tokio: &tokio::runtime::Runtime, count: usize, mut request: F)
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    tokio.block_on(repeat(count, &mut request));
    counted_requests(tokio, count, request);
}

/// The requests whose instructions `bench/engine.sh --instructions` counts:
/// callgrind is told this function's name, so it must stay a function.
#[inline(never)]
fn counted_requests<F, R>(tokio: &tokio::runtime::Runtime, count: usize, request: F)
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    tokio.block_on(repeat(count, request));
}

/// The reference: a fresh instance per request with nothing but the contexts
/// wasi:http needs, in the rvm engine's wasmtime engine.
struct Bare {
    engine: wasmtime::Engine,
    pre: ProxyPre<BareHost>,
}

struct BareHost {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl WasiView for BareHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for BareHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

impl Bare {
    fn new(runtime: &Runtime, path: &std::path::Path) -> Bare {
        let engine = runtime.engine().clone();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let component = Component::from_file(&engine, path).unwrap();
        let pre = ProxyPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Bare { engine, pre }
    }

    async fn handle(&self) -> Bytes {
        let host = BareHost {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
        };
        let mut store = Store::new(&self.engine, host);
        // The engine meters fuel and interrupts by epoch; a store must allow both.
        store.set_fuel(u64::MAX).unwrap();
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Continue(1)));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = store.data_mut().http();
        let request = http.new_incoming_request(Scheme::Http, get()).unwrap();
        let outparam = http
            .new_response_outparam_from_callback(move |response| {
                let _ = sender.send(response);
            })
            .unwrap();
        let proxy = self.pre.instantiate_async(&mut store).await.unwrap();
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, outparam)
            .await
            .unwrap();
        drop(store);
        let response = receiver.await.unwrap().unwrap();
        response.into_body().collect().await.unwrap().to_bytes()
    }
}
