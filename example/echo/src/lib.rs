//! Streams the request body back as the response body, chunk by chunk, and
//! reports what the guest saw of the request in `x-echo-*` response headers.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::StreamError;

/// Largest piece moved from the request stream to the response stream at once.
const CHUNK: u64 = 64 * 1024;

struct Echo;

impl Guest for Echo {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let mut fields = vec![
            ("x-echo-method".to_string(), method_name(&request).into_bytes()),
            (
                "x-echo-uri".to_string(),
                request.path_with_query().unwrap_or_default().into_bytes(),
            ),
        ];
        for (name, value) in request.headers().entries() {
            // A request of known length gets a response of the same length.
            if name == "content-length" {
                fields.push((name.clone(), value.clone()));
            }
            fields.push((format!("x-echo-{name}"), value));
        }
        let response = OutgoingResponse::new(Fields::from_list(&fields).expect("valid fields"));
        let response_body = response.body().expect("response body is taken once");
        ResponseOutparam::set(out, Ok(response));

        let request_body = request.consume().expect("request body is taken once");
        copy(&request_body, &response_body);
        IncomingBody::finish(request_body);
        OutgoingBody::finish(response_body, None).expect("finish response body");
    }
}

fn copy(from: &IncomingBody, to: &OutgoingBody) {
    let input = from.stream().expect("request stream is taken once");
    let output = to.write().expect("response stream is taken once");
    loop {
        match output.blocking_splice(&input, CHUNK) {
            Ok(_) => {}
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => panic!("echo failed: {}", e.to_debug_string()),
        }
    }
    output.blocking_flush().expect("flush response body");
}

fn method_name(request: &IncomingRequest) -> String {
    use wasip2::http::types::Method;
    match request.method() {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other,
    }
}

wasip2::http::proxy::export!(Echo);
