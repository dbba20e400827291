//! Why a request did not end well, with the HTTP status a client gets for it
//! when no headers were sent yet, and the cause the log line carries.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

#[derive(Debug)]
pub enum Failure {
    /// The request could not be handed to a guest (e.g. a `Host` that is not UTF-8).
    BadRequest(String),
    /// The guest trapped, or a host call it made failed it; the message holds
    /// the cause and the wasm backtrace.
    Trap(String),
    /// The guest used up its fuel budget.
    FuelExhausted { budget: u64 },
    /// The guest trapped after a memory growth past the limit was refused.
    MemoryLimit { limit: u64, trap: String },
    /// The guest ran past the wall-clock limit.
    Timeout(Duration),
    /// The guest returned without setting a response.
    NoResponse,
    /// The guest answered with an error code instead of a response.
    ErrorCode(ErrorCode),
    /// The guest's response body stream was aborted (e.g. a wrong Content-Length).
    BodyAborted(String),
    /// The host could not run the guest (instantiation, resources).
    Host(String),
}

impl Failure {
    /// What the guest's run ended with, given what the store saw.
    pub(crate) fn from_guest_error(
        error: &wasmtime::Error,
        fuel_budget: Option<u64>,
        memory_refused: Option<u64>,
    ) -> Failure {
        let detail = describe(error);
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => Failure::FuelExhausted {
                budget: fuel_budget.unwrap_or(0),
            },
            Some(_) => match memory_refused {
                Some(limit) => Failure::MemoryLimit {
                    limit,
                    trap: detail,
                },
                None => Failure::Trap(detail),
            },
            None => match memory_refused {
                // Instantiation asked for more memory than allowed.
                Some(limit) => Failure::MemoryLimit {
                    limit,
                    trap: detail,
                },
                // A host call refused the running guest (wasi:http's limit on
                // the size of fields, say): wasmtime traps the guest with it.
                None if error.downcast_ref::<WasmBacktrace>().is_some() => Failure::Trap(detail),
                None => Failure::Host(detail),
            },
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest(_) => StatusCode::BAD_REQUEST,
            Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Host(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short body a client gets: what happened, never guest internals.
    pub fn client_message(&self) -> String {
        let what = match self {
            Failure::BadRequest(why) => return format!("bad request: {why}\n"),
            Failure::Trap(_) => "the application failed (trap)",
            Failure::FuelExhausted { .. } => "the application exhausted its fuel budget",
            Failure::MemoryLimit { .. } => "the application hit its memory limit",
            Failure::Timeout(limit) => {
                return format!("the application did not finish within {limit:?}\n");
            }
            Failure::NoResponse => "the application returned no response",
            Failure::ErrorCode(_) => "the application answered with an error",
            Failure::BodyAborted(_) => "the application's response body was aborted",
            Failure::Host(_) => "the application could not be started",
        };
        format!("{what}\n")
    }
}

/// The error's cause and, for a trap, its wasm backtrace, on one line:
/// `wasm trap: … at handle+0x1f <- call+0x8 <- …`.
fn describe(error: &wasmtime::Error) -> String {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return format!("{error:#}");
    };
    let frames: Vec<String> = backtrace
        .frames()
        .iter()
        .map(|frame| {
            let name = frame.func_name().map_or_else(
                || format!("wasm-function[{}]", frame.func_index()),
                |name| format!("{:#}", rustc_demangle::demangle(name)),
            );
            match frame.func_offset() {
                Some(offset) => format!("{name}+{offset:#x}"),
                None => name,
            }
        })
        .collect();
    format!("{} at {}", error.root_cause(), frames.join(" <- "))
}

impl fmt::Display for Failure {
    /// The cause for the log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadRequest(why) => write!(f, "bad request: {why}"),
            Failure::Trap(detail) => write!(f, "guest trapped: {detail}"),
            Failure::FuelExhausted { budget } => {
                write!(f, "fuel budget of {budget} exhausted (RVM_FUEL)")
            }
            Failure::MemoryLimit { limit, trap } => write!(
                f,
                "memory limit of {} reached (RVM_MAX_MEMORY): {trap}",
                crate::settings::format_bytes(*limit)
            ),
            Failure::Timeout(limit) => {
                write!(f, "wall-clock limit of {limit:?} reached (RVM_TIMEOUT)")
            }
            Failure::NoResponse => write!(f, "guest returned without setting a response"),
            Failure::ErrorCode(code) => write!(f, "guest answered with error code {code:?}"),
            Failure::BodyAborted(why) => write!(f, "guest's response body aborted: {why}"),
            Failure::Host(detail) => write!(f, "cannot run the guest: {detail}"),
        }
    }
}
