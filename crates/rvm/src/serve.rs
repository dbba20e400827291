//! `rvm serve`: one component on one listener, as `wasmtime serve` does, with the
//! limits and grants of the `RVM_*` settings (`rvm-config`); flags win over them.
//! Served by worker processes of one thread each, one per core by default (`workers`).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use rvm_config::Config;
use rvm_engine::{App, CodeCache, Embedding, Runtime};
use rvm_service::Handler;

use crate::flags::SettingsFlags;
use crate::listener::{self, Listener};
use crate::workers;

/// Where `rvm serve` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// What the component's compiled code is called in the workers' code cache:
/// the cache is made for this one component, so any name would do.
const CODE_KEY: &str = "component";

/// Serve a wasi:http component: one fresh instance per request.
#[derive(Args)]
pub struct ServeCommand {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Processes serving requests, one thread each [env: RVM_WORKERS]
    /// [default: the number of cores].
    #[arg(long, value_name = "N", env = "RVM_WORKERS", hide_env = true)]
    workers: Option<NonZeroUsize>,

    /// Serve the listening socket on stdin with the code compiled into this
    /// directory: how the workers are started.
    #[arg(long, value_name = "DIR", hide = true)]
    worker_code: Option<PathBuf>,

    #[command(flatten)]
    settings: SettingsFlags,

    /// The component to serve.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
}

impl ServeCommand {
    pub fn execute(self) -> Result<()> {
        if let Some(code) = &self.worker_code {
            let listener = workers::inherited_listener()?;
            let app = self.app(Some(code))?;
            return crate::block_on_one_thread(async move {
                listener::serve(vec![Listener::from_std(listener, app, "worker ready")?]).await
            });
        }
        let workers = self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)
        });
        if workers == NonZeroUsize::MIN {
            // Everything is validated, and the component compiled, before the
            // listener is bound: nothing is served half-configured.
            let app = self.app(None)?;
            return crate::block_on_one_thread(async {
                let listener = Listener::bind(self.listen, app, "serving").await?;
                listener::serve(vec![listener]).await
            });
        }
        // Compiled here once, into a directory the workers load it from.
        let code = workers::CodeDir::new()?;
        self.app(Some(code.path()))?;
        crate::block_on_one_thread(workers::supervise(self.listen, workers, code))
    }

    /// The component under the settings, as a handler; its compiled code taken
    /// from (or kept in) the cache in `code`.
    fn app(&self, code: Option<&Path>) -> Result<Handler> {
        let Config { pool, policy } = self.settings.config()?;
        let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving)?);
        let name = self.component.file_stem().map_or_else(
            || "component".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let app = match code {
            None => App::load(runtime, &name, &self.component, policy)?,
            Some(code) => {
                let cache = CodeCache::open(code)?;
                let load = || -> Result<App> {
                    let binary = std::fs::read(&self.component).context("cannot read the file")?;
                    let cached =
                        App::from_binary_cached(runtime, &name, &binary, CODE_KEY, policy, &cache);
                    Ok(cached?.0)
                };
                load().with_context(|| {
                    format!("cannot load component {}", self.component.display())
                })?
            }
        };
        Ok(Handler::App(Arc::new(app)))
    }
}
