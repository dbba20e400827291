//! Why a request did not end well: the response a client gets for it when no
//! headers were sent yet, and the cause its log line carries.

use std::fmt;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

use crate::names::{ByteSize, NamedAs, SettingNames};

#[derive(Debug)]
pub(crate) enum Failure {
    /// The request could not be handed to a guest (e.g. a `Host` that is not UTF-8).
    BadRequest(String),
    /// A call of a component's function that is not made: no such function,
    /// not POST, arguments too large, a function JSON cannot call.
    Refused(StatusCode, String),
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
    /// The host could not run the guest, for this reason.
    pub(crate) fn host(error: wasmtime::Error) -> Failure {
        Failure::Host(format!("{error:#}"))
    }

    /// What the guest's run ended with, given what the store saw.
    pub(crate) fn from_guest_error(
        error: &wasmtime::Error,
        fuel_budget: Option<u64>,
        memory_refused: Option<u64>,
    ) -> Failure {
        let trap = error.downcast_ref::<Trap>();
        if let Some(Trap::OutOfFuel) = trap {
            return Failure::FuelExhausted {
                budget: fuel_budget.unwrap_or(0),
            };
        }
        let detail = describe(error);
        match memory_refused {
            // A trap after a refused growth, or an instantiation that asked
            // for more memory than allowed.
            Some(limit) => Failure::MemoryLimit {
                limit,
                trap: detail,
            },
            // A host call that refused the running guest (wasi:http's limit on
            // the size of fields, say) traps it too, with a wasm backtrace.
            None if trap.is_some() || error.downcast_ref::<WasmBacktrace>().is_some() => {
                Failure::Trap(detail)
            }
            None => Failure::Host(detail),
        }
    }

    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Failure::BadRequest(_) => StatusCode::BAD_REQUEST,
            Failure::Refused(status, _) => *status,
            Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Host(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The answer a client gets when nothing was sent yet: the status and a
    /// short plain-text body.
    pub(crate) fn response<B: From<String>>(&self) -> Response<B> {
        let mut response = Response::new(B::from(self.client_message()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    /// The cause for a log line, with the name of the setting it ran into.
    pub(crate) fn cause<'a>(&'a self, names: &'a SettingNames) -> Cause<'a> {
        Cause {
            failure: self,
            names,
        }
    }

    /// What happened, never guest internals.
    pub(crate) fn client_message(&self) -> String {
        let what = match self {
            Failure::BadRequest(why) => return format!("bad request: {why}\n"),
            Failure::Refused(_, why) => return format!("{why}\n"),
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

/// A failure's cause as a log line gives it (see [`Failure::cause`]).
pub(crate) struct Cause<'a> {
    failure: &'a Failure,
    names: &'a SettingNames,
}

impl fmt::Display for Cause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names;
        match self.failure {
            Failure::BadRequest(why) => write!(f, "bad request: {why}"),
            Failure::Refused(_, why) => f.write_str(why),
            Failure::Trap(detail) => write!(f, "guest trapped: {detail}"),
            Failure::FuelExhausted { budget } => {
                write!(
                    f,
                    "fuel budget of {budget} exhausted{}",
                    NamedAs(names.fuel)
                )
            }
            Failure::MemoryLimit { limit, trap } => write!(
                f,
                "memory limit of {} reached{}: {trap}",
                ByteSize(*limit),
                NamedAs(names.memory)
            ),
            Failure::Timeout(limit) => {
                write!(
                    f,
                    "wall-clock limit of {limit:?} reached{}",
                    NamedAs(names.timeout)
                )
            }
            Failure::NoResponse => write!(f, "guest returned without setting a response"),
            Failure::ErrorCode(code) => write!(f, "guest answered with error code {code:?}"),
            Failure::BodyAborted(why) => write!(f, "guest's response body aborted: {why}"),
            Failure::Host(detail) => write!(f, "cannot run the guest: {detail}"),
        }
    }
}
