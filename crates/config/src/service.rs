//! The RVM service's own settings, shared by `rvm server` and the Unit module
//! in store mode: how often the store is looked at, how large an upload may be,
//! the admin token, where compiled code is kept, and (in Unit) which API an
//! application serves.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::values::{parse_size, parse_timeout};

/// How often nodes look at the store's generation marker.
const DEFAULT_POLL: Duration = Duration::from_secs(1);
/// The largest component a deploy may upload.
const DEFAULT_MAX_COMPONENT_SIZE: u64 = 256 << 20;

/// Which API a Unit application serves in store mode (`RVM_ROLE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Components by name.
    #[default]
    Invoke,
    /// The deploy API.
    Admin,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `RVM_STORE_POLL`.
    pub poll: Duration,
    /// `RVM_MAX_COMPONENT_SIZE`.
    pub max_component_size: u64,
    /// `RVM_ADMIN_TOKEN`: every admin call needs it, when set.
    pub admin_token: Option<String>,
    /// `RVM_CACHE_DIR`, else `$XDG_CACHE_HOME/rvm`, else `$HOME/.cache/rvm`.
    pub cache_dir: Option<PathBuf>,
    /// `RVM_ROLE`.
    pub role: Role,
}

impl ServiceConfig {
    /// The service's settings in the process environment.
    pub fn from_env() -> Result<ServiceConfig> {
        ServiceConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// The service's settings as `var` gives the variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<ServiceConfig> {
        Ok(ServiceConfig {
            poll: read(&var, "RVM_STORE_POLL", parse_timeout)?.unwrap_or(DEFAULT_POLL),
            max_component_size: read(&var, "RVM_MAX_COMPONENT_SIZE", parse_size)?
                .unwrap_or(DEFAULT_MAX_COMPONENT_SIZE),
            admin_token: var("RVM_ADMIN_TOKEN").filter(|token| !token.is_empty()),
            cache_dir: var("RVM_CACHE_DIR")
                .or_else(|| var("XDG_CACHE_HOME").map(|dir| format!("{dir}/rvm")))
                .or_else(|| var("HOME").map(|home| format!("{home}/.cache/rvm")))
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            role: read(&var, "RVM_ROLE", parse_role)?.unwrap_or_default(),
        })
    }
}

/// The variable `name`, parsed, if it is set.
fn read<T>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>> {
    var(name)
        .map(|value| parse(&value).map_err(|why| anyhow!("{name}={value:?} is not valid: {why}")))
        .transpose()
}

fn parse_role(value: &str) -> Result<Role, String> {
    match value.trim() {
        "invoke" => Ok(Role::Invoke),
        "admin" => Ok(Role::Admin),
        _ => Err("expected invoke or admin".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ServiceConfig> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceConfig::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_and_every_variable() {
        let defaults = config(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(defaults.poll, Duration::from_secs(1));
        assert_eq!(defaults.max_component_size, 256 << 20);
        assert_eq!(defaults.admin_token, None);
        assert_eq!(
            defaults.cache_dir,
            Some(PathBuf::from("/home/u/.cache/rvm"))
        );
        assert_eq!(defaults.role, Role::Invoke);

        let set = config(&[
            ("RVM_STORE_POLL", "250ms"),
            ("RVM_MAX_COMPONENT_SIZE", "1MiB"),
            ("RVM_ADMIN_TOKEN", "t0k3n"),
            ("RVM_CACHE_DIR", "/var/cache/rvm"),
            ("RVM_ROLE", "admin"),
        ])
        .unwrap();
        assert_eq!(set.poll, Duration::from_millis(250));
        assert_eq!(set.max_component_size, 1 << 20);
        assert_eq!(set.admin_token.as_deref(), Some("t0k3n"));
        assert_eq!(set.cache_dir, Some(PathBuf::from("/var/cache/rvm")));
        assert_eq!(set.role, Role::Admin);
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (key, value) in [
            ("RVM_STORE_POLL", "often"),
            ("RVM_MAX_COMPONENT_SIZE", "0"),
            ("RVM_ROLE", "both"),
        ] {
            let error = config(&[(key, value)]).unwrap_err().to_string();
            assert!(error.contains(key) && error.contains(value), "{error}");
        }
    }
}
