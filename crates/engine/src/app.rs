//! An application: one component, compiled once and pre-instantiated against
//! everything a guest may import, with the settings its requests run under.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::host::Host;
use crate::lambda;
use crate::runtime::Runtime;
use crate::settings::{Settings, format_bytes};

pub struct App {
    pub(crate) name: Arc<str>,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) pre: ProxyPre<Host>,
    pub(crate) settings: Arc<Settings>,
}

impl App {
    /// Compiles the component in `path`. Every error names the file and the cause
    /// (not wasm, not a component, an import that cannot be satisfied, …).
    pub fn load(runtime: Arc<Runtime>, name: &str, path: &Path, settings: Settings) -> Result<App> {
        let load = || {
            let binary = std::fs::read(path).context("cannot read the file")?;
            App::from_binary(runtime, name, &binary, settings)
        };
        load().with_context(|| format!("cannot load component {}", path.display()))
    }

    /// Compiles a component held in memory.
    pub fn from_binary(
        runtime: Arc<Runtime>,
        name: &str,
        binary: &[u8],
        settings: Settings,
    ) -> Result<App> {
        check_settings(&runtime, &settings)?;
        let component = Component::from_binary(runtime.engine(), binary)
            .map_err(anyhow::Error::from)
            .context("not a valid WebAssembly component")?;
        App::from_component(runtime, name, component, settings)
    }

    /// The compiled component, for [`App::from_precompiled`] in another engine
    /// of the same configuration: a forked process serves what its parent
    /// compiled without compiling it again.
    pub fn precompiled(&self) -> Result<Vec<u8>> {
        self.pre
            .instance_pre()
            .component()
            .serialize()
            .map_err(anyhow::Error::from)
            .context("cannot serialize the compiled component")
    }

    /// An application from [`App::precompiled`] output.
    ///
    /// # Safety
    /// `precompiled` is what [`App::precompiled`] returned in this program for
    /// an engine made with the same limits: wasmtime runs the machine code in it
    /// as it is.
    pub unsafe fn from_precompiled(
        runtime: Arc<Runtime>,
        name: &str,
        precompiled: &[u8],
        settings: Settings,
    ) -> Result<App> {
        check_settings(&runtime, &settings)?;
        // SAFETY: as the caller promised, these are bytes wasmtime serialized.
        let component = unsafe { Component::deserialize(runtime.engine(), precompiled) }
            .map_err(anyhow::Error::from)
            .context("cannot load the precompiled component")?;
        App::from_component(runtime, name, component, settings)
    }

    fn from_component(
        runtime: Arc<Runtime>,
        name: &str,
        component: Component,
        settings: Settings,
    ) -> Result<App> {
        let pre = linker(runtime.engine())?
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component's imports cannot be satisfied")?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export wasi:http/incoming-handler@0.2")?;
        Ok(App {
            name: name.into(),
            runtime,
            pre,
            settings: Arc::new(settings),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Settings the engine can honour, with every granted directory openable.
fn check_settings(runtime: &Runtime, settings: &Settings) -> Result<()> {
    let pool_memory = runtime.limits().max_memory;
    if settings.limits.max_memory > pool_memory {
        bail!(
            "a memory limit of {} exceeds the {} the engine was sized for",
            format_bytes(settings.limits.max_memory),
            format_bytes(pool_memory)
        );
    }
    // Opens the preopened directories once, so that a missing one is an error
    // now rather than on every request.
    Host::new(settings)?;
    Ok(())
}

/// All of WASI 0.2 (components from Rust's `wasm32-wasip2` and componentize-py
/// import more than the proxy world), `wasi:http`, and `rvm:lambda/host`.
/// Versions 0.2.x of the WASI packages all resolve to wasmtime's.
fn linker(engine: &wasmtime::Engine) -> Result<Linker<Host>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http")?;
    lambda::add_to_linker(&mut linker)?;
    Ok(linker)
}
