//! What a name points to in the store.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::name::Name;
use crate::settings::ComponentSettings;

/// A deployed component: its name, the hash of its bytes, and how it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: Name,
    /// blake3 of the component's bytes, in hex.
    pub hash: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was deployed (RFC 3339, UTC).
    pub deployed_at: String,
    #[serde(default)]
    pub settings: ComponentSettings,
}

impl Record {
    /// The record of `bytes` deployed now as `name`.
    pub fn new(name: Name, bytes: &[u8], settings: ComponentSettings) -> Record {
        Record {
            name,
            hash: hash(bytes),
            size: bytes.len() as u64,
            deployed_at: timestamp(SystemTime::now()),
            settings,
        }
    }

    /// The record as a listing shows it: the secret, if any, redacted.
    pub fn listed(&self) -> Record {
        Record {
            settings: self.settings.redacted(),
            ..self.clone()
        }
    }
}

/// A component's content hash, as RVM answers it.
pub fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// `time` as RFC 3339, to the second, in UTC.
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}
