//! The response body a front end sends: the guest's stream, ended as the
//! guest's run ended, or a short message from the engine.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::inflight::Inflight;

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
}

/// A short message from the engine (a failure's answer).
impl From<String> for ResponseBody {
    fn from(text: String) -> ResponseBody {
        ResponseBody(Kind::Message(Some(Bytes::from(text))))
    }
}

/// Why a body did not end cleanly: the front end must cut the response off,
/// so that the client does not take it for whole.
#[derive(Debug)]
pub struct BodyCutOff(String);

impl std::fmt::Display for BodyCutOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyCutOff {}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BodyCutOff;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyCutOff>>> {
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
                                inflight.sent(data.len());
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
                    Err(cause) => Some(Err(BodyCutOff(cause))),
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
                stream, inflight, ..
            } => inflight
                .left_to_send()
                .map_or_else(|| stream.size_hint(), SizeHint::with_exact),
        }
    }
}
