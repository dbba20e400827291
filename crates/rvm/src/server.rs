//! `rvm server`: the RVM service. Components are deployed on the admin
//! listener into a store that several machines may share, and invoked by name
//! on the invoke listener; every node picks up the others' deploys from the
//! store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use rvm_config::{Config, ServiceConfig};
use rvm_engine::{CodeCache, Embedding, Runtime};
use rvm_service::{Admin, DEFAULT_STORE, Handler, Service, Store};

use crate::flags::SettingsFlags;
use crate::listener::{self, Listener};

/// Serve the components of a store by name, and deploy them over HTTP.
#[derive(Args)]
pub struct ServerCommand {
    /// Address of the invoke listener: `/{name}/{path}` runs component `name`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,

    /// Address of the admin listener: deploy, list and delete components.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8002")]
    admin: SocketAddr,

    #[command(flatten)]
    store: StoreFlags,

    #[command(flatten)]
    settings: SettingsFlags,
}

/// Where components live, and where this machine keeps their compiled code.
#[derive(Args)]
pub struct StoreFlags {
    /// The store: a directory, fs://DIR, redis://HOST:PORT/DB or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URI", env = "RVM_STORE", default_value = DEFAULT_STORE)]
    store: String,

    /// Where compiled code is kept, writable by this user only [env: RVM_CACHE_DIR]
    /// [default: ~/.cache/rvm].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

impl StoreFlags {
    /// The store, the code cache, and the runtime and service over them, with
    /// the server's `settings` as the components' defaults.
    pub fn service(&self, settings: &SettingsFlags, config: &ServiceConfig) -> Result<Service> {
        let Config { pool, policy } = settings.config()?;
        let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving)?);
        let store = Store::open(&self.store)?;
        let cache = self
            .cache_dir
            .as_ref()
            .or(config.cache_dir.as_ref())
            .map(|dir| CodeCache::open(dir))
            .transpose()?;
        Ok(Service::new(runtime, store, policy, cache))
    }
}

impl ServerCommand {
    pub fn execute(self) -> Result<()> {
        let config = ServiceConfig::from_env()?;
        if config.admin_token.is_none() && !self.admin.ip().is_loopback() {
            bail!(
                "the admin listener {} is not on a loopback address: set RVM_ADMIN_TOKEN, \
                 so that only those holding it may deploy",
                self.admin
            );
        }
        let service = Arc::new(self.store.service(&self.settings, &config)?);
        crate::block_on(async move {
            service
                .sync()
                .await
                .with_context(|| format!("cannot read the store {}", service.store().shown()))?;
            tracing::info!(
                store = %service.store().shown(), components = service.names().len(),
                "store loaded"
            );
            tokio::spawn(Arc::clone(&service).watch(config.poll));
            let admin = Admin::new(
                Arc::clone(&service),
                config.admin_token.clone(),
                config.max_component_size,
            );
            let listeners = vec![
                Listener::bind(self.listen, Handler::Invoke(service), "invoking components")
                    .await?,
                Listener::bind(self.admin, Handler::Admin(Arc::new(admin)), "admin API").await?,
            ];
            listener::serve(listeners).await
        })
    }
}
