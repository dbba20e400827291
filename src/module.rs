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
    name: String,
    settings: Settings,
    /// The component compiled in `setup`, loaded again (not recompiled) by each
    /// application process into an engine of its own.
    precompiled: Vec<u8>,
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
        let app = App::load(Arc::new(runtime), &name, &component, settings.clone())?;
        let precompiled = app.precompiled()?;
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
                name,
                settings,
                precompiled,
                threads,
            })
            .map_err(|_| anyhow!("the application was set up twice in one process"))
    }

    fn start(process: AppProcess) -> Result<()> {
        let prepared = PREPARED.get().context("the application was not set up")?;
        crate::logging::init();
        // An engine of this process's own: its memory pool and page-map scanner
        // must not be shared with the prototype or the other processes.
        let runtime =
            while_dumpable(|| Runtime::new(&prepared.settings.limits, Embedding::Serving))?;
        // SAFETY: `precompiled` is App::precompiled output of this very module,
        // made in the prototype for an engine with the same limits.
        let app = unsafe {
            App::from_precompiled(
                Arc::new(runtime),
                &prepared.name,
                &prepared.precompiled,
                prepared.settings.clone(),
            )
        }?;
        let main = process.init(Context::new(Arc::new(app), prepared.threads))?;
        context::run(main)
    }
}

/// Runs `f` with this process dumpable, as it was before Unit changed its user.
///
/// A process whose credentials changed is not dumpable, which makes its
/// `/proc/self` files root's: the engine could not open `/proc/self/pagemap`,
/// which lets it reset an instance's memory by touching only the pages the
/// guest wrote (three times cheaper per request than unmapping them). The
/// descriptor, once open, stays usable; the flag is restored right after.
fn while_dumpable<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: PR_GET_DUMPABLE reads a flag of this process; no memory is passed.
    let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
    if dumpable == 0 {
        // SAFETY: sets a flag of this process; no memory is passed.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) };
    }
    let result = f();
    if dumpable == 0 {
        // SAFETY: as above, restoring the flag Unit left.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    }
    result
}

fn threads() -> Result<u32> {
    match std::env::var(THREADS_VARIABLE) {
        Err(_) => Ok(DEFAULT_THREADS),
        Ok(value) => rvm_engine::parse_instances(&value)
            .map_err(|why| anyhow!("{THREADS_VARIABLE}={value:?} is not valid: {why}")),
    }
}
