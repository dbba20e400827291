//! A safe layer over Unit's module interface and libunit, and the only code
//! with `unsafe`: everything above it deals in [`Context`], [`Port`],
//! [`Request`] and [`Events`], which keep libunit's rules: a context, its ports
//! and its requests are used only on the thread that runs the context, and a
//! port or request is not used once libunit has let go of it. It knows nothing
//! of what the module serves: [`export_module!`] makes the entry points unitd
//! calls, which call up into a [`Module`].
//!
//! `wake_ups` holds a context's queue wake-ups to Unit's router for its loop to
//! send; `segments` keeps libunit from waiting for shared memory.

mod context;
mod dumpable;
mod module;
mod request;
mod segments;
mod wake_ups;

use std::ffi::CString;
use std::sync::OnceLock;

pub use context::{Context, Events, Port, PortStatus, SharedContext};
pub use dumpable::while_dumpable;
pub(crate) use module::export_module;
pub use module::{AppConf, AppProcess, Module, ModuleDescriptor};
pub use request::{Gone, Request, ResponseInit};
pub use segments::PLAIN_MESSAGE_MAX;

/// Raw bindgen output for Unit's headers (see build.rs and c/wrapper.h).
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

/// Unit's log levels.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Alert,
    Error,
    Warn,
    Info,
    Debug,
}

/// The module's name, which starts each of its lines in Unit's log. A static:
/// lines are written from places that hold no context (and from `setup`).
static LOG_NAME: OnceLock<&'static str> = OnceLock::new();

/// Set as unitd first calls into the module, before any line is written.
fn name_log_lines(name: &'static str) {
    let _ = LOG_NAME.set(name);
}

/// Writes one line to Unit's log, in Unit's format, after the module's name.
/// Usable from any thread.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Alert => ffi::NXT_UNIT_LOG_ALERT,
        Level::Error => ffi::NXT_UNIT_LOG_ERR,
        Level::Warn => ffi::NXT_UNIT_LOG_WARN,
        Level::Info => ffi::NXT_UNIT_LOG_INFO,
        Level::Debug => ffi::NXT_UNIT_LOG_DEBUG,
    };
    let line = match LOG_NAME.get() {
        Some(name) => format!("{name}: {message}"),
        None => message.to_string(),
    };
    let message = CString::new(line.replace('\0', "\\0")).unwrap_or_default();
    // SAFETY: a NULL context makes libunit write one formatted line to stderr,
    // which Unit sends to its log; "%s" with a NUL-terminated string.
    unsafe {
        ffi::nxt_unit_log(
            std::ptr::null_mut(),
            level as i32,
            c"%s".as_ptr(),
            message.as_ptr(),
        )
    };
}
