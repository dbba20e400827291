//! What the NGINX Unit module (`libnxt_rvm.so`) decides without libunit, kept
//! apart so that it builds and is tested on a machine without a Unit tree:
//!
//! - [`request`]: Unit's request head as an `http::Request`;
//! - [`response`]: which of a response's header fields Unit carries;
//! - [`room`]: whether libunit would find room in shared memory, from what its
//!   segments' headers say.

#![forbid(unsafe_code)]

pub mod request;
pub mod response;
pub mod room;
