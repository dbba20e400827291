//! The admin API, as RVM's: `POST` or `PUT /deploy/{name}` with the component
//! as the body and its settings as query parameters, `GET /deploy`,
//! `GET /deploy/{name}`, `DELETE /deploy/{name}`. Answers are JSON; a refusal
//! is `{"error": …}`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use rvm_engine::{BodyError, BodyLimit, ResponseBody};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::name::Name;
use crate::service::{DeployError, Service};
use crate::settings::ComponentSettings;

/// Header carrying a deploy's client secret, which stays out of access logs.
pub const SECRET_HEADER: &str = "x-rvm-client-secret";
/// Where deploys and listings are.
const PREFIX: &str = "/deploy";

pub struct Admin {
    service: Arc<Service>,
    /// Every call must carry it as a bearer token, when set.
    token: Option<String>,
    /// Largest component a deploy may upload.
    max_component_size: u64,
}

impl Admin {
    pub fn new(service: Arc<Service>, token: Option<String>, max_component_size: u64) -> Admin {
        Admin {
            service,
            token,
            max_component_size,
        }
    }

    pub async fn handle<B>(&self, request: http::Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if !self.authorized(&request) {
            let mut response = error(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
        let path = request.uri().path();
        let name = match path.strip_prefix(PREFIX) {
            Some("" | "/") => None,
            Some(rest) => match rest.strip_prefix('/') {
                Some(name) => Some(name.to_string()),
                None => return error(StatusCode::NOT_FOUND, "no such path: see /deploy"),
            },
            None => return error(StatusCode::NOT_FOUND, "no such path: see /deploy"),
        };
        let method = request.method().clone();
        let Some(name) = name else {
            return match method {
                Method::GET => self.list().await,
                _ => not_allowed("GET"),
            };
        };
        let name = match Name::parse(&name) {
            Ok(name) => name,
            Err(why) => return error(StatusCode::BAD_REQUEST, &why),
        };
        match method {
            Method::POST | Method::PUT => self.deploy(name, request).await,
            Method::GET => self.show(&name).await,
            Method::DELETE => self.delete(&name).await,
            _ => not_allowed("GET, POST, PUT, DELETE"),
        }
    }

    fn authorized<B>(&self, request: &http::Request<B>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        given.ct_eq(token.as_bytes()).into()
    }

    async fn deploy<B>(&self, name: Name, request: http::Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = BodyLimit(self.max_component_size);
        if limit.declared_over(&request) {
            return too_large(limit);
        }
        let secret = match request
            .headers()
            .get(SECRET_HEADER)
            .map(HeaderValue::to_str)
        {
            None => None,
            Some(Ok(secret)) => Some(secret.to_string()),
            Some(Err(_)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("{SECRET_HEADER} is not text"),
                );
            }
        };
        let settings =
            match ComponentSettings::from_query(request.uri().query().unwrap_or(""), secret) {
                Ok(settings) => settings,
                Err(why) => return error(StatusCode::BAD_REQUEST, &why),
            };
        let bytes = match limit.read(request.into_body()).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return too_large(limit),
            Err(BodyError::Unreadable(why)) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("the upload failed: {why}"),
                );
            }
        };
        match self.service.deploy(name.clone(), bytes, settings).await {
            Ok((record, replaced)) => {
                tracing::info!(component = %name, hash = %record.hash, size = record.size, "component deployed");
                if let Some(hash) = replaced {
                    let service = Arc::clone(&self.service);
                    tokio::spawn(async move { service.collect(&hash).await });
                }
                answer(
                    StatusCode::OK,
                    &json!({
                        "name": record.name,
                        "hash": record.hash,
                        "size": record.size,
                        "deployed_at": record.deployed_at,
                    }),
                )
            }
            Err(DeployError::Invalid(why)) => {
                tracing::warn!(component = %name, "deploy refused: {why}");
                error(StatusCode::BAD_REQUEST, &why)
            }
            Err(DeployError::Store(e)) => {
                tracing::error!(component = %name, "deploy failed in the store: {e:#}");
                error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the store failed: {e:#}"),
                )
            }
        }
    }

    async fn list(&self) -> Response<ResponseBody> {
        match self.service.records().await {
            Ok(records) => {
                let listed: Vec<_> = records.iter().map(|record| record.listed()).collect();
                answer(StatusCode::OK, &json!(listed))
            }
            Err(e) => store_failed(&e),
        }
    }

    async fn show(&self, name: &Name) -> Response<ResponseBody> {
        match self.service.record(name).await {
            Ok(Some(record)) => answer(StatusCode::OK, &json!(record.listed())),
            Ok(None) => error(StatusCode::NOT_FOUND, &format!("no component named {name}")),
            Err(e) => store_failed(&e),
        }
    }

    async fn delete(&self, name: &Name) -> Response<ResponseBody> {
        match self.service.delete(name).await {
            Ok(Some(record)) => {
                tracing::info!(component = %name, "component deleted");
                let service = Arc::clone(&self.service);
                tokio::spawn(async move { service.collect(&record.hash).await });
                answer(StatusCode::OK, &json!({ "deleted": name }))
            }
            Ok(None) => error(StatusCode::NOT_FOUND, &format!("no component named {name}")),
            Err(e) => store_failed(&e),
        }
    }
}

fn answer(status: StatusCode, body: &serde_json::Value) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(format!("{body}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, why: &str) -> Response<ResponseBody> {
    answer(status, &json!({ "error": why }))
}

fn too_large(limit: BodyLimit) -> Response<ResponseBody> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "the component is larger than {} bytes (RVM_MAX_COMPONENT_SIZE)",
            limit.0
        ),
    )
}

fn not_allowed(allowed: &'static str) -> Response<ResponseBody> {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn store_failed(e: &anyhow::Error) -> Response<ResponseBody> {
    tracing::error!("the store failed: {e:#}");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("the store failed: {e:#}"),
    )
}
