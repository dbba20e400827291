//! An application: one component, compiled once and pre-instantiated against
//! everything a guest may import, with the policy its requests run under; and
//! [`App::handle`], which serves one request through a fresh instance: to the
//! guest's `wasi:http` handler, or (a component that exports plain functions
//! instead) as a call of one of them with JSON.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use tokio::sync::oneshot;
use wasmtime::Result;
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::cache::{CodeCache, Compiled};
use crate::call;
use crate::failure::Failure;
use crate::functions::Functions;
use crate::guest::{Entry, Guest};
use crate::host::Host;
use crate::inflight::{Inflight, RequestRecord};
use crate::names::ByteSize;
use crate::policy::Policy;
use crate::response::ResponseBody;
use crate::runtime::Runtime;
use crate::{lambda, log};

pub struct App {
    guest: Guest,
}

/// A component compiled by [`App::precompiled`], to be loaded by
/// [`App::from_precompiled`] into another engine of the same configuration:
/// a forked process serves what its parent compiled without compiling it
/// again. Only the engine makes one, so its bytes are always wasmtime's own.
pub struct Precompiled(Vec<u8>);

impl App {
    /// Compiles the component in `path`. Every error names the file and the cause
    /// (not wasm, not a component, an import that cannot be satisfied, …).
    pub fn load(runtime: Arc<Runtime>, name: &str, path: &Path, policy: Policy) -> Result<App> {
        let load = || {
            let binary = std::fs::read(path).context("cannot read the file")?;
            App::from_binary(runtime, name, &binary, policy)
        };
        load().with_context(|| format!("cannot load component {}", path.display()))
    }

    /// Compiles a component held in memory.
    pub fn from_binary(
        runtime: Arc<Runtime>,
        name: &str,
        binary: &[u8],
        policy: Policy,
    ) -> Result<App> {
        check_policy(&runtime, name, &policy)?;
        let component = compile(&runtime, binary)?;
        App::from_component(runtime, name, component, policy)
    }

    /// A component held in memory whose content hash is `key`: its machine
    /// code from `cache`, or compiled now and kept there.
    pub fn from_binary_cached(
        runtime: Arc<Runtime>,
        name: &str,
        binary: &[u8],
        key: &str,
        policy: Policy,
        cache: &CodeCache,
    ) -> Result<(App, Compiled)> {
        check_policy(&runtime, name, &policy)?;
        let (component, compiled) = cache.component(&runtime, key, || compile(&runtime, binary))?;
        Ok((
            App::from_component(runtime, name, component, policy)?,
            compiled,
        ))
    }

    /// The component another process compiled into `cache` under `key`
    /// ([`App::from_binary_cached`]); never compiled here.
    pub fn from_cache(
        runtime: Arc<Runtime>,
        name: &str,
        key: &str,
        policy: Policy,
        cache: &CodeCache,
    ) -> Result<App> {
        check_policy(&runtime, name, &policy)?;
        let component = cache.cached(&runtime, key)?;
        App::from_component(runtime, name, component, policy)
    }

    /// The compiled component, for [`App::from_precompiled`].
    pub fn precompiled(&self) -> Result<Precompiled> {
        let component = self.guest.entry().instance_pre().component();
        let bytes = component
            .serialize()
            .context("cannot serialize the compiled component")?;
        Ok(Precompiled(bytes))
    }

    /// An application from what [`App::precompiled`] made in this program,
    /// for an engine of the same configuration (wasmtime refuses another).
    pub fn from_precompiled(
        runtime: Arc<Runtime>,
        name: &str,
        precompiled: &Precompiled,
        policy: Policy,
    ) -> Result<App> {
        check_policy(&runtime, name, &policy)?;
        // SAFETY: `Precompiled` holds only what `Component::serialize` made in
        // this program (its field is private to the engine), so the machine
        // code in it is wasmtime's own output, not bytes from outside.
        let component = unsafe { Component::deserialize(runtime.engine(), &precompiled.0) }
            .context("cannot load the precompiled component")?;
        App::from_component(runtime, name, component, policy)
    }

    fn from_component(
        runtime: Arc<Runtime>,
        name: &str,
        component: Component,
        policy: Policy,
    ) -> Result<App> {
        let mut linker = linker(runtime.engine())?;
        log::bind_imports(&mut linker, &component, &policy.grants.log_imports)?;
        let pre = linker
            .instantiate_pre(&component)
            .context("the component's imports cannot be satisfied")?;
        let entry = match ProxyPre::new(pre.clone()) {
            Ok(proxy) => Entry::Http(proxy),
            Err(not_http) => match Functions::of(&component) {
                Some(functions) => Entry::Functions(pre, Arc::new(functions)),
                None => {
                    return Err(not_http).context(
                        "the component exports neither wasi:http/incoming-handler@0.2 nor functions",
                    );
                }
            },
        };
        Ok(App {
            guest: Guest::new(name, runtime, entry, policy),
        })
    }

    pub fn name(&self) -> &str {
        self.guest.app_name()
    }

    /// Runs the request through a fresh instance. Never fails: every failure
    /// becomes a response (or a cut-off body) and a log line naming the cause.
    pub async fn handle<B>(&self, request: http::Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let pre = match self.guest.entry() {
            Entry::Http(pre) => pre.clone(),
            Entry::Functions(pre, functions) => {
                return call::handle(&self.guest, pre, functions, request).await;
            }
        };
        let guest = self.guest.clone();
        let record = RequestRecord::new(guest.app_name(), guest.policy(), &request);
        let (sender, receiver) = oneshot::channel();
        let (done, outcome) = oneshot::channel();
        // Boxed: tokio moves a task's future as it makes and finishes the
        // task, and a pointer is cheaper to move than the state of an
        // instantiation and a call.
        let task = tokio::spawn(Box::pin(guest.run(pre, request, sender, done)));
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

fn compile(runtime: &Runtime, binary: &[u8]) -> Result<Component> {
    Component::from_binary(runtime.engine(), binary).context("not a valid WebAssembly component")
}

/// A policy the engine can honour, with every granted directory openable.
fn check_policy(runtime: &Runtime, name: &str, policy: &Policy) -> Result<()> {
    let slot = runtime.pool().max_memory;
    if policy.limits.max_memory > slot {
        wasmtime::bail!(
            "a memory limit of {} exceeds the {} the engine was sized for",
            ByteSize(policy.limits.max_memory),
            ByteSize(slot)
        );
    }
    // Opens the preopened directories once, so that a missing one is an error
    // now rather than on every request.
    Host::new(&name.into(), policy)?;
    Ok(())
}

/// All of WASI 0.2 (components from Rust's `wasm32-wasip2` and componentize-py
/// import more than the proxy world), `wasi:http`, `rvm:lambda/host` and
/// `rvm:lambda/log`.
/// Versions 0.2.x of the WASI packages all resolve to wasmtime's.
fn linker(engine: &wasmtime::Engine) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("linking WASI")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .context("linking wasi:http")?;
    lambda::add_to_linker(&mut linker)?;
    log::add_to_linker(&mut linker)?;
    Ok(linker)
}
