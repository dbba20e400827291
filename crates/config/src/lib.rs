//! The settings an operator gives rvm's front ends, by the names they share:
//! `RVM_*` variables (in `rvm serve`'s environment, in a Unit application's
//! `environment` object) and the value syntax of `rvm serve`'s flags. They
//! become the engine's [`PoolConfig`] and [`Policy`], and the engine's log
//! lines name a setting as [`NAMES`] says.
//!
//! A malformed value is an error naming the variable and the value; nothing is
//! silently replaced by a default.

mod service;
mod values;

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use rvm_engine::{AllowList, LogImport, Policy, PoolConfig, SettingNames};

pub use service::{Role, ServiceConfig};
pub use values::{
    parse_fuel, parse_instances, parse_memory, parse_size, parse_switch, parse_timeout,
    read_secret_file,
};

/// How the engine's log lines name the settings these variables set.
pub const NAMES: SettingNames = SettingNames {
    fuel: "RVM_FUEL",
    memory: "RVM_MAX_MEMORY",
    timeout: "RVM_TIMEOUT",
    outbound: "RVM_ALLOWED_OUTBOUND_HOSTS",
    args_size: "RVM_MAX_ARGS_SIZE",
};

/// Prefix of the variables that become the guest's environment.
const GUEST_ENV_PREFIX: &str = "RVM_ENV_";

/// What the variables configure: the process's pool and an application's policy.
#[derive(Clone, Debug)]
pub struct Config {
    pub pool: PoolConfig,
    pub policy: Policy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            pool: PoolConfig::default(),
            policy: Policy {
                names: NAMES,
                ..Policy::default()
            },
        }
    }
}

impl Config {
    /// The configuration in the process environment.
    pub fn from_env() -> Result<Config> {
        Config::from_vars(std::env::vars_os().filter_map(|(key, value)| {
            // Variables that are not Unicode cannot be ours; a non-Unicode value
            // of ours is reported by `from_vars` rather than skipped.
            let key = key.into_string().ok()?;
            Some((
                key,
                value
                    .into_string()
                    .unwrap_or_else(|v| v.to_string_lossy().into()),
            ))
        }))
    }

    /// The configuration in `RVM_*` variables; every other variable is ignored.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let mut config = Config::default();
        let mut secret = None;
        let mut secret_file = None;
        let mut max_memory = None;
        for (key, value) in vars {
            let (policy, pool) = (&mut config.policy, &mut config.pool);
            let parsed = match key.as_str() {
                "RVM_FUEL" => parse_fuel(&value).map(|v| policy.limits.fuel = v),
                "RVM_MAX_MEMORY" => parse_memory(&value).map(|v| max_memory = Some(v)),
                "RVM_TIMEOUT" => parse_timeout(&value).map(|v| policy.limits.timeout = v),
                "RVM_MAX_INSTANCES" => parse_instances(&value).map(|v| pool.max_instances = v),
                "RVM_CLIENT_SECRET" => {
                    secret = Some(value.clone());
                    Ok(())
                }
                "RVM_CLIENT_SECRET_FILE" => {
                    secret_file = Some(PathBuf::from(&value));
                    Ok(())
                }
                "RVM_ALLOWED_OUTBOUND_HOSTS" => {
                    AllowList::parse(&value).map(|v| policy.grants.outbound = v)
                }
                "RVM_FUEL_HEADERS" => parse_switch(&value).map(|v| policy.fuel_headers = v),
                "RVM_INSTANCE_REUSE" => parse_instances(&value).map(|v| policy.instance_reuse = v),
                "RVM_MAX_ARGS_SIZE" => parse_size(&value).map(|v| policy.limits.max_args_size = v),
                "RVM_LOG_IMPORTS" => {
                    LogImport::parse_list(&value).map(|v| policy.grants.log_imports = v)
                }
                _ => match key.strip_prefix(GUEST_ENV_PREFIX) {
                    Some("") => Err(format!("a name must follow {GUEST_ENV_PREFIX}")),
                    Some(name) => {
                        policy.grants.env.push((name.to_string(), value.clone()));
                        Ok(())
                    }
                    None => Ok(()),
                },
            };
            parsed.map_err(|why| anyhow!("{key}={value:?} is not valid: {why}"))?;
        }
        if let Some(bytes) = max_memory {
            config.set_max_memory(bytes);
        }
        let grants = &mut config.policy.grants;
        grants.env.sort();
        grants.client_secret = match (secret, secret_file) {
            (Some(_), Some(_)) => {
                bail!("set RVM_CLIENT_SECRET or RVM_CLIENT_SECRET_FILE, not both")
            }
            (Some(secret), None) => secret.into(),
            (None, Some(path)) => read_secret_file(&path, "RVM_CLIENT_SECRET_FILE")?.into(),
            (None, None) => "".into(),
        };
        Ok(config)
    }

    /// The linear memory an instance may hold: each request's limit, and what
    /// each pool slot reserves.
    pub fn set_max_memory(&mut self, bytes: u64) {
        self.pool.max_memory = bytes;
        self.policy.limits.max_memory = bytes;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rvm_engine::Limits;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_vars(vars(&[("PATH", "/bin")])).unwrap();
        assert_eq!(config.pool, PoolConfig::default());
        assert_eq!(config.policy.limits, Limits::default());
        assert_eq!(&*config.policy.grants.client_secret, "");
        assert!(config.policy.grants.env.is_empty());
        assert!(!config.policy.fuel_headers);
        assert_eq!(config.policy.names, NAMES);
    }

    #[test]
    fn every_variable_is_read() {
        let config = Config::from_vars(vars(&[
            ("RVM_FUEL", "0"),
            ("RVM_MAX_MEMORY", "64MiB"),
            ("RVM_TIMEOUT", "250ms"),
            ("RVM_MAX_INSTANCES", "8"),
            ("RVM_CLIENT_SECRET", "s3cr3t"),
            ("RVM_ALLOWED_OUTBOUND_HOSTS", "https://*.example.com"),
            ("RVM_ENV_GREETING", "hi"),
            ("RVM_FUEL_HEADERS", "1"),
            ("RVM_INSTANCE_REUSE", "100"),
            ("RVM_MAX_ARGS_SIZE", "1MiB"),
            ("RVM_LOG_IMPORTS", "acme:trail/log@1.0.0#record"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        let (limits, grants) = (&config.policy.limits, &config.policy.grants);
        assert_eq!(limits.fuel, None);
        assert_eq!(limits.max_memory, 64 << 20);
        assert_eq!(config.pool.max_memory, 64 << 20);
        assert_eq!(limits.timeout, Duration::from_millis(250));
        assert_eq!(config.pool.max_instances, 8);
        assert_eq!(&*grants.client_secret, "s3cr3t");
        assert_eq!(grants.env, vec![("GREETING".to_string(), "hi".to_string())]);
        assert!(config.policy.fuel_headers);
        assert_eq!(config.policy.instance_reuse, 100);
        assert_eq!(limits.max_args_size, 1 << 20);
        assert_eq!(
            grants.log_imports[0].to_string(),
            "acme:trail/log@1.0.0#record"
        );
        assert!(grants.outbound.allows("https", "api.example.com", 443));
    }

    #[test]
    fn malformed_values_name_the_variable_and_value() {
        for (key, value) in [
            ("RVM_FUEL", "lots"),
            ("RVM_FUEL", "-1"),
            ("RVM_MAX_MEMORY", "256 parsecs"),
            ("RVM_MAX_MEMORY", "1KiB"),
            ("RVM_MAX_MEMORY", "5GiB"),
            ("RVM_TIMEOUT", "soon"),
            ("RVM_TIMEOUT", "0s"),
            ("RVM_MAX_INSTANCES", "0"),
            ("RVM_FUEL_HEADERS", "maybe"),
            ("RVM_INSTANCE_REUSE", "0"),
            ("RVM_MAX_ARGS_SIZE", "big"),
            ("RVM_LOG_IMPORTS", "audit#record"),
            ("RVM_ALLOWED_OUTBOUND_HOSTS", "example.com"),
            ("RVM_ENV_", "x"),
        ] {
            let err = Config::from_vars(vars(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains(value),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn secret_comes_from_a_file_without_its_line_end() {
        let dir = std::env::temp_dir().join(format!("rvm-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let path = file.to_string_lossy().to_string();
        let config = Config::from_vars(vars(&[("RVM_CLIENT_SECRET_FILE", &path)])).unwrap();
        assert_eq!(&*config.policy.grants.client_secret, "from-file");

        let both = vars(&[
            ("RVM_CLIENT_SECRET_FILE", &path),
            ("RVM_CLIENT_SECRET", "x"),
        ]);
        assert!(Config::from_vars(both).is_err());
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = Config::from_vars(vars(&[("RVM_CLIENT_SECRET_FILE", &path)]));
        assert!(missing.unwrap_err().to_string().contains(&path));
    }
}
