//! Compiled code kept on local disk, so that a restart, or another process on
//! the same machine, loads a component's machine code instead of compiling it
//! again.
//!
//! Machine code is trusted only from a directory that only this process's user
//! can write, and only from files this engine wrote there. An entry is named
//! by the component's hash and by the engine's configuration and version, so
//! that another build or configuration never reads it; one that fails to load
//! is compiled again. A lock per entry makes the processes of one machine that
//! want the same component at once compile it once.

use std::fs::{self, DirBuilder, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use wasmtime::Result;
use wasmtime::component::Component;
use wasmtime::error::Context as _;

use crate::runtime::Runtime;

/// A local directory of compiled components.
#[derive(Clone, Debug)]
pub struct CodeCache {
    dir: PathBuf,
}

/// Where an application's machine code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compiled {
    /// Compiled now (and kept in the cache, if there is one).
    Now,
    /// Loaded from the cache.
    FromCache,
}

impl CodeCache {
    /// The cache in `dir`, made (mode 0700) if missing. Refused unless this
    /// process's user owns it and nobody else may write into it.
    pub fn open(dir: &Path) -> Result<CodeCache> {
        let refuse =
            |why: String| wasmtime::format_err!("compiled code cache {}: {why}", dir.display());
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| refuse(format!("cannot make it: {e}")))?;
        let meta = fs::metadata(dir).map_err(|e| refuse(e.to_string()))?;
        if !meta.is_dir() {
            return Err(refuse("not a directory".into()));
        }
        if meta.uid() != user(dir).map_err(|e| refuse(format!("cannot write into it: {e}")))? {
            return Err(refuse(format!(
                "it belongs to user {}, not to this process's user",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(refuse(format!(
                "others may write into it (mode {:o}); make it 0700",
                meta.mode() & 0o777
            )));
        }
        Ok(CodeCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The component whose content hash is `key`: loaded from the cache, or
    /// made by `compile` and kept.
    pub(crate) fn component(
        &self,
        runtime: &Runtime,
        key: &str,
        compile: impl FnOnce() -> Result<Component>,
    ) -> Result<(Component, Compiled)> {
        let entry = self.entry(runtime, key);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(entry.with_extension("lock"))
            .with_context(|| format!("cannot open {}", entry.display()))?;
        // Held until the entry is written: another process wanting the same
        // component waits, then loads it.
        lock.lock()
            .with_context(|| format!("cannot lock {}", entry.display()))?;
        if entry.exists() {
            match load(runtime, &entry) {
                Ok(component) => return Ok((component, Compiled::FromCache)),
                Err(error) => tracing::warn!(
                    entry = %entry.display(), "compiled code in the cache does not load, compiling again: {error:#}"
                ),
            }
        }
        let component = compile()?;
        if let Err(error) = keep(&component, &entry) {
            tracing::warn!(entry = %entry.display(), "cannot keep compiled code: {error:#}");
        }
        Ok((component, Compiled::Now))
    }

    /// The component whose content hash is `key`, which must be in the cache:
    /// for a process that serves what another compiled, and nothing else.
    pub(crate) fn cached(&self, runtime: &Runtime, key: &str) -> Result<Component> {
        let entry = self.entry(runtime, key);
        load(runtime, &entry).with_context(|| format!("cannot load {}", entry.display()))
    }

    fn entry(&self, runtime: &Runtime, key: &str) -> PathBuf {
        self.dir
            .join(format!("{key}-{:016x}.cwasm", engine_id(runtime)))
    }
}

fn load(runtime: &Runtime, entry: &Path) -> Result<Component> {
    // SAFETY: the file is in a directory only this user can write (checked in
    // `CodeCache::open`), and only `keep` writes there: it is what
    // `Component::serialize` made for an engine of the same configuration and
    // version (the entry's name says so).
    unsafe { Component::deserialize_file(runtime.engine(), entry) }
}

/// Writes the component's machine code to `entry` whole or not at all.
fn keep(component: &Component, entry: &Path) -> Result<()> {
    let bytes = component.serialize()?;
    let partial = entry.with_extension(format!("partial-{}", std::process::id()));
    let mut file = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&partial, entry)?;
    Ok(())
}

/// This process's user, as the owner of a file it makes in `dir`.
fn user(dir: &Path) -> std::io::Result<u32> {
    let probe = dir.join(format!(".owner-{}", std::process::id()));
    let owner = File::create(&probe)
        .and_then(|file| file.metadata())
        .map(|m| m.uid());
    let _ = fs::remove_file(&probe);
    owner
}

/// What tells this engine's compiled code from another's: wasmtime's version
/// and every setting that changes the code.
fn engine_id(runtime: &Runtime) -> u64 {
    let mut hasher = DefaultHasher::new();
    runtime
        .engine()
        .precompile_compatibility_hash()
        .hash(&mut hasher);
    hasher.finish()
}
