//! Where components live, shared by every node: a directory, Redis or S3,
//! through OpenDAL, chosen by URI.
//!
//! - `components/{hash}.wasm`: a component's bytes, by content (blake3);
//! - `names/{name}.json`: the [`Record`] a name points to;
//! - `generation`: rewritten by every deploy and delete, so that a node
//!   notices a change with one small read, however many components there are;
//! - `{name}.wasm` at the top: RVM's own layout, served as it is (default
//!   settings) where the store can be listed and no record has that name.
//!
//! A deploy writes the bytes before the record, and each in one write (files
//! go to a temporary name, then are renamed), so a crash or a lost connection
//! leaves the old version live and the store consistent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use opendal::layers::TimeoutLayer;
use opendal::{ErrorKind, Operator, services};

use crate::name::Name;
use crate::record::{self, Record};

/// The directory store's default, as RVM's.
pub const DEFAULT_STORE: &str = "./module-store";
/// Where the store's own keys start under a Redis database.
const REDIS_ROOT: &str = "/rvm/";
/// Files being written in a directory store, renamed into place when whole.
const PARTIAL_DIR: &str = ".partial";
/// How long one store operation may take: past it the store counts as down,
/// rather than a pass over it, or a deploy, waiting for good.
const STORE_TIMEOUT: Duration = Duration::from_secs(5);

const GENERATION: &str = "generation";
const NAMES: &str = "names/";
const COMPONENTS: &str = "components/";
const COMPONENT_EXTENSION: &str = ".wasm";
const RECORD_EXTENSION: &str = ".json";

pub struct Store {
    op: Operator,
    /// How names are listed: OpenDAL's Redis service cannot.
    listing: Listing,
    /// The store as logs name it (no credentials).
    shown: String,
}

enum Listing {
    OpenDal,
    Redis {
        client: Box<redis::Client>,
        prefix: String,
    },
}

/// A record read from the store, and where its bytes are.
#[derive(Clone, Debug)]
pub struct Stored {
    pub record: Record,
    /// RVM's layout: the bytes are `{name}.wasm` at the top.
    legacy: bool,
}

impl Store {
    /// The store `uri` names: a path or `fs://path`, `redis://host:port/db`, or
    /// `s3://bucket/prefix` (region, endpoint and credentials from the
    /// standard AWS variables).
    pub fn open(uri: &str) -> Result<Store> {
        let (op, listing) = match uri.split_once("://") {
            Some(("redis", rest)) => redis(uri, rest)?,
            Some(("s3", rest)) => (s3(rest)?, Listing::OpenDal),
            Some(("fs", path)) => (fs(path)?, Listing::OpenDal),
            Some((scheme, _)) => {
                bail!("store {uri}: unknown scheme {scheme}:// (a directory, redis:// or s3://)")
            }
            None => (fs(uri)?, Listing::OpenDal),
        };
        let timeout = TimeoutLayer::new()
            .with_timeout(STORE_TIMEOUT)
            .with_io_timeout(STORE_TIMEOUT);
        Ok(Store {
            op: op.layer(timeout),
            listing,
            shown: shown(uri),
        })
    }

    /// The store as logs name it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// What the generation marker says now; empty if nothing was ever written.
    pub async fn generation(&self) -> Result<String> {
        match self.op.read(GENERATION).await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes.to_bytes()).into_owned()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(e).context("reading the generation marker"),
        }
    }

    /// Every record, RVM's layout included. One that cannot be read or
    /// parsed is logged and skipped.
    pub async fn records(&self) -> Result<Vec<Stored>> {
        let mut stored = Vec::new();
        for path in self.list(NAMES).await? {
            let Some(name) = path
                .strip_prefix(NAMES)
                .and_then(|file| file.strip_suffix(RECORD_EXTENSION))
            else {
                continue;
            };
            match self.read_record(&path).await {
                Ok(record) if record.name.as_str() == name => stored.push(Stored {
                    record,
                    legacy: false,
                }),
                Ok(record) => tracing::error!(
                    store = %self.shown, %path, "skipped: the record names {}", record.name
                ),
                Err(error) => {
                    tracing::error!(store = %self.shown, %path, "skipped: {error:#}")
                }
            }
        }
        for (name, record) in self.legacy_records().await? {
            if !stored.iter().any(|s| s.record.name == name) {
                stored.push(Stored {
                    record,
                    legacy: true,
                });
            }
        }
        Ok(stored)
    }

    /// The record `name` points to, if any.
    pub async fn record(&self, name: &Name) -> Result<Option<Stored>> {
        let path = record_path(name);
        match self.op.stat(&path).await {
            Ok(_) => Ok(Some(Stored {
                record: self.read_record(&path).await?,
                legacy: false,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Ok(self.legacy_record(name).await?.map(|record| Stored {
                    record,
                    legacy: true,
                }))
            }
            Err(e) => Err(e).with_context(|| format!("reading {path}")),
        }
    }

    /// The component's bytes, checked against its record's hash.
    pub async fn bytes(&self, stored: &Stored) -> Result<Bytes> {
        let record = &stored.record;
        let path = if stored.legacy {
            legacy_path(&record.name)
        } else {
            component_path(&record.hash)
        };
        let bytes = self
            .op
            .read(&path)
            .await
            .with_context(|| format!("reading {path}"))?
            .to_bytes();
        if record::hash(&bytes) != record.hash {
            bail!(
                "{path} does not hold the bytes its record names (hash {})",
                record.hash
            );
        }
        Ok(bytes)
    }

    /// Stores `bytes` under `record`: the bytes, then the record, then a new
    /// generation. Returns the record it replaced, if any.
    pub async fn deploy(&self, record: &Record, bytes: Bytes) -> Result<Option<Stored>> {
        let previous = self.record(&record.name).await?;
        let blob = component_path(&record.hash);
        self.op
            .write(&blob, bytes.clone())
            .await
            .with_context(|| format!("writing {blob}"))?;
        let json = serde_json::to_vec(record).context("encoding the record")?;
        let path = record_path(&record.name);
        self.op
            .write(&path, json)
            .await
            .with_context(|| format!("writing {path}"))?;
        // A node collecting the previous bytes of another name may have taken
        // these for unused a moment ago: they must be there now.
        if !self.op.exists(&blob).await.unwrap_or(true) {
            self.op
                .write(&blob, bytes)
                .await
                .with_context(|| format!("writing {blob} again"))?;
        }
        self.bump().await?;
        Ok(previous)
    }

    /// Removes `name`'s record (and its RVM-layout file); the record removed,
    /// if there was one.
    pub async fn delete(&self, name: &Name) -> Result<Option<Stored>> {
        let Some(stored) = self.record(name).await? else {
            return Ok(None);
        };
        for path in [record_path(name), legacy_path(name)] {
            self.op
                .delete(&path)
                .await
                .with_context(|| format!("deleting {path}"))?;
        }
        self.bump().await?;
        Ok(Some(stored))
    }

    /// Removes the bytes of `hash` if no record points to them any more.
    pub async fn collect(&self, hash: &str) -> Result<bool> {
        let records = self.records().await?;
        if records.iter().any(|s| !s.legacy && s.record.hash == hash) {
            return Ok(false);
        }
        let path = component_path(hash);
        self.op
            .delete(&path)
            .await
            .with_context(|| format!("deleting {path}"))?;
        Ok(true)
    }

    /// Tells every node that something changed.
    async fn bump(&self) -> Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let marker = format!("{now}-{}-{}", std::process::id(), rand_suffix());
        self.op
            .write(GENERATION, marker)
            .await
            .context("writing the generation marker")?;
        Ok(())
    }

    async fn read_record(&self, path: &str) -> Result<Record> {
        let bytes = self
            .op
            .read(path)
            .await
            .with_context(|| format!("reading {path}"))?
            .to_bytes();
        serde_json::from_slice(&bytes).with_context(|| format!("{path} is not a record"))
    }

    /// The paths of the files directly under `dir`.
    async fn list(&self, dir: &str) -> Result<Vec<String>> {
        match &self.listing {
            Listing::OpenDal => match self.op.list(dir).await {
                Ok(entries) => Ok(entries
                    .into_iter()
                    .filter(|entry| entry.metadata().is_file())
                    .map(|entry| entry.path().to_string())
                    .collect()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e).with_context(|| format!("listing {dir}")),
            },
            Listing::Redis { client, prefix } => {
                let scan = async {
                    let mut connection = client
                        .get_multiplexed_async_connection()
                        .await
                        .context("connecting to Redis")?;
                    let pattern = format!("{prefix}{dir}*");
                    let mut keys: redis::AsyncIter<String> =
                        redis::AsyncCommands::scan_match(&mut connection, &pattern)
                            .await
                            .context("listing keys")?;
                    let mut paths = Vec::new();
                    while let Some(key) = keys.next_item().await {
                        let key = key.context("listing keys")?;
                        if let Some(path) = key.strip_prefix(prefix.as_str()) {
                            paths.push(path.to_string());
                        }
                    }
                    Ok(paths)
                };
                tokio::time::timeout(STORE_TIMEOUT, scan)
                    .await
                    .with_context(|| format!("listing {dir}: no answer within {STORE_TIMEOUT:?}"))?
            }
        }
    }

    /// RVM's layout: `{name}.wasm` files at the top, where the store lists.
    async fn legacy_records(&self) -> Result<Vec<(Name, Record)>> {
        if !matches!(self.listing, Listing::OpenDal) {
            return Ok(Vec::new());
        }
        let mut records = Vec::new();
        for path in self.list("").await? {
            let Some(stem) = path.strip_suffix(COMPONENT_EXTENSION) else {
                continue;
            };
            let Ok(name) = Name::parse(stem) else {
                tracing::warn!(store = %self.shown, %path, "skipped: not a component name");
                continue;
            };
            match self.legacy_record(&name).await {
                Ok(Some(record)) => records.push((name, record)),
                Ok(None) => {}
                Err(error) => tracing::error!(store = %self.shown, %path, "skipped: {error:#}"),
            }
        }
        Ok(records)
    }

    async fn legacy_record(&self, name: &Name) -> Result<Option<Record>> {
        let path = legacy_path(name);
        let bytes = match self.op.read(&path).await {
            Ok(bytes) => bytes.to_bytes(),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {path}")),
        };
        let modified = self
            .op
            .stat(&path)
            .await
            .ok()
            .and_then(|meta| meta.last_modified())
            .map_or(UNIX_EPOCH, SystemTime::from);
        let mut record = Record::new(name.clone(), &bytes, Default::default());
        record.deployed_at = record::timestamp(modified);
        Ok(Some(record))
    }
}

fn component_path(hash: &str) -> String {
    format!("{COMPONENTS}{hash}{COMPONENT_EXTENSION}")
}

fn record_path(name: &Name) -> String {
    format!("{NAMES}{name}{RECORD_EXTENSION}")
}

fn legacy_path(name: &Name) -> String {
    format!("{name}{COMPONENT_EXTENSION}")
}

/// A number that two writers at the same nanosecond do not share.
fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}

fn fs(path: &str) -> Result<Operator> {
    std::fs::create_dir_all(path).with_context(|| format!("store {path}: cannot make it"))?;
    let root = std::fs::canonicalize(path).with_context(|| format!("store {path}"))?;
    let root = root
        .to_str()
        .with_context(|| format!("store {path}: not UTF-8"))?;
    let builder = services::Fs::default()
        .root(root)
        .atomic_write_dir(&format!("{root}/{PARTIAL_DIR}"));
    Operator::new(builder).with_context(|| format!("store {path}"))
}

fn redis(uri: &str, rest: &str) -> Result<(Operator, Listing)> {
    let bad = |why: &str| {
        anyhow!(
            "store {}: {why} (expected redis://host:port/db)",
            shown(uri)
        )
    };
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let db: i64 = match db {
        "" => 0,
        db => db
            .parse()
            .map_err(|_| bad("the database must be a number"))?,
    };
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let mut builder = services::Redis::default()
        .endpoint(&format!("redis://{host}"))
        .db(db)
        .root(REDIS_ROOT);
    let mut client_uri = format!("redis://{host}/{db}");
    if let Some(credentials) = credentials {
        let (user, password) = credentials.split_once(':').unwrap_or(("", credentials));
        if !user.is_empty() {
            builder = builder.username(user);
        }
        builder = builder.password(password);
        client_uri = format!("redis://{credentials}@{host}/{db}");
    }
    let op = Operator::new(builder).with_context(|| format!("store {}", shown(uri)))?;
    let client = redis::Client::open(client_uri).map_err(|e| bad(&e.to_string()))?;
    let prefix = REDIS_ROOT.trim_start_matches('/').to_string();
    Ok((
        op,
        Listing::Redis {
            client: Box::new(client),
            prefix,
        },
    ))
}

fn s3(rest: &str) -> Result<Operator> {
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        bail!("store s3://{rest}: no bucket (expected s3://bucket/prefix)");
    }
    // OpenDAL's HTTP client, whose TLS uses ring (the process may have chosen
    // it already): both are process-wide, and the first installed stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    opendal_http_transport_reqwest::install_default();
    let mut builder = services::S3::default()
        .bucket(bucket)
        .root(&format!("/{prefix}"));
    if let Some(region) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
        builder = builder.region(&region);
    }
    if let Some(endpoint) = env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")) {
        builder = builder.endpoint(&endpoint);
    }
    Operator::new(builder).with_context(|| format!("store s3://{rest}"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// `uri` without the credentials it may hold.
fn shown(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => uri.to_string(),
    }
}
