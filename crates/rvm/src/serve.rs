//! `rvm serve`: one component on one listener, as `wasmtime serve` does, with the
//! limits and grants of the `RVM_*` settings (`rvm-config`); flags win over them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use rvm_config::Config;
use rvm_engine::{App, Embedding, Runtime};

use crate::flags::SettingsFlags;
use rvm_service::Handler;

use crate::listener;

/// Where `rvm serve` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8000";

/// Serve a wasi:http component: one fresh instance per request.
#[derive(Args)]
pub struct ServeCommand {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    #[command(flatten)]
    settings: SettingsFlags,

    /// The component to serve.
    #[arg(value_name = "COMPONENT.wasm")]
    component: PathBuf,
}

impl ServeCommand {
    pub fn execute(self) -> Result<()> {
        // Everything is validated, and the component compiled, before the
        // listener is bound: nothing is served half-configured.
        let Config { pool, policy } = self.settings.config()?;
        let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving)?);
        let name = self.component.file_stem().map_or_else(
            || "component".to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let app = App::load(runtime, &name, &self.component, policy)?;
        let handler = Handler::App(Arc::new(app));
        crate::block_on(async {
            let listener = listener::Listener::bind(self.listen, handler, "serving").await?;
            listener::serve(vec![listener]).await
        })
    }
}
