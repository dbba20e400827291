//! The RVM service on the rvm engine: components deployed over HTTP into a
//! store that several machines share, and invoked by name. Both front ends use
//! it (`rvm server`, and the Unit module in store mode); it knows neither.
//!
//! - [`Store`]: where components live (a directory, Redis or S3);
//! - [`Service`]: the components one process serves, in step with the store;
//! - [`invoke`]: `/{name}/{rest}` runs that component;
//! - [`Admin`]: the deploy API;
//! - [`Handler`]: any of these, or one component, as a listener serves it.

mod admin;
mod handler;
mod invoke;
mod name;
mod record;
mod service;
mod settings;
mod store;

pub use admin::{Admin, SECRET_HEADER};
pub use handler::Handler;
pub use invoke::invoke;
pub use name::Name;
pub use record::Record;
pub use service::{DeployError, Deployed, Service};
pub use settings::ComponentSettings;
pub use store::{DEFAULT_STORE, Store};
