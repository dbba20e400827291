//! The limit and grant flags of `rvm serve` and `rvm server`, laid over the
//! `RVM_*` settings of the environment (`rvm-config`): flags win.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use rvm_config::Config;
use rvm_engine::{AllowList, LogImport};

/// Limits and grants: of the one component `rvm serve` serves, or the server's
/// defaults, which a component's deploy settings override.
#[derive(Args)]
pub struct SettingsFlags {
    /// A host directory the guest may use, preopened at the same path (repeatable).
    #[arg(long = "dir", value_name = "PATH")]
    dirs: Vec<PathBuf>,

    /// Fuel budget of one request; 0 = unlimited [env: RVM_FUEL] [default: 100000000].
    #[arg(long, value_name = "N", value_parser = |v: &str| rvm_config::parse_fuel(v).map(Fuel))]
    fuel: Option<Fuel>,

    /// Linear memory one instance may hold [env: RVM_MAX_MEMORY] [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = rvm_config::parse_memory)]
    max_memory: Option<u64>,

    /// Wall-clock limit of one request, e.g. 30s, 250ms [env: RVM_TIMEOUT] [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = rvm_config::parse_timeout)]
    timeout: Option<Duration>,

    /// Instances alive at once; further requests wait [env: RVM_MAX_INSTANCES] [default: 1000].
    #[arg(long, value_name = "N", value_parser = rvm_config::parse_instances)]
    max_instances: Option<u32>,

    /// What `client-secret` returns [env: RVM_CLIENT_SECRET].
    #[arg(long, value_name = "SECRET", conflicts_with = "client_secret_file")]
    client_secret: Option<String>,

    /// A file holding what `client-secret` returns [env: RVM_CLIENT_SECRET_FILE].
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,

    /// Comma list of scheme://host[:port] the guest may call [env: RVM_ALLOWED_OUTBOUND_HOSTS].
    #[arg(long, value_name = "LIST", value_parser = AllowList::parse)]
    allowed_outbound_hosts: Option<AllowList>,

    /// A variable of the guest's environment, NAME=VALUE (repeatable) [env: RVM_ENV_<NAME>].
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// Add x-rvm-fuel-consumed and x-rvm-fuel-remaining to responses [env: RVM_FUEL_HEADERS].
    #[arg(long)]
    fuel_headers: bool,

    /// Requests one instance serves in turn; 1 = a fresh instance for each
    /// [env: RVM_INSTANCE_REUSE] [default: 1].
    #[arg(long, value_name = "N", value_parser = rvm_config::parse_instances)]
    instance_reuse: Option<u32>,

    /// JSON arguments one call of a component's function may carry
    /// [env: RVM_MAX_ARGS_SIZE] [default: 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = rvm_config::parse_size)]
    max_args_size: Option<u64>,

    /// Comma list of imported functions, pkg:name/interface@version#function,
    /// whose calls are written to the log [env: RVM_LOG_IMPORTS].
    #[arg(long, value_name = "LIST", value_parser = LogImport::parse_list)]
    log_imports: Option<Vec<LogImport>>,
}

impl SettingsFlags {
    /// The environment's `RVM_*` settings with the flags laid over them.
    pub fn config(&self) -> Result<Config> {
        let mut config = Config::from_env()?;
        if let Some(bytes) = self.max_memory {
            config.set_max_memory(bytes);
            config.policy.names.memory = "--max-memory";
        }
        let Config { pool, policy } = &mut config;
        if let Some(Fuel(fuel)) = self.fuel {
            policy.limits.fuel = fuel;
            policy.names.fuel = "--fuel";
        }
        if let Some(timeout) = self.timeout {
            policy.limits.timeout = timeout;
            policy.names.timeout = "--timeout";
        }
        if let Some(bytes) = self.max_args_size {
            policy.limits.max_args_size = bytes;
            policy.names.args_size = "--max-args-size";
        }
        pool.max_instances = self.max_instances.unwrap_or(pool.max_instances);
        let grants = &mut policy.grants;
        if let Some(secret) = &self.client_secret {
            grants.client_secret = secret.as_str().into();
        }
        if let Some(path) = &self.client_secret_file {
            grants.client_secret =
                rvm_config::read_secret_file(path, "--client-secret-file")?.into();
        }
        if let Some(allowed) = &self.allowed_outbound_hosts {
            grants.outbound = allowed.clone();
            policy.names.outbound = "--allowed-outbound-hosts";
        }
        if let Some(imports) = &self.log_imports {
            grants.log_imports = imports.clone();
        }
        grants.env.extend(self.env.iter().cloned());
        grants.dirs.extend(self.dirs.iter().cloned());
        policy.fuel_headers |= self.fuel_headers;
        policy.instance_reuse = self.instance_reuse.unwrap_or(policy.instance_reuse);
        Ok(config)
    }
}

/// A fuel budget; `None` is unlimited.
#[derive(Clone, Copy)]
struct Fuel(Option<u64>);

fn parse_env(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err("expected NAME=VALUE".to_string()),
    }
}
