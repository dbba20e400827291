//! The state of one request's `Store`: WASI contexts, the outbound policy, the
//! memory limiter and what `rvm:lambda/host` answers with.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::error::Context as _;
use wasmtime::{ResourceLimiter, Result};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::{HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostIncomingRequest, HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::OutboundHooks;
use crate::policy::Policy;

pub(crate) struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    pub(crate) memory: MemoryLimiter,
    pub(crate) client_secret: Arc<str>,
    /// The application's name, for what the guest writes to the log.
    pub(crate) app: Arc<str>,
}

impl Host {
    /// A guest sees only what `policy` grants: its own environment, the listed
    /// directories, no sockets, no host variables. Its output goes to ours.
    pub(crate) fn new(app: &Arc<str>, policy: &Policy) -> Result<Host> {
        let grants = &policy.grants;
        let mut wasi = WasiCtx::builder();
        wasi.envs(&grants.env).inherit_stdout().inherit_stderr();
        for dir in &grants.dirs {
            let guest_path = dir.to_string_lossy();
            wasi.preopened_dir(dir, guest_path, FsPerms::ReadWrite)
                .with_context(|| format!("cannot open directory {}", dir.display()))?;
        }
        Ok(Host {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                app: Arc::clone(app),
                allow: grants.outbound.clone(),
                named_as: policy.names.outbound,
            },
            memory: MemoryLimiter {
                limit: policy.limits.max_memory,
                denied: None,
            },
            client_secret: Arc::clone(&grants.client_secret),
            app: Arc::clone(app),
        })
    }
}

impl Host {
    /// Whether the guest holds on to a resource of a request: a body it did
    /// not finish, a request or response it did not let go of.
    pub(crate) fn holds_request_resources(&mut self) -> bool {
        self.table.iter_mut().any(|entry| {
            entry.is::<HostOutgoingBody>()
                || entry.is::<HostIncomingBody>()
                || entry.is::<HostIncomingRequest>()
                || entry.is::<HostOutgoingResponse>()
                || entry.is::<HostResponseOutparam>()
        })
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Refuses growth of a linear memory past `limit` and remembers that it did, so
/// that a trap that follows can be reported as the limit it was.
pub(crate) struct MemoryLimiter {
    limit: u64,
    /// The size a refused growth asked for.
    pub(crate) denied: Option<u64>,
}

impl MemoryLimiter {
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        let desired = desired as u64;
        if desired > self.limit {
            self.denied = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        // Tables are bounded by the pool's slot size.
        Ok(true)
    }
}
