//! The smallest useful wasi:http component: a fixed plain-text answer.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

const BODY: &[u8] = b"Hello from rvm\n";

struct Hello;

impl Guest for Hello {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let headers = Fields::from_list(&[
            ("content-type".into(), b"text/plain".to_vec()),
            ("content-length".into(), BODY.len().to_string().into_bytes()),
        ])
        .expect("valid header fields");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("response body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let stream = body.write().expect("body stream is taken once");
        stream.blocking_write_and_flush(BODY).expect("write body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

wasip2::http::proxy::export!(Hello);
