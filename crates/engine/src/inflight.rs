//! A request in flight, from its guest's start to its log line: what the line
//! says of it ([`RequestRecord`]), how its guest's run ended ([`Outcome`]), and
//! stopping the guest if the response is abandoned ([`Inflight`]).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{Method, Response, StatusCode};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::failure::Failure;
use crate::policy::Policy;

/// How a guest's run ended, and the fuel it used (if known).
pub(crate) struct Outcome {
    pub(crate) result: Result<(), Failure>,
    pub(crate) fuel: Option<u64>,
}

/// What a request's log line says of it.
#[derive(Clone)]
pub(crate) struct RequestRecord {
    app: Arc<str>,
    /// Its application's policy, which names the settings a failure may run into.
    policy: Arc<Policy>,
    method: Method,
    path: String,
    started: Instant,
}

impl RequestRecord {
    pub(crate) fn new<B>(
        app: &Arc<str>,
        policy: &Arc<Policy>,
        request: &http::Request<B>,
    ) -> RequestRecord {
        RequestRecord {
            app: Arc::clone(app),
            policy: Arc::clone(policy),
            method: request.method().clone(),
            // The query is left out: it may carry tokens.
            path: request.uri().path().to_string(),
            started: Instant::now(),
        }
    }

    pub(crate) fn served(&self, status: StatusCode, fuel: Option<u64>) {
        tracing::info!(
            app = %self.app, method = %self.method, path = %self.path, status = status.as_u16(),
            ms = self.millis(), fuel = %Fuel(fuel), "request served"
        );
    }

    pub(crate) fn log_failure(&self, status: StatusCode, fuel: Option<u64>, failure: &Failure) {
        tracing::error!(
            app = %self.app, method = %self.method, path = %self.path, status = status.as_u16(),
            ms = self.millis(), fuel = %Fuel(fuel), cause = %failure.cause(&self.policy.names),
            "request failed"
        );
    }

    /// Logs how a guest's run ended, after a response with `status`; the
    /// failure's cause, if it failed.
    fn log_outcome(
        &self,
        status: StatusCode,
        outcome: Result<Outcome, oneshot::error::RecvError>,
    ) -> Result<(), String> {
        let (failure, fuel) = match outcome {
            Ok(Outcome {
                result: Ok(()),
                fuel,
            }) => {
                self.served(status, fuel);
                return Ok(());
            }
            Ok(Outcome {
                result: Err(failure),
                fuel,
            }) => (failure, fuel),
            Err(_) => (Failure::Host(LOST.into()), None),
        };
        self.log_failure(status, fuel, &failure);
        Err(failure.cause(&self.policy.names).to_string())
    }

    /// Logs a failure that happened before any header was sent; answers it.
    fn failed<B: From<String>>(&self, failure: Failure, fuel: Option<u64>) -> Response<B> {
        self.log_failure(failure.status(), fuel, &failure);
        failure.response()
    }

    /// Logs a request whose client went away before the end of its response.
    pub(crate) fn abandoned(&self, status: StatusCode) {
        tracing::warn!(
            app = %self.app, method = %self.method, path = %self.path,
            status = status.as_u16(), ms = self.millis(),
            "response abandoned before its end (client gone); guest stopped"
        );
    }

    fn millis(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1e6).round() / 1e3
    }
}

/// Fuel for a log line: `-` when unknown.
struct Fuel(Option<u64>);

impl std::fmt::Display for Fuel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(fuel) => write!(f, "{fuel}"),
            None => f.write_str("-"),
        }
    }
}

/// A request whose guest runs in its own task. Dropping it before the guest's
/// outcome was seen stops the guest, unless the client already has the whole
/// response: then the guest may finish (within its limits) and is logged then.
pub(crate) struct Inflight {
    record: RequestRecord,
    task: JoinHandle<()>,
    outcome: oneshot::Receiver<Outcome>,
    status: StatusCode,
    /// The response's declared Content-Length, and the body bytes passed on so far.
    declared: Option<u64>,
    sent: u64,
    logged: bool,
}

impl Inflight {
    pub(crate) fn new(
        record: RequestRecord,
        task: JoinHandle<()>,
        outcome: oneshot::Receiver<Outcome>,
    ) -> Inflight {
        Inflight {
            record,
            task,
            outcome,
            status: StatusCode::OK,
            declared: None,
            sent: 0,
            logged: false,
        }
    }

    /// The response head the guest chose.
    pub(crate) fn with_head(mut self, head: &http::response::Parts) -> Inflight {
        self.status = head.status;
        self.declared = head
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        self
    }

    /// Whether the client has all of the response it will get, so that the
    /// front end may stop reading the body (hyper stops at Content-Length, and
    /// sends no body for HEAD, 204 and 304).
    fn delivered(&self) -> bool {
        self.record.method == Method::HEAD
            || matches!(
                self.status,
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            )
            || self.declared.is_some_and(|declared| self.sent >= declared)
    }

    /// The guest ended without a response (`failure` is `None`), or answered
    /// with an error code: waits for its outcome and answers with its failure.
    pub(crate) async fn failed_before_headers<B: From<String>>(
        mut self,
        failure: Option<Failure>,
    ) -> Response<B> {
        let outcome = (&mut self.outcome).await;
        self.logged = true;
        let (guest_failure, fuel) = match outcome {
            Ok(Outcome { result, fuel }) => (result.err(), fuel),
            Err(_) => (Some(Failure::Host(LOST.into())), None),
        };
        let failure = failure.or(guest_failure).unwrap_or(Failure::NoResponse);
        self.record.failed(failure, fuel)
    }

    /// Counts body bytes passed on to the front end.
    pub(crate) fn sent(&mut self, bytes: usize) {
        self.sent += bytes as u64;
    }

    /// What is left of the response's declared Content-Length, if it declared one.
    pub(crate) fn left_to_send(&self) -> Option<u64> {
        self.declared
            .map(|declared| declared.saturating_sub(self.sent))
    }

    /// The body ended, cleanly unless `stream_error` says otherwise; whether it
    /// ended well also depends on the guest's outcome. Logs it; the cause if
    /// it did not end well.
    pub(crate) fn poll_end(
        &mut self,
        cx: &mut Context<'_>,
        stream_error: &mut Option<String>,
    ) -> Poll<Result<(), String>> {
        let mut outcome = ready!(Pin::new(&mut self.outcome).poll(cx));
        self.logged = true;
        if let (
            Ok(Outcome {
                result: result @ Ok(()),
                ..
            }),
            Some(error),
        ) = (&mut outcome, stream_error.take())
        {
            *result = Err(Failure::BodyAborted(error));
        }
        Poll::Ready(self.record.log_outcome(self.status, outcome))
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        if self.logged {
            return;
        }
        if self.delivered()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Log the guest's outcome when it comes, without holding the response.
            let (record, status) = (self.record.clone(), self.status);
            let (_, closed) = oneshot::channel();
            let outcome = std::mem::replace(&mut self.outcome, closed);
            runtime.spawn(async move {
                let _ = record.log_outcome(status, outcome.await);
            });
            return;
        }
        self.task.abort();
        self.record.abandoned(self.status);
    }
}

/// Why a request has no outcome: its task ended without reporting one.
const LOST: &str = "the guest task was lost";
