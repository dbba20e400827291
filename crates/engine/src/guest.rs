//! A request's guest: its store under the application's limits, its instance,
//! and its run to the end or to the wall-clock limit, reported as an
//! [`Outcome`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::component::{ComponentExportIndex, InstancePre, Resource, Val};
use wasmtime::{CallHook, Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use crate::failure::Failure;
use crate::functions::Functions;
use crate::host::Host;
use crate::inflight::Outcome;
use crate::policy::Policy;
use crate::runtime::Runtime;

/// Response headers carrying the fuel a request used before its headers were
/// sent, and what was left of its budget then.
const FUEL_CONSUMED: &str = "x-rvm-fuel-consumed";
const FUEL_REMAINING: &str = "x-rvm-fuel-remaining";

/// Instances kept for reuse per application, at most, when it has no bound
/// of its own: each holds a slot of the process's pool while it waits.
const MAX_IDLE: usize = 64;

/// A request's handles in its store's table.
type RequestHandles = (
    Resource<HostIncomingRequest>,
    Resource<HostResponseOutparam>,
);

/// What a guest's `response-outparam.set` delivers.
type GuestResponse = Result<Response<HyperOutgoingBody>, ErrorCode>;

/// Adds the fuel headers: `used` of `budget`.
pub(crate) fn add_fuel_headers(headers: &mut http::HeaderMap, used: u64, budget: u64) {
    headers.insert(FUEL_CONSUMED, HeaderValue::from(used));
    headers.insert(FUEL_REMAINING, HeaderValue::from(budget - used));
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

/// What a component exports, ready to instantiate.
#[derive(Clone)]
pub(crate) enum Entry {
    /// `wasi:http/incoming-handler`: each request goes to the guest.
    Http(ProxyPre<Host>),
    /// Plain functions, called with JSON.
    Functions(InstancePre<Host>, Arc<Functions>),
}

impl Entry {
    pub(crate) fn instance_pre(&self) -> &InstancePre<Host> {
        match self {
            Entry::Http(pre) => pre.instance_pre(),
            Entry::Functions(pre, _) => pre,
        }
    }
}

/// An application's component, ready to instantiate under its policy: what
/// each request's guest task runs with.
#[derive(Clone)]
pub(crate) struct Guest {
    app: Arc<str>,
    runtime: Arc<Runtime>,
    entry: Entry,
    policy: Arc<Policy>,
    /// The application's own bound on instances alive at once, if it has one.
    instances: Option<Arc<Semaphore>>,
    /// Instances waiting for their next request, when the policy reuses them.
    idle: Option<Arc<Mutex<Vec<Instance>>>>,
}

/// The instance in a store, made with its first request: a proxy, or (in
/// function mode) a plain instance.
#[derive(Default)]
struct Made {
    proxy: Option<Proxy>,
    plain: Option<wasmtime::component::Instance>,
}

/// A store, its instance once made, and the places it holds in the pools.
struct Instance {
    store: Store<Host>,
    made: Made,
    fuel_meter: Option<Arc<AtomicU64>>,
    /// Requests it served.
    served: u32,
    _places: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
}

impl Guest {
    pub(crate) fn new(app: &str, runtime: Arc<Runtime>, entry: Entry, policy: Policy) -> Guest {
        Guest {
            app: app.into(),
            runtime,
            entry,
            instances: policy
                .max_instances
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            idle: (policy.instance_reuse > 1).then(Arc::default),
            policy: Arc::new(policy),
        }
    }

    pub(crate) fn app_name(&self) -> &Arc<str> {
        &self.app
    }

    pub(crate) fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub(crate) fn entry(&self) -> &Entry {
        &self.entry
    }

    /// Runs the request through the guest's HTTP handler (see `on_instance`)
    /// to its end or its wall-clock limit, then reports how it went. All of it
    /// happens in one task, so that on a
    /// busy thread requests go through one after another and a pool slot one
    /// frees is the warm one the next gets. An instance not kept is dropped
    /// before the report, so that it is gone by the time a client sees the end
    /// of the response and a batch's instances are not all alive at once
    /// (docs/performance.md measures the other order).
    pub(crate) async fn run<B>(
        self,
        pre: ProxyPre<Host>,
        request: http::Request<B>,
        respond: oneshot::Sender<GuestResponse>,
        done: oneshot::Sender<Outcome>,
    ) where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let start = |instance: &mut Instance| self.start_request(instance, request, respond);
        let (result, fuel) = self
            .on_instance(start, async |store, made, (incoming, outparam)| {
                let proxy = match &mut made.proxy {
                    Some(proxy) => proxy,
                    None => made.proxy.insert(pre.instantiate_async(&mut *store).await?),
                };
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut *store, incoming, outparam)
                    .await
            })
            .await;
        report(done, result, fuel);
    }

    /// Calls the function at `index` with what `args` makes, once the call has
    /// its place in the pool, in an instance of its own (or a reused one, as
    /// for requests); its result, and the fuel it used.
    pub(crate) async fn call(
        &self,
        pre: &InstancePre<Host>,
        index: &ComponentExportIndex,
        args: impl FnOnce() -> Result<Vec<Val>, Failure>,
        results: usize,
    ) -> (Result<Vec<Val>, Failure>, Option<u64>) {
        let start = |instance: &mut Instance| {
            self.start_limits(instance)?;
            args()
        };
        self.on_instance(start, async |store, made, args| {
            let plain = match made.plain {
                Some(plain) => plain,
                None => *made.plain.insert(pre.instantiate_async(&mut *store).await?),
            };
            let func = plain
                .get_func(&mut *store, index)
                .ok_or_else(|| wasmtime::format_err!("the export is not a function"))?;
            let mut out = vec![Val::Bool(false); results];
            func.call_async(&mut *store, &args, &mut out).await?;
            Ok(out)
        })
        .await
    }

    /// Runs `work` in an instance of its own, or (when the policy reuses
    /// instances) in one that served earlier requests of this application and
    /// waits for the next, after `start` gave it the request; within the
    /// wall-clock limit. Returns how it ended and the fuel it used.
    async fn on_instance<S, T>(
        &self,
        start: impl FnOnce(&mut Instance) -> Result<S, Failure>,
        work: impl AsyncFnOnce(&mut Store<Host>, &mut Made, S) -> wasmtime::Result<T>,
    ) -> (Result<T, Failure>, Option<u64>) {
        let mut instance = match self.idle_instance() {
            Some(instance) => instance,
            None => match self.new_instance().await {
                Ok(instance) => instance,
                Err(failure) => return (Err(failure), None),
            },
        };
        let given = match start(&mut instance) {
            Ok(given) => given,
            Err(failure) => return (Err(failure), None),
        };
        let limits = &self.policy.limits;
        let Instance { store, made, .. } = &mut instance;
        let result = match tokio::time::timeout(limits.timeout, work(store, made, given)).await {
            Ok(Ok(value)) => Ok(value),
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
        instance.served += 1;
        if result.is_ok() {
            self.keep(instance);
        } else {
            drop(instance);
        }
        (result, fuel)
    }

    /// An instance waiting for its next request, if any.
    fn idle_instance(&self) -> Option<Instance> {
        let idle = self.idle.as_ref()?;
        idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// Keeps `instance` for the next request if the policy reuses instances,
    /// it has requests left, and its guest let go of everything of the request
    /// it served; else drops it.
    fn keep(&self, mut instance: Instance) {
        let Some(idle) = &self.idle else {
            return;
        };
        if instance.served >= self.policy.instance_reuse
            || instance.store.data_mut().holds_request_resources()
        {
            return;
        }
        let most = self.policy.max_instances.map_or(MAX_IDLE, |n| n as usize);
        let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < most {
            idle.push(instance);
        }
    }

    /// A store under the application's limits, with its places in the pools;
    /// its instance is made with the request's first call, within its
    /// wall-clock limit.
    async fn new_instance(&self) -> Result<Instance, Failure> {
        // The application's place first, so that its waiting requests hold
        // no place in the process's pool.
        let app_place = match &self.instances {
            Some(instances) => Arc::clone(instances).acquire_owned().await.ok(),
            None => None,
        };
        let place = self
            .runtime
            .instance_permit()
            .await
            .map_err(Failure::host)?;
        let host = Host::new(&self.app, &self.policy).map_err(Failure::host)?;
        let mut store = Store::new(self.runtime.engine(), host);
        store.limiter(|host| &mut host.memory);
        // Yield to the executor at every epoch tick: a spinning guest neither
        // holds its thread nor escapes its wall-clock timer. tokio's own yield
        // lets the runtime poll its timers and sockets before resuming the
        // guest, which a current-thread runtime (the Unit module's) needs.
        store.epoch_deadline_callback(|_| {
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let budget = self.policy.limits.fuel_budget();
        // Only a guest's HTTP response is sent before its run ends.
        let http = matches!(self.entry, Entry::Http(_));
        let fuel_meter = (self.policy.fuel_headers && http).then(|| meter_fuel(&mut store, budget));
        Ok(Instance {
            store,
            made: Made::default(),
            fuel_meter,
            served: 0,
            _places: (place, app_place),
        })
    }

    /// Gives the instance a request's limits: a full fuel budget, the epoch
    /// deadline, no memory growth refused yet.
    fn start_limits(&self, instance: &mut Instance) -> Result<(), Failure> {
        let store = &mut instance.store;
        store
            .set_fuel(self.policy.limits.fuel_budget())
            .map_err(Failure::host)?;
        store.set_epoch_deadline(1);
        store.data_mut().memory.denied = None;
        Ok(())
    }

    /// Gives the instance the request's limits and its handles.
    fn start_request<B>(
        &self,
        instance: &mut Instance,
        request: http::Request<B>,
        respond: oneshot::Sender<GuestResponse>,
    ) -> Result<RequestHandles, Failure>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        self.start_limits(instance)?;
        let store = &mut instance.store;
        let budget = self.policy.limits.fuel_budget();
        let fuel_meter = instance.fuel_meter.clone();
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
                    let used = meter.load(Ordering::Relaxed);
                    add_fuel_headers(response.headers_mut(), used, budget);
                }
                // The receiver is gone only if the request was abandoned.
                let _ = respond.send(response);
            })
            .map_err(Failure::host)?;
        Ok((incoming, outparam))
    }
}

/// Tells the request how its guest's run ended; nobody listens any more if
/// the response was abandoned.
fn report(done: oneshot::Sender<Outcome>, result: Result<(), Failure>, fuel: Option<u64>) {
    let _ = done.send(Outcome { result, fuel });
}
