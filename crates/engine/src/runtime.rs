//! The process-wide part of the engine: one wasmtime `Engine` (pooling allocator,
//! copy-on-write memory images, fuel and epochs), the epoch ticker, and the bound
//! on instances alive at once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::error::Context as _;
use wasmtime::{
    Config, Enabled, EngineWeak, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    Result,
};

use crate::policy::DEFAULT_MAX_MEMORY;

/// Instances alive at once per process.
const DEFAULT_MAX_INSTANCES: u32 = 1000;

/// The process's instance pool: how many instances may be alive at once, and
/// the linear memory each slot reserves, which no application may exceed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Instances alive at once; further requests wait for a slot.
    pub max_instances: u32,
    /// Bytes of linear memory each slot reserves.
    pub max_memory: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_instances: DEFAULT_MAX_INSTANCES,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// How often the epoch advances. A running guest yields to the async executor
/// at each tick, so this bounds how long one CPU-bound guest holds its thread
/// before other requests (and its own wall-clock timer) get a turn.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Pool slots per component instance. A Rust `wasm32-wasip2` component holds a
/// handful of core instances and tables and one memory; componentize-py ones
/// hold dozens of core instances, still one or two memories.
const CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 16;

/// Bytes of each linear memory and table kept mapped between uses of a pool
/// slot: reset with `memset` instead of being unmapped and faulted in again,
/// which is cheaper for the small heaps a request typically touches.
const KEEP_RESIDENT: usize = 64 << 10;

/// The same for linear memory where the kernel reports which pages a request
/// wrote (`PAGEMAP_SCAN`): only those are copied back, so a large heap such as
/// CPython's is not unmapped and faulted in again per request, each fault a
/// TLB shootdown across the process's threads (docs/performance.md).
const KEEP_RESIDENT_SCANNED: usize = 1 << 30;

/// What kind of process the engine lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embedding {
    /// A process that serves requests (`rvm`, a Unit application process):
    /// compiles on a pool of threads, resets instance memory by scanning which
    /// pages were written (`/proc/self/pagemap`, where the kernel offers it).
    Serving,
    /// A process that compiles and then forks the ones that serve (Unit's
    /// prototype): it must not have started threads by then, nor hold
    /// per-process resources such as a `/proc/self/pagemap` descriptor, which
    /// would describe the parent in the children.
    BeforeFork,
}

/// One per process: compiles components and instantiates them from a pool.
pub struct Runtime {
    engine: wasmtime::Engine,
    pool: PoolConfig,
    instances: Arc<Semaphore>,
    /// Started by the first request; holds why it could not start, if it could not.
    ticker: OnceLock<Result<(), String>>,
}

impl Runtime {
    /// An engine whose instance pool is sized as `pool` says.
    pub fn new(pool: &PoolConfig, embedding: Embedding) -> Result<Runtime> {
        let max_memory = usize::try_from(pool.max_memory)
            .context("the memory a pool slot reserves does not fit this machine's address space")?;
        // A kernel without `PAGEMAP_SCAN` (before Linux 6.7, or a /proc that
        // hides pagemap) refuses the first engine: build the plain one.
        let scanning = (embedding == Embedding::Serving)
            .then(|| engine(pool, max_memory, embedding, Reset::Scanned).ok())
            .flatten();
        let engine = match scanning {
            Some(engine) => engine,
            None => engine(pool, max_memory, embedding, Reset::Plain)?,
        };
        Ok(Runtime {
            engine,
            pool: pool.clone(),
            instances: Arc::new(Semaphore::new(pool.max_instances as usize)),
            ticker: OnceLock::new(),
        })
    }

    pub fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// What the pool was sized for.
    pub(crate) fn pool(&self) -> &PoolConfig {
        &self.pool
    }

    /// A place for one more instance; waits while the pool is full.
    /// Also starts the epoch ticker on first use, so that a process that only
    /// compiles (Unit's prototype, before it forks) never starts a thread.
    pub(crate) async fn instance_permit(&self) -> Result<OwnedSemaphorePermit> {
        let ticker = self
            .ticker
            .get_or_init(|| start_epoch_ticker(self.engine.weak()));
        // Without epochs a spinning guest could not be stopped: serve nothing.
        if let Err(why) = ticker {
            wasmtime::bail!("cannot start the epoch thread: {why}");
        }
        Arc::clone(&self.instances)
            .acquire_owned()
            .await
            .context("the instance pool is closed")
    }
}

/// How a pool slot's linear memory is reset between instances.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reset {
    /// Ask the kernel which pages were written and copy back only those.
    Scanned,
    /// Copy back the first [`KEEP_RESIDENT`] bytes, unmap the rest.
    Plain,
}

fn engine(
    pool: &PoolConfig,
    max_memory: usize,
    embedding: Embedding,
    reset: Reset,
) -> Result<wasmtime::Engine> {
    let instances = pool.max_instances;
    let mut slots = PoolingAllocationConfig::default();
    slots
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(instances)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(max_memory)
        .table_keep_resident(KEEP_RESIDENT);
    match reset {
        Reset::Scanned => slots
            .linear_memory_keep_resident(KEEP_RESIDENT_SCANNED)
            .pagemap_scan(Enabled::Yes),
        Reset::Plain => slots
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::No),
    };

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(embedding == Embedding::Serving)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(slots));
    wasmtime::Engine::new(&config).context("cannot create the wasm engine")
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine is gone.
/// One thread per engine, never one per request.
fn start_epoch_ticker(engine: EngineWeak) -> Result<(), String> {
    std::thread::Builder::new()
        .name("rvm-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(|e| e.to_string())
}
