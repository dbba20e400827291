//! What a front end's listener, or a Unit application, serves.

use std::sync::Arc;

use bytes::Bytes;
use rvm_engine::{App, RequestBodyError, ResponseBody};

use crate::admin::Admin;
use crate::service::Service;

#[derive(Clone)]
pub enum Handler {
    /// One component (`rvm serve`, a Unit application of one component).
    App(Arc<App>),
    /// Components by name (`rvm server`'s invoke listener, Unit in store mode).
    Invoke(Arc<Service>),
    /// The deploy API (`rvm server`'s admin listener, Unit's admin role).
    Admin(Arc<Admin>),
}

impl Handler {
    pub async fn handle<B>(&self, request: http::Request<B>) -> http::Response<ResponseBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<RequestBodyError> + Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self {
            Handler::App(app) => app.handle(request).await,
            Handler::Invoke(service) => crate::invoke(service, request).await,
            Handler::Admin(admin) => admin.handle(request).await,
        }
    }
}
