//! Reading a request body whole under a bound on its size: a declared length
//! over it is refused before anything is read, and reading stops once the
//! bound is passed.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The most bytes a body read whole may hold.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub u64);

/// Why a body was not read whole.
#[derive(Debug)]
pub enum BodyError {
    /// It is larger than the limit.
    TooLarge,
    /// Its stream failed, for this reason.
    Unreadable(String),
}

impl BodyLimit {
    /// Whether the request's `Content-Length` is over the limit, so that it
    /// can be refused unread.
    pub fn declared_over<B>(self, request: &http::Request<B>) -> bool {
        request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > self.0)
    }

    /// The whole of `body`, if it is within the limit.
    pub async fn read<B>(self, body: B) -> Result<Bytes, BodyError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = usize::try_from(self.0).unwrap_or(usize::MAX);
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<LengthLimitError>() => Err(BodyError::TooLarge),
            Err(error) => Err(BodyError::Unreadable(error.to_string())),
        }
    }
}
