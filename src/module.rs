//! What the module does in Unit's processes: validate the application and
//! compile its component once in the prototype (`setup`), serve it in every
//! application process (`start`). An application whose `component` is a
//! directory or a store URI serves that store instead, as `rvm server` does.

#![forbid(unsafe_code)]

use std::ffi::CStr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use rvm_config::{Config, Role, ServiceConfig};
use rvm_engine::{App, CodeCache, Embedding, Precompiled, Runtime};
use rvm_service::{Service, Store};

use crate::serving::Serving;
use crate::unit::{self, AppConf, AppProcess, Level, Module};
use crate::worker::{self, Worker};

/// libunit contexts (threads) per application process.
const THREADS_VARIABLE: &str = "RVM_THREADS";
const DEFAULT_THREADS: u32 = 1;

pub struct RvmModule;

/// What `setup` made; inherited by the application processes through `fork`.
struct SetUp {
    name: String,
    config: Config,
    serves: Serves,
    threads: u32,
}

/// What the application serves.
enum Serves {
    /// The component compiled in `setup`, loaded again (not recompiled) by each
    /// application process into an engine of its own.
    Component(Precompiled),
    /// The components of the store `uri` names. Each application process
    /// opens it for itself, as the user Unit runs it as.
    Store { uri: String, service: ServiceConfig },
}

/// A static: Unit's `setup` and `start` carry no pointer of the module's own.
static SET_UP: OnceLock<SetUp> = OnceLock::new();

impl Module for RvmModule {
    const NAME: &'static str = "rvm";
    /// Unit accepts no new type names.
    const TYPE: &'static str = "wasm-wasi-component";
    /// Distinct from (and sorting above) the stock module's `0.1`:
    /// `"type": "wasm-wasi-component rvm"` selects this module.
    const VERSION: &'static CStr = {
        let version = concat!("rvm", env!("CARGO_PKG_VERSION"), "\0");
        match CStr::from_bytes_with_nul(version.as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("the version holds a NUL"),
        }
    };

    /// Runs once per application, in the prototype process before it forks the
    /// application processes: everything is validated and compiled here, on
    /// this thread only (threads do not survive `fork`).
    fn setup(conf: &AppConf) -> Result<()> {
        let name = conf.name();
        // Unit has put the application's `environment` into ours by now.
        let mut config = Config::from_env()?;
        config.policy.grants.dirs = conf.filesystem()?;
        let threads = threads()?;
        let component = conf.component()?;
        let uri = component.to_string_lossy();
        let serves = if uri.contains("://") || component.is_dir() {
            let service = ServiceConfig::from_env()?;
            // Only checked here: the application processes open the store
            // themselves. A directory store is not even opened, since that
            // makes files in it, which would be the prototype's user's.
            if !component.is_dir() && !uri.starts_with("fs://") {
                drop(Store::open(&uri)?);
            }
            let role = match service.role {
                Role::Invoke => "its components by name",
                Role::Admin => "its admin API",
            };
            unit::log(
                Level::Info,
                &format!("application \"{name}\": serves the store {uri}: {role}"),
            );
            Serves::Store {
                uri: uri.into_owned(),
                service,
            }
        } else {
            let runtime = Runtime::new(&config.pool, Embedding::BeforeFork)?;
            let started = Instant::now();
            let app = App::load(Arc::new(runtime), &name, &component, config.policy.clone())?;
            unit::log(
                Level::Info,
                &format!(
                    "application \"{name}\": {} compiled in {} ms",
                    component.display(),
                    started.elapsed().as_millis()
                ),
            );
            Serves::Component(app.precompiled()?)
        };
        SET_UP
            .set(SetUp {
                name,
                config,
                serves,
                threads,
            })
            .map_err(|_| anyhow!("the application was set up twice in one process"))
    }

    fn start(process: AppProcess) -> Result<()> {
        let set_up = SET_UP.get().context("the application was not set up")?;
        crate::logging::init();
        // An engine of this process's own: its memory pool and page-map scanner
        // must not be shared with the prototype or the other processes.
        let runtime =
            unit::while_dumpable(|| Runtime::new(&set_up.config.pool, Embedding::Serving))?;
        let runtime = Arc::new(runtime);
        let policy = set_up.config.policy.clone();
        let serving = match &set_up.serves {
            Serves::Component(precompiled) => {
                let app = App::from_precompiled(runtime, &set_up.name, precompiled, policy)?;
                Serving::component(&set_up.name, app)
            }
            Serves::Store { uri, service } => {
                let store = Store::open(uri)?;
                let cache = code_cache(&set_up.name, service);
                Serving::store(
                    &set_up.name,
                    Service::new(runtime, store, policy, cache),
                    service,
                )?
            }
        };
        let main = process.init(Worker::new(Arc::new(serving), set_up.threads))?;
        worker::run(main)
    }
}

/// The machine's compiled code cache, if this process's user may use the
/// directory configured; without one, each process compiles what it serves.
fn code_cache(name: &str, service: &ServiceConfig) -> Option<CodeCache> {
    let dir = service.cache_dir.as_ref()?;
    CodeCache::open(dir)
        .inspect_err(|error| {
            tracing::warn!(
                app = name,
                "no compiled code cache (set RVM_CACHE_DIR): {error:#}"
            );
        })
        .ok()
}

fn threads() -> Result<u32> {
    match std::env::var(THREADS_VARIABLE) {
        Err(_) => Ok(DEFAULT_THREADS),
        Ok(value) => rvm_config::parse_instances(&value)
            .map_err(|why| anyhow!("{THREADS_VARIABLE}={value:?} is not valid: {why}")),
    }
}
