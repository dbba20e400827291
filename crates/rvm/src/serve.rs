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
use rvm_engine::{App, CodeCache, Embedding, Policy, Runtime};
use rvm_service::Handler;

use crate::flags::SettingsFlags;
use crate::listener::{self, Listener};
use crate::workers;

/// Where `rvm serve` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// What the component's compiled code is called in the workers' code cache:
/// the cache is made fresh for this one component, so any name would do.
const CODE_KEY: &str = "component";

/// Serve a wasi:http component: one fresh instance per request.
#[derive(Args)]
pub struct ServeCommand {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Processes serving requests, one thread each [env: RVM_WORKERS]
    /// [default: the number of cores].
    #[arg(long, value_name = "N", env = "RVM_WORKERS", hide_env = true, value_parser = parse_workers)]
    workers: Option<NonZeroUsize>,

    /// Serve the listening socket on stdin with the code compiled into this
    /// directory: how the workers are started.
    #[arg(long, value_name = "DIR", hide = true, requires = "worker_of")]
    worker_code: Option<PathBuf>,

    /// The supervisor a worker serves for, by pid.
    #[arg(long, value_name = "PID", hide = true, requires = "worker_code")]
    worker_of: Option<u32>,

    #[command(flatten)]
    settings: SettingsFlags,

    /// The component to serve.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
}

impl ServeCommand {
    pub fn execute(self) -> Result<()> {
        if let (Some(code), Some(supervisor)) = (&self.worker_code, self.worker_of) {
            return self.work(code, supervisor);
        }
        let workers = self
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN));
        // Everything is validated, and the component compiled, before the
        // listener is bound: nothing is served half-configured.
        if workers == NonZeroUsize::MIN {
            let app = self.load(|runtime, name, policy| {
                Ok(App::from_binary(runtime, name, &self.binary()?, policy)?)
            })?;
            return crate::block_on_one_thread(async {
                let listener = Listener::bind(self.listen, app, "serving").await?;
                listener::serve(vec![listener]).await
            });
        }
        // Compiled here once, into a directory the workers load it from.
        let code = workers::CodeDir::new()?;
        self.load(|runtime, name, policy| {
            let cache = CodeCache::open(code.path())?;
            let binary = self.binary()?;
            let kept = policy.clone();
            App::from_binary_cached(Arc::clone(&runtime), name, &binary, CODE_KEY, kept, &cache)?;
            // Loaded as the workers will: code the cache could not keep fails here.
            Ok(App::from_cache(runtime, name, CODE_KEY, policy, &cache)?)
        })?;
        crate::block_on_one_thread(workers::supervise(self.listen, workers, code))
    }

    /// Serves as a worker of `supervisor`: the socket on stdin, the code in `code`.
    fn work(&self, code: &Path, supervisor: u32) -> Result<()> {
        let listener = workers::inherited_listener(supervisor)?;
        let app = self.load(|runtime, name, policy| {
            let cache = CodeCache::open(code)?;
            Ok(App::from_cache(runtime, name, CODE_KEY, policy, &cache)?)
        })?;
        // Every line this worker logs names it, as the supervisor's lines about it do.
        let _worker = tracing::info_span!("worker", pid = std::process::id()).entered();
        crate::block_on_one_thread(async move {
            let listener = Listener::from_std(listener, app, "ready")?;
            workers::report_ready(code);
            listener::serve(vec![listener]).await
        })
    }

    /// The component as `make` loads it, under the settings.
    fn load(
        &self,
        make: impl FnOnce(Arc<Runtime>, &str, Policy) -> Result<App>,
    ) -> Result<Handler> {
        let Config { pool, policy } = self.settings.config()?;
        let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving)?);
        let name = self.component.file_stem().map_or_else(
            || "component".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let app = make(runtime, &name, policy)
            .with_context(|| format!("cannot load component {}", self.component.display()))?;
        Ok(Handler::App(Arc::new(app)))
    }

    fn binary(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.component).context("cannot read the file")
    }
}

fn parse_workers(value: &str) -> Result<NonZeroUsize, String> {
    value
        .parse()
        .map_err(|_| "expected a number of processes, 1 or more".to_string())
}
