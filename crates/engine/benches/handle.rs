//! What one request costs the engine, without any front end: `App::handle` on
//! the hello guest, one request after another on a current-thread runtime (the
//! Unit module's kind), next to the least any server that gives each request a
//! fresh instance pays in the same engine: a store with bare WASI and
//! wasi:http contexts, instantiate, call, read the body, drop (what `wasmtime
//! serve` does per request). Not a test: it prints, it does not judge.
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

/// Rounds of requests; the fastest quarter is reported, as this machine's
/// neighbours come and go.
const ROUNDS: usize = 40;
const REQUESTS_PER_ROUND: usize = 2000;
const HELLO: &[u8] = b"Hello from rvm\n";
/// Requests counted under callgrind, after as many uncounted ones: the first
/// use of each pool slot costs more than the others.
const COUNTED_REQUESTS: usize = 1000;
/// Instances in the pool under callgrind: each one's memory slots and their
/// guard regions reserve 64 GiB of address space, more than valgrind lets a
/// process reserve for the default thousand (or even for four). The requests
/// come one at a time, so two are enough.
const COUNTED_POOL: u32 = 2;

fn main() {
    let counting = std::env::args()
        .skip_while(|arg| arg != "--instructions")
        .nth(1);
    let hello = rvm_e2e::guest("hello");
    let mut pool = PoolConfig::default();
    if counting.is_some() {
        pool.max_instances = COUNTED_POOL;
    }
    let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving).unwrap());
    let app = App::load(Arc::clone(&runtime), "hello", &hello, Policy::default()).unwrap();
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
    if let Some(kind) = counting {
        match kind.as_str() {
            "rvm" => counted(&tokio, rvm_request),
            "bare" => counted(&tokio, bare_request),
            _ => panic!("--instructions takes rvm or bare, not {kind}"),
        }
        println!("requests counted: {COUNTED_REQUESTS}");
        return;
    }
    let rvm = tokio.block_on(per_request(rvm_request));
    let floor = tokio.block_on(per_request(bare_request));

    println!(
        "machine: {} cores, one thread",
        std::thread::available_parallelism().unwrap()
    );
    println!("{:<44} {rvm:6.2} us/request", "App::handle (rvm engine)");
    println!(
        "{:<44} {floor:6.2} us/request",
        "fresh instance, bare WASI (reference)"
    );
    println!("ratio: {:.2}", rvm / floor);
}

fn get() -> http::Request<Empty<Bytes>> {
    http::Request::get("http://bench.test/")
        .body(Empty::new())
        .unwrap()
}

/// Microseconds per request, from the fastest quarter of the rounds.
async fn per_request<F, R>(mut request: F) -> f64
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        repeat(REQUESTS_PER_ROUND, &mut request).await;
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / REQUESTS_PER_ROUND as f64);
    }
    rounds.sort_by(f64::total_cmp);
    let fastest = &rounds[..ROUNDS / 4];
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
fn counted<F, R>(tokio: &tokio::runtime::Runtime, mut request: F)
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    tokio.block_on(repeat(COUNTED_REQUESTS, &mut request));
    counted_requests(tokio, request);
}

/// The requests whose instructions `bench/engine.sh --instructions` counts:
/// callgrind is told this function's name, so it must stay a function.
#[inline(never)]
fn counted_requests<F, R>(tokio: &tokio::runtime::Runtime, request: F)
where
    F: FnMut() -> R,
    R: Future<Output = Bytes>,
{
    tokio.block_on(repeat(COUNTED_REQUESTS, request));
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
