//! A component's own settings, given at deploy time and stored with it: each
//! one set replaces the server's default for that component's requests.

use std::collections::BTreeMap;
use std::time::Duration;

use rvm_config::{parse_fuel, parse_instances, parse_memory, parse_switch, parse_timeout};
use rvm_engine::{AllowList, Policy, SettingNames};
use serde::{Deserialize, Serialize};

/// How log lines name a setting a component was deployed with.
const NAMES: SettingNames = SettingNames {
    fuel: "deploy setting fuel",
    memory: "deploy setting max-memory",
    timeout: "deploy setting timeout",
    outbound: "deploy setting allowed-outbound-hosts",
    // Not a deploy setting: the server's own applies.
    args_size: "",
};

/// What a listing shows instead of a secret.
const REDACTED: &str = "(redacted)";

/// The settings a component was deployed with; `None` keeps the server's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentSettings {
    /// Fuel of one request; `0` is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<u64>,
    /// This component's requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// Requests one instance of this component serves in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_reuse: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_outbound_hosts: Option<String>,
    /// Variables of the guest's environment, added to the server's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_headers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ComponentSettings {
    /// The settings of a deploy: its query parameters, named like `rvm serve`'s
    /// flags, and the secret from its `x-rvm-client-secret` header. A malformed
    /// or unknown parameter is an error naming it.
    pub fn from_query(query: &str, secret: Option<String>) -> Result<ComponentSettings, String> {
        let mut settings = ComponentSettings {
            client_secret: secret,
            ..ComponentSettings::default()
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let parsed = match &*key {
                "fuel" => parse_fuel(&value).map(|fuel| settings.fuel = Some(fuel.unwrap_or(0))),
                "timeout" => parse_timeout(&value).map(|timeout| {
                    settings.timeout_ms = Some(timeout.as_millis().try_into().unwrap_or(u64::MAX))
                }),
                "max-memory" => parse_memory(&value).map(|bytes| settings.max_memory = Some(bytes)),
                "max-instances" => {
                    parse_instances(&value).map(|n| settings.max_instances = Some(n))
                }
                "instance-reuse" => {
                    parse_instances(&value).map(|n| settings.instance_reuse = Some(n))
                }
                "allowed-outbound-hosts" => AllowList::parse(&value)
                    .map(|_| settings.allowed_outbound_hosts = Some(value.to_string())),
                "env" => match value.split_once('=') {
                    Some((name, value)) if !name.is_empty() => {
                        settings.env.insert(name.to_string(), value.to_string());
                        Ok(())
                    }
                    _ => Err("expected NAME=VALUE".to_string()),
                },
                "fuel-headers" => parse_switch(&value).map(|on| settings.fuel_headers = Some(on)),
                // Directories are server configuration: an uploader must not
                // open the host's files.
                "dir" => Err("directories are granted by the server's configuration only".into()),
                _ => Err(
                    "no such setting (fuel, timeout, max-memory, max-instances, \
                     instance-reuse, allowed-outbound-hosts, env, fuel-headers)"
                        .into(),
                ),
            };
            parsed.map_err(|why| format!("{key}={value:?} is not valid: {why}"))?;
        }
        Ok(settings)
    }

    /// The policy of this component's requests: the server's `defaults` with
    /// these settings laid over them.
    pub fn policy(&self, defaults: &Policy) -> Result<Policy, String> {
        let mut policy = defaults.clone();
        if let Some(fuel) = self.fuel {
            policy.limits.fuel = (fuel != 0).then_some(fuel);
            policy.names.fuel = NAMES.fuel;
        }
        if let Some(ms) = self.timeout_ms {
            policy.limits.timeout = Duration::from_millis(ms);
            policy.names.timeout = NAMES.timeout;
        }
        if let Some(bytes) = self.max_memory {
            policy.limits.max_memory = bytes;
            policy.names.memory = NAMES.memory;
        }
        if let Some(n) = self.max_instances {
            policy.max_instances = Some(n);
        }
        if let Some(n) = self.instance_reuse {
            policy.instance_reuse = n;
        }
        if let Some(list) = &self.allowed_outbound_hosts {
            policy.grants.outbound = AllowList::parse(list)?;
            policy.names.outbound = NAMES.outbound;
        }
        if !self.env.is_empty() {
            let env = &mut policy.grants.env;
            env.retain(|(name, _)| !self.env.contains_key(name));
            env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            env.sort();
        }
        if let Some(on) = self.fuel_headers {
            policy.fuel_headers = on;
        }
        if let Some(secret) = &self.client_secret {
            policy.grants.client_secret = secret.as_str().into();
        }
        Ok(policy)
    }

    /// The settings as a listing shows them: the secret, if any, redacted.
    pub fn redacted(&self) -> ComponentSettings {
        ComponentSettings {
            client_secret: self.client_secret.as_ref().map(|_| REDACTED.to_string()),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_sets_what_it_names_and_nothing_else() {
        let settings = ComponentSettings::from_query(
            "fuel=0&timeout=250ms&max-memory=16MiB&max-instances=2&instance-reuse=50\
             &allowed-outbound-hosts=http%3A%2F%2F127.0.0.1%3A*&env=A%3D1&env=B=2%3D3&fuel-headers=1",
            Some("s3cr3t".into()),
        )
        .unwrap();
        let policy = settings.policy(&Policy::default()).unwrap();
        assert_eq!(policy.limits.fuel, None);
        assert_eq!(policy.limits.timeout, Duration::from_millis(250));
        assert_eq!(policy.limits.max_memory, 16 << 20);
        assert_eq!(policy.max_instances, Some(2));
        assert_eq!(policy.instance_reuse, 50);
        assert!(policy.grants.outbound.allows("http", "127.0.0.1", 8080));
        assert_eq!(
            policy.grants.env,
            [("A".into(), "1".into()), ("B".into(), "2=3".into())]
        );
        assert!(policy.fuel_headers);
        assert_eq!(&*policy.grants.client_secret, "s3cr3t");
        assert_eq!(policy.names, NAMES);

        let defaults = ComponentSettings::from_query("", None).unwrap();
        let policy = defaults.policy(&Policy::default()).unwrap();
        assert_eq!(policy.limits, Policy::default().limits);
        assert_eq!(policy.names, SettingNames::default());
    }

    #[test]
    fn bad_and_unknown_parameters_are_named() {
        for query in [
            "fuel=lots",
            "timeout=0s",
            "max-memory=1KiB",
            "max-instances=0",
            "allowed-outbound-hosts=example.com",
            "env=novalue",
            "fuel-headers=maybe",
            "dir=/etc",
            "colour=blue",
        ] {
            let error = ComponentSettings::from_query(query, None).unwrap_err();
            let key = query.split('=').next().unwrap();
            assert!(error.starts_with(key), "{query}: {error}");
        }
    }

    #[test]
    fn the_secret_is_stored_but_never_listed() {
        let settings = ComponentSettings::from_query("", Some("s3cr3t".into())).unwrap();
        let stored = serde_json::to_string(&settings).unwrap();
        assert!(stored.contains("s3cr3t"));
        let listed = serde_json::to_string(&settings.redacted()).unwrap();
        assert!(!listed.contains("s3cr3t"), "{listed}");
    }
}
