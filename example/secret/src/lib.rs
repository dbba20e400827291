//! A guest written for the RVM service's `rvm` world: it answers with the
//! application's client secret and a product computed by the host.
//!
//! `GET /?a=6&b=7` → `secret: <client-secret()>` and `product: 42`.

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

use exports::wasi::http::incoming_handler::Guest;
use rvm::lambda::host::{client_secret, multiply};
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Secret;

impl Guest for Secret {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let query = request.path_with_query().unwrap_or_default();
        let a = query_number(&query, "a").unwrap_or(6.0);
        let b = query_number(&query, "b").unwrap_or(7.0);
        let body = format!("secret: {}\nproduct: {}\n", client_secret(), multiply(a, b));

        let headers = Fields::from_list(&[
            ("content-type".into(), b"text/plain".to_vec()),
            ("content-length".into(), body.len().to_string().into_bytes()),
        ])
        .expect("valid header fields");
        let response = OutgoingResponse::new(headers);
        let response_body = response.body().expect("response body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = response_body.write().expect("body stream is taken once");
        stream.blocking_write_and_flush(body.as_bytes()).expect("write body");
        drop(stream);
        OutgoingBody::finish(response_body, None).expect("finish body");
    }
}

/// The number given as `name=` in the query string, if any.
fn query_number(path_with_query: &str, name: &str) -> Option<f32> {
    let (_, query) = path_with_query.split_once('?')?;
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.parse().ok())
}

export!(Secret);
