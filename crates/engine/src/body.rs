//! The response body a front end sends, and the bookkeeping of a request in
//! flight: its log line, and stopping its guest if the response is abandoned.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::failure::Failure;
use crate::request::failure_response;

/// How a guest's run ended, and the fuel it used (if known).
pub(crate) struct Outcome {
    pub(crate) result: Result<(), Failure>,
    pub(crate) fuel: Option<u64>,
}

/// What a request's log line says of it.
#[derive(Clone)]
pub(crate) struct RequestRecord {
    app: Arc<str>,
    method: Method,
    path: String,
    started: Instant,
}

impl RequestRecord {
    pub(crate) fn new<B>(app: &Arc<str>, request: &http::Request<B>) -> RequestRecord {
        RequestRecord {
            app: Arc::clone(app),
            method: request.method().clone(),
            // The query is left out: it may carry tokens.
            path: request.uri().path().to_string(),
            started: Instant::now(),
        }
    }

    fn served(&self, status: StatusCode, fuel: Option<u64>) {
        tracing::info!(
            app = %self.app, method = %self.method, path = %self.path, status = status.as_u16(),
            ms = self.millis(), fuel = %Fuel(fuel), "request served"
        );
    }

    fn log_failure(&self, status: StatusCode, fuel: Option<u64>, cause: &Failure) {
        tracing::error!(
            app = %self.app, method = %self.method, path = %self.path, status = status.as_u16(),
            ms = self.millis(), fuel = %Fuel(fuel), %cause, "request failed"
        );
    }

    /// Logs how a guest's run ended, after a response with `status`; the
    /// failure, if it failed.
    fn log_outcome(
        &self,
        status: StatusCode,
        outcome: Result<Outcome, oneshot::error::RecvError>,
    ) -> Result<(), Failure> {
        match outcome {
            Ok(Outcome {
                result: Ok(()),
                fuel,
            }) => {
                self.served(status, fuel);
                Ok(())
            }
            Ok(Outcome {
                result: Err(failure),
                fuel,
            }) => {
                self.log_failure(status, fuel, &failure);
                Err(failure)
            }
            Err(_) => {
                let failure = Failure::Host(LOST.into());
                self.log_failure(status, None, &failure);
                Err(failure)
            }
        }
    }

    /// Logs a failure that happened before any header was sent; answers it.
    pub(crate) fn failed(&self, failure: Failure, fuel: Option<u64>) -> Response<ResponseBody> {
        self.log_failure(failure.status(), fuel, &failure);
        failure_response(&failure)
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
    pub(crate) async fn failed_before_headers(
        mut self,
        failure: Option<Failure>,
    ) -> Response<ResponseBody> {
        let outcome = (&mut self.outcome).await;
        self.logged = true;
        let (guest_failure, fuel) = match outcome {
            Ok(Outcome { result, fuel }) => (result.err(), fuel),
            Err(_) => (Some(Failure::Host(LOST.into())), None),
        };
        let failure = failure.or(guest_failure).unwrap_or(Failure::NoResponse);
        self.record.failed(failure, fuel)
    }

    /// The body ended, cleanly unless `stream_error` says otherwise; whether it
    /// ended well also depends on the guest's outcome.
    fn poll_end(
        &mut self,
        cx: &mut Context<'_>,
        stream_error: &mut Option<String>,
    ) -> Poll<Result<(), Failure>> {
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
        tracing::warn!(
            app = %self.record.app, method = %self.record.method, path = %self.record.path,
            status = self.status.as_u16(), ms = self.record.millis(),
            "response abandoned before its end (client gone); guest stopped"
        );
    }
}

/// Why a request has no outcome: its task ended without reporting one.
const LOST: &str = "the guest task was lost";

/// A response body: the guest's stream, or a short message from the host.
pub struct ResponseBody(Kind);

enum Kind {
    Guest {
        stream: HyperOutgoingBody,
        ended: bool,
        stream_error: Option<String>,
        inflight: Inflight,
    },
    Message(Option<Bytes>),
}

impl ResponseBody {
    pub(crate) fn guest(stream: HyperOutgoingBody, inflight: Inflight) -> ResponseBody {
        ResponseBody(Kind::Guest {
            stream,
            ended: false,
            stream_error: None,
            inflight,
        })
    }

    pub(crate) fn message(text: String) -> ResponseBody {
        ResponseBody(Kind::Message(Some(Bytes::from(text))))
    }
}

/// Why a body did not end cleanly; the front end must cut the response off.
#[derive(Debug)]
pub struct BodyError(pub String);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyError {}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.0 {
            Kind::Message(text) => Poll::Ready(text.take().map(|text| Ok(Frame::data(text)))),
            Kind::Guest {
                stream,
                ended,
                stream_error,
                inflight,
            } => {
                if !*ended {
                    match ready!(Pin::new(stream).poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            if let Some(data) = frame.data_ref() {
                                inflight.sent += data.len() as u64;
                            }
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        // E.g. the guest wrote more or less than its Content-Length.
                        Some(Err(error)) => *stream_error = Some(format!("{error:?}")),
                        None => {}
                    }
                    *ended = true;
                }
                // A guest that stops mid-body leaves a stream that simply ends:
                // only its outcome tells a complete body from a cut-off one.
                Poll::Ready(match ready!(inflight.poll_end(cx, stream_error)) {
                    Ok(()) => None,
                    Err(failure) => Some(Err(BodyError(failure.to_string()))),
                })
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, Kind::Message(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Message(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
            // What is left of a declared Content-Length, so that a front end
            // need not read the header again.
            Kind::Guest {
                inflight:
                    Inflight {
                        declared: Some(declared),
                        sent,
                        ..
                    },
                ..
            } => SizeHint::with_exact(declared.saturating_sub(*sent)),
            Kind::Guest { stream, .. } => stream.size_hint(),
        }
    }
}
