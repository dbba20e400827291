//! `libnxt_rvm.so`: an NGINX Unit language module (type `wasm-wasi-component`)
//! serving `wasi:http/proxy` components on the rvm engine.
//!
//! - [`unit`] is the safe layer over Unit's module interface and libunit; it
//!   alone uses the raw bindings in `ffi`.
//! - `module`: `setup` compiles the component once, in Unit's prototype process;
//!   `start` runs libunit contexts in each application process.
//! - `context`: one tokio current-thread loop per libunit context, driving
//!   libunit from its own thread (ports watched through the loop's reactor).
//! - `exchange`: one request: Unit's request in, the engine's response out, both
//!   bodies streamed.

// Raw bindgen output for Unit's headers (see build.rs and c/wrapper.h).
#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unsafe_op_in_unsafe_fn,
    unnecessary_transmutes,
    clippy::all
)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/unit.rs"));
}

/// The module's own Rust allocations (the engine's, a few hundred per request,
/// each context's on its one thread) use jemalloc, whose per-thread cache hands
/// out the block freed last, still in the CPU's cache. mimalloc goes through
/// each page's free blocks in turn, and under load its first read of each block
/// missed the cache, a tenth of the application process's CPU (`rvm`, on a
/// multi-thread runtime, keeps mimalloc: jemalloc did no better there); glibc's
/// malloc cost more than either. C code in the process (unitd, libunit) keeps
/// the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod context;
mod exchange;
mod logging;
mod module;
mod translate;
pub mod unit;

pub(crate) use module::RvmModule;
