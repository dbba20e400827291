//! What an application process serves: its one component; or, in store mode,
//! the components of a store by name, or that store's admin API, kept in step
//! with the store by a thread of its own.

#![forbid(unsafe_code)]

use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::{Response, StatusCode};
use rvm_config::{Role, ServiceConfig};
use rvm_engine::{App, RequestBodyError, ResponseBody};
use rvm_service::{Admin, Handler, Service};
use tokio::runtime::Handle;

pub struct Serving {
    /// The Unit application's name, for log lines.
    name: String,
    handler: Handler,
    /// The runtime of the store's thread (store mode). Admin calls run there:
    /// the store's connections belong to it.
    store: Option<Handle>,
}

impl Serving {
    pub fn component(name: &str, app: App) -> Serving {
        Serving {
            name: name.to_string(),
            handler: Handler::App(Arc::new(app)),
            store: None,
        }
    }

    /// The store's components by name, or its admin API (`RVM_ROLE`). What the
    /// store holds is loaded before this returns, so that the first requests
    /// find it; a thread of its own then looks for changes every
    /// `RVM_STORE_POLL`, and compiles on threads of its own, so that no
    /// context's loop waits for either.
    pub fn store(name: &str, service: Service, config: &ServiceConfig) -> Result<Serving> {
        let service = Arc::new(service);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the store's event loop")?;
        match runtime.block_on(service.sync()) {
            Ok(()) => tracing::info!(
                app = name, store = %service.store().shown(), components = service.names().len(),
                "store loaded"
            ),
            Err(error) => tracing::error!(
                app = name, store = %service.store().shown(),
                "cannot read the store; serving nothing until it answers: {error:#}"
            ),
        }
        let store = runtime.handle().clone();
        let watched = Arc::clone(&service);
        let poll = config.poll;
        std::thread::Builder::new()
            .name("rvm-store".into())
            .spawn(move || runtime.block_on(watched.watch(poll)))
            .context("cannot start the store's thread")?;
        let handler = match config.role {
            Role::Invoke => Handler::Invoke(service),
            Role::Admin => Handler::Admin(Arc::new(Admin::new(
                service,
                config.admin_token.clone(),
                config.max_component_size,
            ))),
        };
        Ok(Serving {
            name: name.to_string(),
            handler,
            store: Some(store),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn handle<B>(&self, request: http::Request<B>) -> Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<RequestBodyError> + Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (Handler::Admin(_), Some(store)) = (&self.handler, &self.store) else {
            return self.handler.handle(request).await;
        };
        let handler = self.handler.clone();
        match store
            .spawn(async move { handler.handle(request).await })
            .await
        {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(app = %self.name, "the admin call failed: {error}");
                let mut response = Response::new(ResponseBody::from(
                    "{\"error\": \"the admin call failed\"}\n".to_string(),
                ));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }
        }
    }
}
