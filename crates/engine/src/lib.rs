//! The rvm engine: serves `wasi:http/proxy` components, one fresh instance per
//! request, under fuel, memory and wall-clock limits, with the RVM service's
//! `rvm:lambda/host` interface linked in.
//!
//! It knows nothing of the front end that feeds it requests: the `rvm` binary
//! (hyper) and the NGINX Unit module both hand it `http::Request`s and send the
//! `http::Response` it returns.
//!
//! - [`Runtime`]: one per process; the wasmtime engine and its instance pool.
//! - [`App`]: one component with its [`Settings`]; [`App::handle`] serves a request.

mod app;
mod body;
mod failure;
mod host;
mod lambda;
mod outbound;
mod request;
mod runtime;
mod settings;

pub use app::App;
pub use body::{BodyError, ResponseBody};
pub use outbound::AllowList;
pub use runtime::{Embedding, Runtime};
pub use settings::{
    Limits, Settings, parse_fuel, parse_instances, parse_memory, parse_timeout, read_secret_file,
};
