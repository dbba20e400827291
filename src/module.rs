//! What the module does in Unit's processes: compile the component once in the
//! prototype (`setup`), serve it in every application process (`start`).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use rvm_engine::{App, Embedding, Runtime, Settings};

use crate::context::{self, Context};
use crate::unit::{self, AppConf, AppProcess, Level, Module};

/// libunit contexts (threads) per application process.
const THREADS_VARIABLE: &str = "RVM_THREADS";
const DEFAULT_THREADS: u32 = 1;

pub struct RvmModule;

/// What `setup` prepared; inherited by the application processes through `fork`.
struct Prepared {
    app: Arc<App>,
    threads: u32,
}

static PREPARED: OnceLock<Prepared> = OnceLock::new();

impl Module for RvmModule {
    /// Runs once per application, in the prototype process before it forks the
    /// application processes: everything is validated and compiled here, on
    /// this thread only (threads do not survive `fork`).
    fn setup(conf: &AppConf) -> Result<()> {
        let name = conf.name();
        // Unit has put the application's `environment` into ours by now.
        let mut settings = Settings::from_env()?;
        settings.dirs = conf.filesystem()?;
        let threads = threads()?;
        let component = conf.component()?;
        let runtime = Runtime::new(&settings.limits, Embedding::BeforeFork)?;
        let started = Instant::now();
        let app = App::load(Arc::new(runtime), &name, &component, settings)?;
        unit::log(
            Level::Info,
            &format!(
                "rvm: application \"{name}\": {} compiled in {} ms",
                component.display(),
                started.elapsed().as_millis()
            ),
        );
        PREPARED
            .set(Prepared {
                app: Arc::new(app),
                threads,
            })
            .map_err(|_| anyhow!("the application was set up twice in one process"))
    }

    fn start(process: AppProcess) -> Result<()> {
        let prepared = PREPARED.get().context("the application was not set up")?;
        crate::logging::init();
        let main = process.init(Context::new(Arc::clone(&prepared.app), prepared.threads))?;
        context::run(main)
    }
}

fn threads() -> Result<u32> {
    match std::env::var(THREADS_VARIABLE) {
        Err(_) => Ok(DEFAULT_THREADS),
        Ok(value) => rvm_engine::parse_instances(&value)
            .map_err(|why| anyhow!("{THREADS_VARIABLE}={value:?} is not valid: {why}")),
    }
}
