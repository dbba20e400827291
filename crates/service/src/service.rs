//! The components one process serves, kept in step with the store: loaded at
//! start, reloaded when the store's generation changes, replaced at once by a
//! deploy made here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use rvm_engine::{App, CodeCache, Compiled, Policy, Runtime};
use tokio::sync::Mutex;

use crate::name::Name;
use crate::record::Record;
use crate::settings::ComponentSettings;
use crate::store::{Store, Stored};

/// A component being served, and the record it was loaded from.
pub struct Deployed {
    pub app: App,
    pub record: Record,
}

/// Why a deploy was refused.
#[derive(Debug)]
pub enum DeployError {
    /// The component or its settings: nothing was stored.
    Invalid(String),
    /// The store failed: the old version, if any, stays live.
    Store(anyhow::Error),
}

pub struct Service {
    runtime: Arc<Runtime>,
    store: Store,
    /// The server's settings, which a component's own settings override.
    defaults: Policy,
    cache: Option<CodeCache>,
    live: RwLock<HashMap<Name, Arc<Deployed>>>,
    /// The store's generation last applied. Held by a pass over the store and
    /// by a deploy's store writes, so that a pass never undoes a deploy with
    /// what it read before it.
    applied: Mutex<Option<String>>,
    /// The store failed at the last look: said once until it answers again.
    store_down: AtomicBool,
}

impl Service {
    /// A service of what `store` holds, empty until [`Service::sync`].
    pub fn new(
        runtime: Arc<Runtime>,
        store: Store,
        defaults: Policy,
        cache: Option<CodeCache>,
    ) -> Service {
        Service {
            runtime,
            store,
            defaults,
            cache,
            live: RwLock::default(),
            applied: Mutex::new(None),
            store_down: AtomicBool::new(false),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The component served as `name` now.
    pub fn get(&self, name: &str) -> Option<Arc<Deployed>> {
        let name = Name::parse(name).ok()?;
        self.live().get(&name).cloned()
    }

    /// Names served now.
    pub fn names(&self) -> Vec<Name> {
        let mut names: Vec<Name> = self.live().keys().cloned().collect();
        names.sort();
        names
    }

    /// Applies what the store holds if its generation changed since the last
    /// pass: new and changed components are loaded (a corrupt or invalid one
    /// is logged and skipped, the old version staying live), removed ones stop
    /// being served.
    pub async fn sync(&self) -> Result<()> {
        let mut applied = self.applied.lock().await;
        let generation = self.store.generation().await?;
        if applied.as_deref() == Some(generation.as_str()) {
            return Ok(());
        }
        let stored = self.store.records().await?;
        let gone: Vec<Name> = self
            .live()
            .keys()
            .filter(|name| !stored.iter().any(|s| &s.record.name == *name))
            .cloned()
            .collect();
        for name in gone {
            self.live_mut().remove(&name);
            tracing::info!(component = %name, "component removed");
        }
        let mut complete = true;
        for stored in stored {
            let current = self.get(stored.record.name.as_str());
            if current.is_some_and(|c| c.record == stored.record) {
                continue;
            }
            match self.load(&stored).await {
                Ok(deployed) => {
                    self.live_mut()
                        .insert(stored.record.name.clone(), Arc::new(deployed));
                }
                Err(LoadError::Store(error)) => {
                    complete = false;
                    tracing::error!(component = %stored.record.name, "cannot read it from the store, will try again: {error:#}");
                }
                Err(LoadError::Invalid(error)) => {
                    let error = one_line(&format!("{error:#}"));
                    tracing::error!(component = %stored.record.name, "skipped: {error}");
                }
            }
        }
        // Bytes the store could not give are asked for again at the next pass.
        if complete {
            *applied = Some(generation);
        }
        Ok(())
    }

    /// Passes over the store every `every`, for good. While the store fails,
    /// what was loaded stays served, and the log says so once.
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.sync().await {
                Ok(()) => {
                    if self.store_down.swap(false, Ordering::Relaxed) {
                        tracing::warn!(store = %self.store.shown(), "the store answers again");
                    }
                }
                Err(error) => {
                    if !self.store_down.swap(true, Ordering::Relaxed) {
                        tracing::error!(
                            store = %self.store.shown(), served = self.live().len(),
                            "the store does not answer; serving what is loaded until it does: {error:#}"
                        );
                    }
                }
            }
        }
    }

    /// Compiles `bytes` as `name` with `settings` (nothing is stored if that
    /// fails), stores them, and serves them here at once. Returns the record
    /// stored, and the hash of the bytes it replaced, if no record points to
    /// them any more (see [`Service::collect`]).
    pub async fn deploy(
        &self,
        name: Name,
        bytes: Bytes,
        settings: ComponentSettings,
    ) -> Result<(Record, Option<String>), DeployError> {
        let record = Record::new(name, &bytes, settings);
        let started = Instant::now();
        let (app, compiled) = self
            .compile(&record, bytes.clone())
            .await
            .map_err(|e| DeployError::Invalid(one_line(&format!("{e:#}"))))?;
        let _pass = self.applied.lock().await;
        let previous = self
            .store
            .deploy(&record, bytes)
            .await
            .map_err(DeployError::Store)?;
        log_loaded(&record, compiled, started);
        self.live_mut().insert(
            record.name.clone(),
            Arc::new(Deployed {
                app,
                record: record.clone(),
            }),
        );
        let replaced = previous
            .map(|stored| stored.record.hash)
            .filter(|hash| *hash != record.hash);
        Ok((record, replaced))
    }

    /// Removes `name` from the store and stops serving it here; the record
    /// removed, if there was one.
    pub async fn delete(&self, name: &Name) -> Result<Option<Record>> {
        let _pass = self.applied.lock().await;
        let removed = self.store.delete(name).await?;
        if self.live_mut().remove(name).is_some() {
            tracing::info!(component = %name, "component removed");
        }
        Ok(removed.map(|stored| stored.record))
    }

    /// Removes the bytes of `hash` from the store unless a record points to them.
    pub async fn collect(&self, hash: &str) {
        match self.store.collect(hash).await {
            Ok(true) => tracing::info!(%hash, "unused component bytes removed from the store"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%hash, "cannot remove unused component bytes: {error:#}"),
        }
    }

    /// Every record in the store.
    pub async fn records(&self) -> Result<Vec<Record>> {
        let mut records: Vec<Record> = self
            .store
            .records()
            .await?
            .into_iter()
            .map(|stored| stored.record)
            .collect();
        records.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(records)
    }

    /// The record `name` points to in the store.
    pub async fn record(&self, name: &Name) -> Result<Option<Record>> {
        Ok(self.store.record(name).await?.map(|stored| stored.record))
    }

    async fn load(&self, stored: &Stored) -> Result<Deployed, LoadError> {
        let started = Instant::now();
        let bytes = self.store.bytes(stored).await.map_err(LoadError::Store)?;
        let (app, compiled) = self
            .compile(&stored.record, bytes)
            .await
            .map_err(LoadError::Invalid)?;
        log_loaded(&stored.record, compiled, started);
        Ok(Deployed {
            app,
            record: stored.record.clone(),
        })
    }

    /// The record's component under its policy, compiled on a thread of its
    /// own (requests go on being served meanwhile) or loaded from the cache.
    async fn compile(&self, record: &Record, bytes: Bytes) -> Result<(App, Compiled)> {
        let policy = record
            .settings
            .policy(&self.defaults)
            .map_err(anyhow::Error::msg)?;
        let runtime = Arc::clone(&self.runtime);
        let cache = self.cache.clone();
        let (name, hash) = (record.name.to_string(), record.hash.clone());
        tokio::task::spawn_blocking(move || -> Result<(App, Compiled)> {
            Ok(match &cache {
                Some(cache) => {
                    App::from_binary_cached(runtime, &name, &bytes, &hash, policy, cache)?
                }
                None => (
                    App::from_binary(runtime, &name, &bytes, policy)?,
                    Compiled::Now,
                ),
            })
        })
        .await
        .context("the compiling thread failed")?
    }

    fn live(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Name, Arc<Deployed>>> {
        // Only whole inserts and removals happen under the lock.
        self.live
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Name, Arc<Deployed>>> {
        self.live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

enum LoadError {
    Store(anyhow::Error),
    Invalid(anyhow::Error),
}

/// `text` with every run of white space made one space: wasm parsers' errors
/// span lines, and an answer or a log line does not.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn log_loaded(record: &Record, compiled: Compiled, started: Instant) {
    let code = match compiled {
        Compiled::Now => "compiled",
        Compiled::FromCache => "from cache",
    };
    tracing::info!(
        component = %record.name, hash = %record.hash, size = record.size, code,
        ms = started.elapsed().as_millis() as u64, "component loaded"
    );
}
