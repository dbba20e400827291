//! What an operator configures: limits, the client secret, outbound access and the
//! guest's environment, read from `RVM_*` variables (the same names in `rvm serve`'s
//! environment and in a Unit application's `environment` object).
//!
//! A malformed value is an error naming the variable and the value; nothing is
//! silently replaced by a default.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::outbound::AllowList;

/// Fuel budget of one request.
pub const DEFAULT_FUEL: u64 = 100_000_000;
/// Linear memory one instance may hold.
pub const DEFAULT_MAX_MEMORY: u64 = 256 * MIB;
/// Wall-clock limit of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Instances alive at once per process.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// One wasm page: no memory limit can be smaller.
const MIN_MEMORY: u64 = 64 * KIB;
/// A 32-bit linear memory cannot be larger.
const MAX_MEMORY: u64 = 4 * GIB;

/// Prefix of the variables that become the guest's environment.
pub const GUEST_ENV_PREFIX: &str = "RVM_ENV_";

/// The limits one request runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Fuel of one request; `None` is unlimited.
    pub fuel: Option<u64>,
    /// Bytes of linear memory one instance may hold.
    pub max_memory: u64,
    /// Wall-clock time one request may take.
    pub timeout: Duration,
    /// Instances alive at once in this process; further requests wait.
    pub max_instances: u32,
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
            max_instances: DEFAULT_MAX_INSTANCES,
        }
    }
}

/// Everything an application is configured with.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub limits: Limits,
    /// What `rvm:lambda/host#client-secret` returns.
    pub client_secret: Arc<str>,
    /// Where `wasi:http/outgoing-handler` may send requests.
    pub outbound: AllowList,
    /// The guest's whole environment (`wasi:cli/environment`).
    pub guest_env: Vec<(String, String)>,
    /// Host directories preopened for the guest at the same path.
    pub dirs: Vec<PathBuf>,
    /// Add `x-rvm-fuel-consumed` to responses.
    pub fuel_headers: bool,
}

impl Settings {
    /// Settings from the process environment.
    pub fn from_env() -> Result<Settings> {
        Settings::from_vars(std::env::vars_os().filter_map(|(key, value)| {
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

    /// Settings from `RVM_*` variables; every other variable is ignored.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Settings> {
        let mut settings = Settings::default();
        let mut secret = None;
        let mut secret_file = None;
        for (key, value) in vars {
            let parsed = match key.as_str() {
                "RVM_FUEL" => parse_fuel(&value).map(|v| settings.limits.fuel = v),
                "RVM_MAX_MEMORY" => parse_memory(&value).map(|v| settings.limits.max_memory = v),
                "RVM_TIMEOUT" => parse_timeout(&value).map(|v| settings.limits.timeout = v),
                "RVM_MAX_INSTANCES" => {
                    parse_instances(&value).map(|v| settings.limits.max_instances = v)
                }
                "RVM_CLIENT_SECRET" => {
                    secret = Some(value.clone());
                    Ok(())
                }
                "RVM_CLIENT_SECRET_FILE" => {
                    secret_file = Some(PathBuf::from(&value));
                    Ok(())
                }
                "RVM_ALLOWED_OUTBOUND_HOSTS" => {
                    AllowList::parse(&value).map(|v| settings.outbound = v)
                }
                "RVM_FUEL_HEADERS" => parse_switch(&value).map(|v| settings.fuel_headers = v),
                _ => match key.strip_prefix(GUEST_ENV_PREFIX) {
                    Some("") => Err(format!("a name must follow {GUEST_ENV_PREFIX}")),
                    Some(name) => {
                        settings.guest_env.push((name.to_string(), value.clone()));
                        Ok(())
                    }
                    None => Ok(()),
                },
            };
            parsed.map_err(|why| anyhow::anyhow!("{key}={value:?} is not valid: {why}"))?;
        }
        settings.guest_env.sort();
        settings.client_secret = match (secret, secret_file) {
            (Some(_), Some(_)) => {
                bail!("set RVM_CLIENT_SECRET or RVM_CLIENT_SECRET_FILE, not both")
            }
            (Some(secret), None) => secret.into(),
            (None, Some(path)) => read_secret_file(&path)?.into(),
            (None, None) => "".into(),
        };
        Ok(settings)
    }
}

/// The secret held in `path`, without the line end that editors add.
pub fn read_secret_file(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("RVM_CLIENT_SECRET_FILE: cannot read {}", path.display()))?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

/// `RVM_FUEL`: a whole number; `0` means unlimited.
pub fn parse_fuel(value: &str) -> Result<Option<u64>, String> {
    let fuel: u64 = value
        .trim()
        .parse()
        .map_err(|_| "expected a whole number of fuel units (0 = unlimited)".to_string())?;
    Ok((fuel != 0).then_some(fuel))
}

/// `RVM_MAX_MEMORY`: bytes, with an optional unit (`B`, `KiB`, `MiB`, `GiB`, `KB`,
/// `MB`, `GB`), between one wasm page and 4 GiB.
pub fn parse_memory(value: &str) -> Result<u64, String> {
    let bytes = parse_bytes(value)?;
    if !(MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
        return Err("must be between 64KiB and 4GiB".to_string());
    }
    Ok(bytes)
}

fn parse_bytes(value: &str) -> Result<u64, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let unit_size = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => KIB,
        "MiB" | "M" => MIB,
        "GiB" | "G" => GIB,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err("expected a size such as 256MiB, 64KiB or 1GiB".to_string()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_size))
        .ok_or_else(|| "expected a size such as 256MiB, 64KiB or 1GiB".to_string())
}

/// `bytes` in the largest binary unit that divides it, as `parse_memory` reads it.
pub fn format_bytes(bytes: u64) -> String {
    [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")]
        .into_iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map(|(unit, name)| format!("{}{name}", bytes / unit))
        .unwrap_or_else(|| format!("{bytes}B"))
}

/// `RVM_TIMEOUT`: a positive duration such as `30s`, `250ms`, `2m`; a bare
/// number is seconds.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a positive duration such as 30s, 250ms or 2m";
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number.parse().map_err(|_| HINT.to_string())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(HINT.to_string()),
    };
    if duration.is_zero() {
        return Err(HINT.to_string());
    }
    Ok(duration)
}

/// `RVM_MAX_INSTANCES`: at least one.
pub fn parse_instances(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}

/// `RVM_FUEL_HEADERS`: `1`/`0` (also `true`/`false`, `on`/`off`).
pub fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" | "" => Ok(false),
        _ => Err("expected 1 or 0".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = Settings::from_vars(vars(&[("PATH", "/bin")])).unwrap();
        assert_eq!(settings.limits, Limits::default());
        assert_eq!(&*settings.client_secret, "");
        assert!(settings.guest_env.is_empty());
        assert!(!settings.fuel_headers);
    }

    #[test]
    fn every_variable_is_read() {
        let settings = Settings::from_vars(vars(&[
            ("RVM_FUEL", "0"),
            ("RVM_MAX_MEMORY", "64MiB"),
            ("RVM_TIMEOUT", "250ms"),
            ("RVM_MAX_INSTANCES", "8"),
            ("RVM_CLIENT_SECRET", "s3cr3t"),
            ("RVM_ALLOWED_OUTBOUND_HOSTS", "https://*.example.com"),
            ("RVM_ENV_GREETING", "hi"),
            ("RVM_FUEL_HEADERS", "1"),
            ("HOME", "/root"),
        ]))
        .unwrap();
        assert_eq!(settings.limits.fuel, None);
        assert_eq!(settings.limits.max_memory, 64 * MIB);
        assert_eq!(settings.limits.timeout, Duration::from_millis(250));
        assert_eq!(settings.limits.max_instances, 8);
        assert_eq!(&*settings.client_secret, "s3cr3t");
        assert_eq!(
            settings.guest_env,
            vec![("GREETING".to_string(), "hi".to_string())]
        );
        assert!(settings.fuel_headers);
        assert!(settings.outbound.allows("https", "api.example.com", 443));
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
            ("RVM_ALLOWED_OUTBOUND_HOSTS", "example.com"),
            ("RVM_ENV_", "x"),
        ] {
            let err = Settings::from_vars(vars(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains(value),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_memory("256MiB"), Ok(256 * MIB));
        assert_eq!(parse_memory("1GiB"), Ok(GIB));
        assert_eq!(parse_memory("65536"), Ok(64 * KIB));
        assert_eq!(parse_memory("100MB"), Ok(100_000_000));
        assert_eq!(format_bytes(256 * MIB), "256MiB");
        assert_eq!(format_bytes(1000), "1000B");
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn secret_comes_from_a_file_without_its_line_end() {
        let dir = std::env::temp_dir().join(format!("rvm-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let path = file.to_string_lossy().to_string();
        let settings = Settings::from_vars(vars(&[("RVM_CLIENT_SECRET_FILE", &path)])).unwrap();
        assert_eq!(&*settings.client_secret, "from-file");

        let both = vars(&[
            ("RVM_CLIENT_SECRET_FILE", &path),
            ("RVM_CLIENT_SECRET", "x"),
        ]);
        assert!(Settings::from_vars(both).is_err());
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = Settings::from_vars(vars(&[("RVM_CLIENT_SECRET_FILE", &path)]));
        assert!(missing.unwrap_err().to_string().contains(&path));
    }
}
