//! Which of a response's header fields go to Unit's router.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Unit carries header names of at most this many bytes (a `uint8_t` length).
pub const MAX_FIELD_NAME: usize = 255;

/// Fields that describe the connection, not the response: the router frames
/// the response to the client itself, and would repeat a `Transfer-Encoding`.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// A field name longer than Unit carries.
#[derive(Debug, PartialEq, Eq)]
pub struct NameTooLong<'a>(pub &'a HeaderName);

/// The fields to send, in order, without the hop-by-hop ones.
pub fn fields(headers: &HeaderMap) -> Result<Vec<(&HeaderName, &HeaderValue)>, NameTooLong<'_>> {
    headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(name))
        .map(|(name, value)| {
            if name.as_str().len() > MAX_FIELD_NAME {
                Err(NameTooLong(name))
            } else {
                Ok((name, value))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn hop_by_hop_fields_are_dropped_and_the_rest_kept_in_order() {
        let headers = headers(&[
            ("content-type", "text/plain"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("x-one", "1"),
            ("keep-alive", "timeout=5"),
            ("upgrade", "websocket"),
            ("x-two", "2"),
        ]);
        let kept: Vec<(&str, &str)> = fields(&headers)
            .unwrap()
            .into_iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            kept,
            [
                ("content-type", "text/plain"),
                ("x-one", "1"),
                ("x-two", "2")
            ]
        );
    }

    #[test]
    fn a_name_longer_than_unit_carries_is_refused() {
        let longest = "x".repeat(MAX_FIELD_NAME);
        assert_eq!(fields(&headers(&[(&longest, "v")])).unwrap().len(), 1);
        let too_long = "x".repeat(MAX_FIELD_NAME + 1);
        let headers = headers(&[("a", "1"), (&too_long, "v")]);
        let NameTooLong(name) = fields(&headers).unwrap_err();
        assert_eq!(name.as_str(), too_long);
    }
}
