//! `rvm deploy`, `rvm list` and `rvm delete`: the admin API from the command
//! line, or (`rvm deploy --store`) straight into a store after the same
//! validation, for pipelines and for hosts that run no admin listener.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rvm_config::{Config, ServiceConfig};
use rvm_engine::{CodeCache, Embedding, Runtime};
use rvm_service::{ComponentSettings, DeployError, Name, SECRET_HEADER, Service, Store};
use tokio::net::TcpStream;

/// Where the admin API is, and the token it asks for.
#[derive(Args)]
pub struct AdminFlags {
    /// The admin listener's URL.
    #[arg(
        long = "admin",
        value_name = "URL",
        env = "RVM_ADMIN_URL",
        default_value = "http://127.0.0.1:8002"
    )]
    url: String,

    /// The admin token [env: RVM_ADMIN_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

/// Deploy a component: upload it, or write it straight into a store.
#[derive(Args)]
pub struct DeployCommand {
    /// The name to invoke it by.
    name: String,

    /// The component.
    #[arg(value_name = "COMPONENT.wasm")]
    file: PathBuf,

    /// Fuel budget of one request; 0 = unlimited.
    #[arg(long, value_name = "N")]
    fuel: Option<String>,

    /// Wall-clock limit of one request, e.g. 30s, 250ms.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,

    /// Linear memory one instance may hold.
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<String>,

    /// This component's requests in flight at once.
    #[arg(long, value_name = "N")]
    max_instances: Option<String>,

    /// Requests one instance of this component serves in turn.
    #[arg(long, value_name = "N")]
    instance_reuse: Option<String>,

    /// Comma list of scheme://host[:port] the guest may call.
    #[arg(long, value_name = "LIST")]
    allowed_outbound_hosts: Option<String>,

    /// A variable of the guest's environment, NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,

    /// Add x-rvm-fuel-consumed and x-rvm-fuel-remaining to responses.
    #[arg(long)]
    fuel_headers: bool,

    /// What `client-secret` returns to this component.
    #[arg(long, value_name = "SECRET")]
    client_secret: Option<String>,

    /// Write into this store instead of calling the admin API.
    #[arg(long, value_name = "URI", conflicts_with_all = ["url", "token"])]
    store: Option<String>,

    #[command(flatten)]
    admin: AdminFlags,
}

/// List the deployed components.
#[derive(Args)]
pub struct ListCommand {
    #[command(flatten)]
    admin: AdminFlags,
}

/// Delete a component: invoking it answers 404 from then on.
#[derive(Args)]
pub struct DeleteCommand {
    name: String,

    #[command(flatten)]
    admin: AdminFlags,
}

impl DeployCommand {
    pub fn execute(self) -> Result<()> {
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("cannot read {}", self.file.display()))?;
        let query = self.query();
        match &self.store {
            Some(store) => {
                let settings = ComponentSettings::from_query(&query, self.client_secret.clone())
                    .map_err(anyhow::Error::msg)?;
                let name = Name::parse(&self.name).map_err(anyhow::Error::msg)?;
                crate::block_on(deploy_into(store, name, bytes.into(), settings))
            }
            None => {
                let mut path = format!("/deploy/{}", self.name);
                if !query.is_empty() {
                    path = format!("{path}?{query}");
                }
                let secret = self.client_secret.as_deref().map(|s| (SECRET_HEADER, s));
                crate::block_on(self.admin.call(Method::POST, &path, secret, bytes.into()))
            }
        }
    }

    /// The settings as the admin API takes them.
    fn query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("fuel", &self.fuel),
            ("timeout", &self.timeout),
            ("max-memory", &self.max_memory),
            ("max-instances", &self.max_instances),
            ("instance-reuse", &self.instance_reuse),
            ("allowed-outbound-hosts", &self.allowed_outbound_hosts),
        ] {
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        for pair in &self.env {
            query.append_pair("env", pair);
        }
        if self.fuel_headers {
            query.append_pair("fuel-headers", "1");
        }
        query.finish()
    }
}

impl ListCommand {
    pub fn execute(self) -> Result<()> {
        crate::block_on(self.admin.call(Method::GET, "/deploy", None, Bytes::new()))
    }
}

impl DeleteCommand {
    pub fn execute(self) -> Result<()> {
        let path = format!("/deploy/{}", self.name);
        crate::block_on(self.admin.call(Method::DELETE, &path, None, Bytes::new()))
    }
}

impl AdminFlags {
    /// Makes one call to the admin API and prints its answer; an error if it
    /// refused.
    async fn call(
        &self,
        method: Method,
        path: &str,
        header: Option<(&str, &str)>,
        body: Bytes,
    ) -> Result<()> {
        let (status, answer) = self.request(method, path, header, body).await?;
        if !status.is_success() {
            let why = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|json| json.get("error")?.as_str().map(str::to_string))
                .unwrap_or(answer);
            bail!("{} answered {status}: {why}", self.url);
        }
        print!("{answer}");
        Ok(())
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        header: Option<(&str, &str)>,
        body: Bytes,
    ) -> Result<(StatusCode, String)> {
        let base: Uri = self
            .url
            .parse()
            .with_context(|| format!("{} is not a URL", self.url))?;
        if base.scheme_str() != Some("http") {
            bail!("{}: the admin API is reached over http://", self.url);
        }
        let host = base.host().context("the admin URL names no host")?;
        let port = base.port_u16().unwrap_or(80);
        let stream = TcpStream::connect((host, port))
            .await
            .with_context(|| format!("cannot reach {}", self.url))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var("RVM_ADMIN_TOKEN").ok());
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, format!("{host}:{port}"));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let response = sender
            .send_request(request.body(Full::new(body))?)
            .await
            .with_context(|| format!("{} did not answer", self.url))?;
        let status = response.status();
        let answer = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&answer).into_owned()))
    }
}

/// Compiles the component as a server would (with the `RVM_*` settings of
/// this environment as the defaults), then writes it into `store`.
async fn deploy_into(
    store: &str,
    name: Name,
    bytes: Bytes,
    settings: ComponentSettings,
) -> Result<()> {
    let Config { pool, policy } = Config::from_env()?;
    let runtime = Arc::new(Runtime::new(&pool, Embedding::Serving)?);
    let cache = ServiceConfig::from_env()?
        .cache_dir
        .map(|dir| CodeCache::open(&dir))
        .transpose()?;
    let service = Service::new(runtime, Store::open(store)?, policy, cache);
    match service.deploy(name, bytes, settings).await {
        Ok((record, replaced)) => {
            if let Some(hash) = replaced {
                service.collect(&hash).await;
            }
            println!("{}", serde_json::to_string(&record.listed())?);
            Ok(())
        }
        Err(DeployError::Invalid(why)) => bail!("refused: {why}"),
        Err(DeployError::Store(error)) => Err(error.context("the store failed")),
    }
}
