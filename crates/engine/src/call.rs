//! Function mode: a request is a call of one of the component's exported
//! functions, `POST /{function}` (or `/{interface}/{function}`) with its
//! arguments as JSON, answered with its result as JSON; `GET /` describes them.

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use wasmtime::component::{InstancePre, Val};

use crate::body::{BodyError, BodyLimit};
use crate::failure::Failure;
use crate::functions::{Function, Functions};
use crate::guest::{Guest, add_fuel_headers};
use crate::host::Host;
use crate::inflight::RequestRecord;
use crate::json::{self, to_val, wit};
use crate::names::{ByteSize, NamedAs};
use crate::response::ResponseBody;

/// A call's answer, or why there is none; with the fuel it used, if it ran.
type Answer = (Result<Value, Failure>, Option<u64>);

pub(crate) async fn handle<B>(
    guest: &Guest,
    pre: &InstancePre<Host>,
    functions: &Functions,
    request: http::Request<B>,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let record = RequestRecord::new(guest.app_name(), guest.policy(), &request);
    let allow = match request.uri().path() {
        "/" => "GET, HEAD",
        _ => "POST",
    };
    let mut unanswered = Unanswered(Some(&record));
    let (result, fuel) = answer(guest, pre, functions, request).await;
    unanswered.0 = None;
    let (status, body) = match result {
        Ok(value) => {
            record.served(StatusCode::OK, fuel);
            (StatusCode::OK, value)
        }
        Err(failure) => {
            let status = failure.status();
            record.log_failure(status, fuel, &failure);
            let message = failure.client_message();
            (status, json!({ "error": message.trim_end() }))
        }
    };
    let mut response = Response::new(ResponseBody::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if let (true, Some(used)) = (guest.policy().fuel_headers, fuel) {
        add_fuel_headers(headers, used, guest.policy().limits.fuel_budget());
    }
    response
}

/// Logs a call whose client went away before its answer; the call, dropped
/// with it, is stopped and its instance dropped.
struct Unanswered<'a>(Option<&'a RequestRecord>);

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(record) = self.0 {
            record.abandoned(StatusCode::OK);
        }
    }
}

async fn answer<B>(
    guest: &Guest,
    pre: &InstancePre<Host>,
    functions: &Functions,
    request: http::Request<B>,
) -> Answer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let path = request.uri().path();
    let method = request.method();
    if path == "/" {
        if method == Method::GET || method == Method::HEAD {
            return (Ok(functions.description().clone()), None);
        }
        let why = format!("GET / describes the functions; {method} calls none");
        return (
            Err(Failure::Refused(StatusCode::METHOD_NOT_ALLOWED, why)),
            None,
        );
    }
    let Some(function) = functions.get(path) else {
        let why = format!("no function at {path}; GET / lists them");
        return (Err(Failure::Refused(StatusCode::NOT_FOUND, why)), None);
    };
    if method != Method::POST {
        let why = format!("{path} is called with POST, not {method}");
        return (
            Err(Failure::Refused(StatusCode::METHOD_NOT_ALLOWED, why)),
            None,
        );
    }
    if let Some(why) = &function.unavailable {
        let why = format!("{path} cannot be called with JSON: {why}");
        return (
            Err(Failure::Refused(StatusCode::NOT_IMPLEMENTED, why)),
            None,
        );
    }
    let bytes = match request.uri().query() {
        Some(query) if query.split('&').any(|pair| pair == "bytes=base64") => json::Bytes::Base64,
        _ => json::Bytes::Array,
    };
    let body = match read_body(guest, request).await {
        Ok(body) => body,
        Err(failure) => return (Err(failure), None),
    };
    // Read into WIT values only once the call has its place in the pool:
    // they take many times the bytes of their JSON.
    let args = || arguments(function, &body).map_err(Failure::BadRequest);
    let results = usize::from(function.result.is_some());
    let (result, fuel) = guest.call(pre, &function.index, args, results).await;
    let value = result.map(|out| match (out.first(), &function.result) {
        (Some(val), Some(ty)) => json::from_val(val, ty, bytes),
        _ => Value::Null,
    });
    (value, fuel)
}

/// The request's body, if it is no larger than the arguments may be.
async fn read_body<B>(guest: &Guest, request: http::Request<B>) -> Result<Bytes, Failure>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    let limit = BodyLimit(guest.policy().limits.max_args_size);
    let too_large = || {
        let named = NamedAs(guest.policy().names.args_size);
        let why = format!("the arguments exceed {}{named}", ByteSize(limit.0));
        Failure::Refused(StatusCode::PAYLOAD_TOO_LARGE, why)
    };
    if limit.declared_over(&request) {
        return Err(too_large());
    }
    let body = request
        .into_body()
        .map_err(Into::<wasmtime_wasi_http::Error>::into);
    limit.read(body).await.map_err(|error| match error {
        BodyError::TooLarge => too_large(),
        BodyError::Unreadable(why) => {
            Failure::BadRequest(format!("the request body could not be read: {why}"))
        }
    })
}

/// The arguments in `body`: an object of the parameters by name, or an array
/// of them in order; nothing at all for a function without parameters.
fn arguments(function: &Function, body: &[u8]) -> Result<Vec<Val>, String> {
    let params = &function.params;
    if body.iter().all(u8::is_ascii_whitespace) && params.is_empty() {
        return Ok(Vec::new());
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let names = || {
        let names: Vec<&str> = params.iter().map(|(name, _)| name.as_str()).collect();
        format!("({})", names.join(", "))
    };
    let values: Vec<Value> = match json {
        Value::Object(mut by_name) => {
            let values = params
                .iter()
                .map(|(name, ty)| {
                    by_name
                        .remove(name)
                        .ok_or_else(|| format!("parameter `{name}` ({}) is missing", wit(ty)))
                })
                .collect::<Result<_, _>>()?;
            if let Some(extra) = by_name.keys().next() {
                return Err(format!(
                    "no parameter `{extra}`; the parameters are {}",
                    names()
                ));
            }
            values
        }
        Value::Array(items) if items.len() == params.len() => items,
        Value::Array(items) => {
            return Err(format!(
                "expected {} arguments {}, got {}",
                params.len(),
                names(),
                items.len()
            ));
        }
        _ => {
            return Err(format!(
                "expected an object of the parameters by name or an array of them in order {}",
                names()
            ));
        }
    };
    params
        .iter()
        .zip(&values)
        .map(|((name, ty), value)| {
            to_val(ty, value).map_err(|e| format!("parameter `{name}`: {e}"))
        })
        .collect()
}
