//! The syntax of each setting's value, shared by the variables and the flags:
//! a malformed value is an error saying what was expected, never a default.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
/// One wasm page: no memory limit can be smaller.
const MIN_MEMORY: u64 = 64 * KIB;
/// A 32-bit linear memory cannot be larger.
const MAX_MEMORY: u64 = 4 * GIB;

/// The secret held in `path`, without the line end that editors add; errors
/// name the file and the setting (`named`) that gave it.
pub fn read_secret_file(path: &Path, named: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{named}: cannot read {}", path.display()))?;
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

/// A size of at least one byte, with an optional unit, as `parse_memory` reads it.
pub fn parse_size(value: &str) -> Result<u64, String> {
    match parse_bytes(value)? {
        0 => Err("must be at least one byte".to_string()),
        bytes => Ok(bytes),
    }
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

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_memory("256MiB"), Ok(256 * MIB));
        assert_eq!(parse_memory("1GiB"), Ok(GIB));
        assert_eq!(parse_memory("65536"), Ok(64 * KIB));
        assert_eq!(parse_memory("100MB"), Ok(100_000_000));
        assert!(parse_memory("1KiB").is_err());
        assert!(parse_memory("5GiB").is_err());
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_timeout("0s").is_err());
    }
}
