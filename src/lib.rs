//! `libnxt_rvm.so`: an NGINX Unit language module (type `wasm-wasi-component`)
//! serving `wasi:http/proxy` components on the rvm engine.
//!
//! - `unit` is the safe layer over Unit's module interface and libunit, and the
//!   only code with `unsafe`; every other module forbids it.
//! - `module`: `setup` compiles the component once, in Unit's prototype process;
//!   `start` runs libunit contexts in each application process.
//! - `serving`: what an application process serves: one component, or a store's
//!   components by name, or its admin API.
//! - `worker`: one tokio current-thread loop per libunit context, driving
//!   libunit from its own thread (ports watched through the loop's reactor).
//! - `exchange`: one request: Unit's request in, the engine's response out, both
//!   bodies streamed.

/// The module's own Rust allocations (the engine's, a few hundred per request,
/// each context's on its one thread) use jemalloc, whose per-thread cache hands
/// out the block freed last, still in the CPU's cache (docs/performance.md
/// compares allocators). C code in the process (unitd, libunit) keeps the
/// system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod exchange;
mod logging;
mod module;
mod serving;
mod unit;
mod worker;

unit::export_module!(module::RvmModule);
