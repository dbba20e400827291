//! The rvm engine: serves `wasi:http/proxy` components, one fresh instance per
//! request, under fuel, memory and wall-clock limits, with the RVM service's
//! `rvm:lambda/host` and `rvm:lambda/log` interfaces linked in; and components
//! that export plain functions, each request a call with JSON (function mode).
//!
//! It knows nothing of the front end that feeds it requests: the `rvm` binary
//! (hyper) and the NGINX Unit module both hand it `http::Request`s and send the
//! `http::Response` it returns, and they say how their operators name its
//! settings ([`SettingNames`]).
//!
//! - [`Runtime`]: one per process; the wasmtime engine and its instance pool,
//!   sized by a [`PoolConfig`].
//! - [`App`]: one component with its [`Policy`] ([`Limits`] and [`Grants`]);
//!   [`App::handle`] serves a request.
//!
//! A request, top-down: `app` (handle) → `guest` (the store, its limits and the
//! instance, run in a task of its own) → `response` (the body the front end
//! sends) → `inflight` (the request's log record and its guest's outcome) →
//! `failure` (what went wrong, and the answer a client gets for it). In
//! function mode `app` hands it to `call` (the function, its arguments read
//! with `json`, its result written back), over `functions` (what the component
//! exports) and the same `guest`.

mod app;
mod body;
mod cache;
mod call;
mod failure;
mod functions;
mod guest;
mod host;
mod inflight;
mod json;
mod lambda;
mod log;
mod names;
mod outbound;
mod policy;
mod response;
mod runtime;

pub use app::{App, Precompiled};
pub use body::{BodyError, BodyLimit};
pub use cache::{CodeCache, Compiled};
pub use log::LogImport;
pub use names::SettingNames;
pub use outbound::AllowList;
pub use policy::{Grants, Limits, Policy};
pub use response::{BodyCutOff, ResponseBody};
pub use runtime::{Embedding, PoolConfig, Runtime};
/// The error a request body may end with, as the engine takes it.
pub use wasmtime_wasi_http::Error as RequestBodyError;
