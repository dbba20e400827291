//! Unit's request head as an `http::Request` for the engine.

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Method, Uri, Version};

use crate::unit::Head;

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
