//! One request: a fresh store and instance under the application's limits, the
//! response streamed back as the guest writes it, and one log line when it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Response};
use tokio::sync::oneshot;
use wasmtime::component::Resource;
use wasmtime::{CallHook, Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use crate::app::App;
use crate::body::{Inflight, Outcome, RequestRecord, ResponseBody};
use crate::failure::Failure;
use crate::host::Host;
use crate::runtime::Runtime;
use crate::settings::Settings;

/// Response header carrying the fuel a request used before its headers were sent.
pub const FUEL_HEADER: &str = "x-rvm-fuel-consumed";

/// A request's store, with the request and the response-outparam in its table.
type Prepared = (
    Store<Host>,
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
);

/// What a guest's `response-outparam.set` delivers.
type GuestResponse = Result<
    Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
    wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
>;

impl App {
    /// Runs the request through a fresh instance. Never fails: every failure
    /// becomes a response (or a cut-off body) and a log line naming the cause.
    pub async fn handle<B>(&self, request: http::Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let record = RequestRecord::new(&self.name, &request);
        let (sender, receiver) = oneshot::channel();
        let (done, outcome) = oneshot::channel();
        let guest = Guest {
            runtime: Arc::clone(&self.runtime),
            pre: self.pre.clone(),
            settings: Arc::clone(&self.settings),
        };
        // Boxed: tokio moves a task's future as it makes and finishes the
        // task, and a pointer is cheaper to move than the state of an
        // instantiation and a call.
        let task = tokio::spawn(Box::pin(guest.run(request, sender, done)));
        let inflight = Inflight::new(record, task, outcome);

        match receiver.await {
            Ok(Ok(response)) => {
                let (parts, body) = response.into_parts();
                let body = ResponseBody::guest(body, inflight.with_head(&parts));
                Response::from_parts(parts, body)
            }
            Ok(Err(code)) => {
                inflight
                    .failed_before_headers(Some(Failure::ErrorCode(code)))
                    .await
            }
            // The guest dropped its response-outparam, its store is gone, or
            // the request never reached it: the outcome says why.
            Err(_) => inflight.failed_before_headers(None).await,
        }
    }
}

/// Keeps a count of the fuel used up to the guest's latest call into the host,
/// which is where `response-outparam.set` is called from.
fn meter_fuel(store: &mut Store<Host>, budget: u64) -> Arc<AtomicU64> {
    let meter = Arc::new(AtomicU64::new(0));
    let hook_meter = Arc::clone(&meter);
    store.call_hook(move |store, hook| {
        if matches!(hook, CallHook::CallingHost) {
            hook_meter.store(budget - store.get_fuel()?, Ordering::Relaxed);
        }
        Ok(())
    });
    meter
}

/// What a request's guest task runs with.
struct Guest {
    runtime: Arc<Runtime>,
    pre: ProxyPre<Host>,
    settings: Arc<Settings>,
}

impl Guest {
    /// Makes the request's store and instance, runs the guest to its end or its
    /// wall-clock limit, then reports how it went. All of it happens in one
    /// task, so that on a busy thread requests go through one after another
    /// and a pool slot one frees is the warm one the next gets. The store is
    /// dropped before the report so that the instance is gone by the time a
    /// client sees the end of the response. Reporting first and dropping after
    /// a yield, so that the response leaves sooner, was tried: a batch's
    /// instances are then all alive at once, each in a pool slot of its own,
    /// and through Unit the application process took about 40% more CPU per
    /// request.
    async fn run<B>(
        self,
        request: http::Request<B>,
        respond: oneshot::Sender<GuestResponse>,
        done: oneshot::Sender<Outcome>,
    ) where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let permit = match self.runtime.instance_permit().await {
            Ok(permit) => permit,
            Err(e) => return report(done, Err(Failure::Host(format!("{e:#}"))), None),
        };
        let (mut store, incoming, outparam) = match self.prepare(request, respond) {
            Ok(prepared) => prepared,
            Err(failure) => return report(done, Err(failure), None),
        };
        let limits = &self.settings.limits;
        let run = async {
            let proxy = self.pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        };
        let result = match tokio::time::timeout(limits.timeout, run).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => {
                let memory = &store.data().memory;
                let refused = memory.denied.map(|_| memory.limit());
                Err(Failure::from_guest_error(&error, limits.fuel, refused))
            }
            Err(_elapsed) => Err(Failure::Timeout(limits.timeout)),
        };
        // A guest stopped mid-run by its timer leaves the store's count stale.
        let budget = limits.fuel_budget();
        let fuel = match result {
            Err(Failure::Timeout(_)) => None,
            _ => store.get_fuel().ok().map(|left| budget - left),
        };
        drop(store);
        drop(permit);
        report(done, result, fuel);
    }

    /// A store for one request, with the request and response handles in it.
    fn prepare<B>(
        &self,
        request: http::Request<B>,
        respond: oneshot::Sender<GuestResponse>,
    ) -> Result<Prepared, Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let host_failure = |e: wasmtime::Error| Failure::Host(format!("{e:#}"));
        let host = Host::new(&self.settings).map_err(|e| Failure::Host(format!("{e:#}")))?;
        let mut store = Store::new(self.runtime.engine(), host);
        store.limiter(|host| &mut host.memory);
        let budget = self.settings.limits.fuel_budget();
        store.set_fuel(budget).map_err(host_failure)?;
        // Yield to the executor at every epoch tick: a spinning guest neither
        // holds its thread nor escapes its wall-clock timer. tokio's own yield
        // lets the runtime poll its timers and sockets before resuming the
        // guest, which a current-thread runtime (the Unit module's) needs.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| {
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });

        let fuel_meter = self
            .settings
            .fuel_headers
            .then(|| meter_fuel(&mut store, budget));
        let scheme = match request.uri().scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let mut http = store.data_mut().http();
        let incoming = http
            .new_incoming_request(scheme, request)
            .map_err(|e| Failure::BadRequest(format!("{e}")))?;
        let outparam = http
            .new_response_outparam_from_callback(move |mut response: GuestResponse| {
                if let (Ok(response), Some(meter)) = (&mut response, fuel_meter) {
                    let used = HeaderValue::from(meter.load(Ordering::Relaxed));
                    response.headers_mut().insert(FUEL_HEADER, used);
                }
                // The receiver is gone only if the request was abandoned.
                let _ = respond.send(response);
            })
            .map_err(host_failure)?;
        Ok((store, incoming, outparam))
    }
}

/// Tells the request how its guest's run ended; nobody listens any more if
/// the response was abandoned.
fn report(done: oneshot::Sender<Outcome>, result: Result<(), Failure>, fuel: Option<u64>) {
    let _ = done.send(Outcome { result, fuel });
}

/// A response for a failure that happened before any header was sent.
pub(crate) fn failure_response(failure: &Failure) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::message(failure.client_message()));
    *response.status_mut() = failure.status();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
