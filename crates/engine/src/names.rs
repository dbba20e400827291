//! How the engine's messages show settings: by the names the front end gives
//! them, and sizes in the units operators write them in.

use std::fmt;

/// How a front end names a setting to its operator (a variable, a flag, a
/// deploy parameter). A log line says what happened in the engine's words; the
/// name of the setting involved, when there is one, follows in parentheses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SettingNames {
    pub fuel: &'static str,
    pub memory: &'static str,
    pub timeout: &'static str,
    pub outbound: &'static str,
    pub args_size: &'static str,
}

/// `name` in parentheses after a space, or nothing when there is none.
pub(crate) struct NamedAs(pub &'static str);

impl fmt::Display for NamedAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", self.0)
        }
    }
}

/// `bytes` in the largest binary unit that divides it (`256MiB`, `64KiB`).
pub(crate) struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        match [(30, "GiB"), (20, "MiB"), (10, "KiB")]
            .into_iter()
            .find(|&(shift, _)| bytes >= 1 << shift && bytes.is_multiple_of(1 << shift))
        {
            Some((shift, unit)) => write!(f, "{}{unit}", bytes >> shift),
            None => write!(f, "{bytes}B"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_the_largest_unit_that_divides_them() {
        assert_eq!(ByteSize(256 << 20).to_string(), "256MiB");
        assert_eq!(ByteSize(64 << 10).to_string(), "64KiB");
        assert_eq!(ByteSize(4 << 30).to_string(), "4GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize((1 << 20) + (1 << 10)).to_string(), "1025KiB");
    }
}
