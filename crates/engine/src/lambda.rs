//! `rvm:lambda/host@0.1.0`, the RVM service's host interface (see `wit/world.wit`).
//! Components built for RVM import it; plain `wasi:http/proxy` ones need not.

use anyhow::{Context, Result};
use wasmtime::component::Linker;

use crate::host::Host;

/// The interface as components import it; later 0.1.x imports match it too.
pub const INTERFACE: &str = "rvm:lambda/host@0.1.0";

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    let mut host = linker
        .instance(INTERFACE)
        .map_err(anyhow::Error::from)
        .context(INTERFACE)?;
    host.func_wrap("multiply", |_, (a, b): (f32, f32)| Ok((a * b,)))
        .map_err(anyhow::Error::from)
        .context("rvm:lambda/host#multiply")?;
    host.func_wrap("client-secret", |store, ()| {
        Ok((store.data().client_secret.to_string(),))
    })
    .map_err(anyhow::Error::from)
    .context("rvm:lambda/host#client-secret")?;
    Ok(())
}
