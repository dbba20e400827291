//! An application's [`Policy`]: the [`Limits`] and [`Grants`] each of its
//! requests runs under. Front ends build it from their own flags and variables;
//! the process's instance pool is configured apart (`PoolConfig`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::log::LogImport;
use crate::names::SettingNames;
use crate::outbound::AllowList;

/// Fuel budget of one request.
const DEFAULT_FUEL: u64 = 100_000_000;
/// Linear memory one instance may hold, and what a pool slot reserves for it.
pub(crate) const DEFAULT_MAX_MEMORY: u64 = 256 << 20;
/// Wall-clock limit of one request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The JSON arguments of one call to a component's function.
const DEFAULT_MAX_ARGS_SIZE: u64 = 16 << 20;

/// The limits one request runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel of one request; `None` is unlimited.
    pub fuel: Option<u64>,
    /// Bytes of linear memory its instance may hold.
    pub max_memory: u64,
    /// Wall-clock time it may take.
    pub timeout: Duration,
    /// Bytes of JSON arguments a call to one of its functions may carry.
    pub max_args_size: u64,
}

impl Limits {
    /// The fuel a request's store starts with: all there is when unlimited.
    pub(crate) fn fuel_budget(&self) -> u64 {
        self.fuel.unwrap_or(u64::MAX)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Some(DEFAULT_FUEL),
            max_memory: DEFAULT_MAX_MEMORY,
            timeout: DEFAULT_TIMEOUT,
            max_args_size: DEFAULT_MAX_ARGS_SIZE,
        }
    }
}

/// What a guest may see and reach beyond its own instance; nothing by default.
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// What `rvm:lambda/host#client-secret` returns.
    pub client_secret: Arc<str>,
    /// Where `wasi:http/outgoing-handler` may send requests.
    pub outbound: AllowList,
    /// The guest's whole environment (`wasi:cli/environment`).
    pub env: Vec<(String, String)>,
    /// Host directories preopened for the guest at the same path.
    pub dirs: Vec<PathBuf>,
    /// Imported functions of other worlds that write to the log.
    pub log_imports: Vec<LogImport>,
}

/// Everything an application's requests run under.
#[derive(Clone, Debug)]
pub struct Policy {
    pub limits: Limits,
    pub grants: Grants,
    /// The application's requests in flight at once, within the process's
    /// pool; further ones wait. `None`: as many as the pool holds.
    pub max_instances: Option<u32>,
    /// Requests one instance serves in turn before it is dropped; `1` (the
    /// default) gives every request a fresh instance.
    pub instance_reuse: u32,
    /// Add `x-rvm-fuel-consumed` and `x-rvm-fuel-remaining` to responses.
    pub fuel_headers: bool,
    pub names: SettingNames,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            limits: Limits::default(),
            grants: Grants::default(),
            max_instances: None,
            instance_reuse: 1,
            fuel_headers: false,
            names: SettingNames::default(),
        }
    }
}
