//! `rvm:lambda/host@0.1.0`, the RVM service's host interface (see `wit/world.wit`).
//! Components built for RVM import it; plain `wasi:http/proxy` ones need not.

use wasmtime::Result;
use wasmtime::component::Linker;
use wasmtime::error::Context as _;

use crate::host::Host;

/// The interface as components import it; later 0.1.x imports match it too.
const INTERFACE: &str = "rvm:lambda/host@0.1.0";

pub(crate) fn add_to_linker(linker: &mut Linker<Host>) -> Result<()> {
    let mut host = linker.instance(INTERFACE).context(INTERFACE)?;
    host.func_wrap("multiply", |_, (a, b): (f32, f32)| Ok((a * b,)))
        .context("rvm:lambda/host#multiply")?;
    host.func_wrap("client-secret", |store, ()| {
        Ok((store.data().client_secret.to_string(),))
    })
    .context("rvm:lambda/host#client-secret")?;
    Ok(())
}
