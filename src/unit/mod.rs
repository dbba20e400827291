//! A safe layer over Unit's module interface and libunit: the only code that
//! touches [`crate::ffi`]. Everything above it deals in [`Ctx`], [`Port`],
//! [`Request`] and [`Events`], which keep libunit's rules: a context, its ports
//! and its requests are used only on the thread that runs the context, and a
//! port or request is not used once libunit has let go of it. [`notices`]
//! holds this thread's queue wake-ups to Unit's router for the loop to send;
//! `segments` keeps libunit from waiting for shared memory.

mod ctx;
mod module;
pub mod notices;
mod request;
mod segments;

use std::ffi::CString;

pub use ctx::{Ctx, Events, Port, PortStatus, SharedCtx};
pub use module::{AppConf, AppProcess, Module};
pub use request::{Gone, Head, Request};
pub use segments::PLAIN_MESSAGE_MAX;

use crate::ffi;

/// Unit's log levels.
#[derive(Clone, Copy, Debug)]
pub enum Level {
    Alert,
    Error,
    Warn,
    Info,
    Debug,
}

/// Writes one line to Unit's log, in Unit's format. Usable from any thread.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Alert => ffi::NXT_UNIT_LOG_ALERT,
        Level::Error => ffi::NXT_UNIT_LOG_ERR,
        Level::Warn => ffi::NXT_UNIT_LOG_WARN,
        Level::Info => ffi::NXT_UNIT_LOG_INFO,
        Level::Debug => ffi::NXT_UNIT_LOG_DEBUG,
    };
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
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
