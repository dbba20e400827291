//! Unit's request head as an `http::Request` for the engine.

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Method, Uri, Version};

/// A request head as libunit delivers it, copied out of its buffer.
#[derive(Debug)]
pub struct Head {
    pub method: Vec<u8>,
    pub version: Vec<u8>,
    /// The request target as the client sent it (path and query).
    pub target: Vec<u8>,
    pub server_name: Vec<u8>,
    pub tls: bool,
    pub content_length: u64,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The request, or why it cannot be one (the client gets a 400).
///
/// The URI is absolute: the scheme from the connection (TLS or not), the
/// authority from `Host` or else the server name, then the raw target.
pub fn request<B>(head: &Head, body: B) -> Result<http::Request<B>, String> {
    let method = Method::from_bytes(&head.method).map_err(|_| "invalid method".to_string())?;
    let version = match head.version.as_slice() {
        b"HTTP/1.0" => Version::HTTP_10,
        b"HTTP/2" | b"HTTP/2.0" => Version::HTTP_2,
        b"HTTP/3" | b"HTTP/3.0" => Version::HTTP_3,
        _ => Version::HTTP_11,
    };
    let host = head
        .fields
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"host"))
        .map_or(head.server_name.as_slice(), |(_, value)| value.as_slice());
    let authority = Authority::try_from(host).map_err(|_| "invalid Host".to_string())?;
    let target = PathAndQuery::try_from(head.target.as_slice())
        .map_err(|_| "invalid request target".to_string())?;
    let uri = Uri::builder()
        .scheme(if head.tls {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        })
        .authority(authority)
        .path_and_query(target)
        .build()
        .map_err(|e| format!("invalid request URI: {e}"))?;

    let mut request = http::Request::builder()
        .method(method)
        .version(version)
        .uri(uri);
    let headers = request.headers_mut().ok_or("invalid request")?;
    for (name, value) in &head.fields {
        let name = HeaderName::from_bytes(name).map_err(|_| "invalid header name".to_string())?;
        // Bytes that are not UTF-8 pass through as they are.
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| format!("invalid value of header {name}"))?;
        headers.append(name, value);
    }
    request
        .body(body)
        .map_err(|e| format!("invalid request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(fields: &[(&str, &[u8])]) -> Head {
        Head {
            method: b"GET".to_vec(),
            version: b"HTTP/1.1".to_vec(),
            target: b"/a/b?q=1".to_vec(),
            server_name: b"server.test".to_vec(),
            tls: false,
            content_length: 0,
            fields: fields
                .iter()
                .map(|(name, value)| (name.as_bytes().to_vec(), value.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn the_uri_is_absolute_with_the_host_and_the_raw_target() {
        let request = request(&head(&[("Host", b"example.test:8080")]), ()).unwrap();
        assert_eq!(request.uri(), "http://example.test:8080/a/b?q=1");
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers()["host"], "example.test:8080");
    }

    #[test]
    fn without_a_host_the_server_name_is_the_authority() {
        let mut head = head(&[]);
        head.tls = true;
        head.version = b"HTTP/1.0".to_vec();
        let request = request(&head, ()).unwrap();
        assert_eq!(request.uri(), "https://server.test/a/b?q=1");
        assert_eq!(request.version(), Version::HTTP_10);
    }

    #[test]
    fn header_bytes_that_are_not_utf8_pass_through_and_repeated_fields_stay() {
        let request = request(
            &head(&[("Host", b"h"), ("X-Raw", b"caf\xe9"), ("X-Raw", b"\xff")]),
            (),
        )
        .unwrap();
        let values: Vec<&[u8]> = request
            .headers()
            .get_all("x-raw")
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(values, [&b"caf\xe9"[..], b"\xff"]);
    }

    #[test]
    fn what_cannot_be_a_request_says_why() {
        let bad = |fields: &[(&str, &[u8])], edit: fn(&mut Head)| {
            let mut head = head(fields);
            edit(&mut head);
            request(&head, ()).unwrap_err()
        };
        assert_eq!(bad(&[("Host", b"a b")], |_| {}), "invalid Host");
        assert_eq!(
            bad(&[("Host", b"h")], |h| h.method = b"G T".to_vec()),
            "invalid method"
        );
        assert_eq!(
            bad(&[("Host", b"h")], |h| h.target = b"/a b".to_vec()),
            "invalid request target"
        );
        assert_eq!(
            bad(&[("Host", b"h"), ("Bad Name", b"v")], |_| {}),
            "invalid header name"
        );
        assert_eq!(
            bad(&[("Host", b"h"), ("X", b"a\nb")], |_| {}),
            "invalid value of header x"
        );
    }
}
