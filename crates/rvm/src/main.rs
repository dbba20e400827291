//! `rvm`: serves wasi:http components on the rvm engine without NGINX Unit:
//! one component (`rvm serve`), or the RVM service (`rvm server`) and its
//! client commands.

/// Cheaper than glibc's malloc for the engine's per-request allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod client;
mod flags;
mod listener;
mod serve;
mod server;
mod workers;

use std::future::Future;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "rvm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::ServeCommand),
    Server(server::ServerCommand),
    Deploy(client::DeployCommand),
    List(client::ListCommand),
    Delete(client::DeleteCommand),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Serve(command) => command.execute(),
        Command::Server(command) => command.execute(),
        Command::Deploy(command) => command.execute(),
        Command::List(command) => command.execute(),
        Command::Delete(command) => command.execute(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs `future` on a multi-thread runtime.
fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    run(tokio::runtime::Builder::new_multi_thread(), future)
}

/// Runs `future` on this thread alone.
fn block_on_one_thread<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    run(tokio::runtime::Builder::new_current_thread(), future)
}

fn run<T>(
    mut builder: tokio::runtime::Builder,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}
