//! A component's name, as it appears in paths and in the store.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest name.
const MAX_LENGTH: usize = 64;

/// 1 to 64 of `[a-z0-9_-]`, starting with a letter or a digit: safe in a URL
/// path, a file name and a store key as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    pub fn parse(name: &str) -> Result<Name, String> {
        let valid = (1..=MAX_LENGTH).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(Name(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a component name: 1 to {MAX_LENGTH} of a-z, 0-9, _ and -, \
                 starting with a letter or a digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(name: String) -> Result<Name, String> {
        Name::parse(&name)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lower_case_words() {
        for good in ["app", "a", "0day", "my_app-2", &"x".repeat(64)] {
            assert!(Name::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "..",
            ".",
            "-app",
            "_app",
            "App",
            "a/b",
            "%2e",
            "a.wasm",
            "a b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
    }
}
