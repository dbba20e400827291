//! What the module does in Unit's processes: compile the component once in the
//! prototype (`setup`), serve it in every application process (`start`).

#![forbid(unsafe_code)]

use std::ffi::CStr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use rvm_config::Config;
use rvm_engine::{App, Embedding, Precompiled, Runtime};

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
    /// The component compiled in `setup`, loaded again (not recompiled) by each
    /// application process into an engine of its own.
    precompiled: Precompiled,
    threads: u32,
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
        let runtime = Runtime::new(&config.pool, Embedding::BeforeFork)?;
        let started = Instant::now();
        let app = App::load(Arc::new(runtime), &name, &component, config.policy.clone())?;
        let precompiled = app.precompiled()?;
        unit::log(
            Level::Info,
            &format!(
                "application \"{name}\": {} compiled in {} ms",
                component.display(),
                started.elapsed().as_millis()
            ),
        );
        SET_UP
            .set(SetUp {
                name,
                config,
                precompiled,
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
        let app = App::from_precompiled(
            Arc::new(runtime),
            &set_up.name,
            &set_up.precompiled,
            set_up.config.policy.clone(),
        )?;
        let main = process.init(Worker::new(Arc::new(app), set_up.threads))?;
        worker::run(main)
    }
}

fn threads() -> Result<u32> {
    match std::env::var(THREADS_VARIABLE) {
        Err(_) => Ok(DEFAULT_THREADS),
        Ok(value) => rvm_config::parse_instances(&value)
            .map_err(|why| anyhow!("{THREADS_VARIABLE}={value:?} is not valid: {why}")),
    }
}
