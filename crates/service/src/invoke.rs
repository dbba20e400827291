//! Invoking a component by name: `/{name}/{rest}` runs `name` with the path
//! `/{rest}`, the query kept.

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderValue, Response, StatusCode, Uri};
use rvm_engine::{RequestBodyError, ResponseBody};

use crate::service::Service;

/// Serves `request` with the component its path names; `404` for none.
pub async fn invoke<B>(service: &Service, request: http::Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<RequestBodyError>,
{
    let (name, rest) = split(request.uri());
    let Some(deployed) = service.get(name) else {
        let mut response =
            Response::new(ResponseBody::from(format!("no component named {name:?}\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return response;
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = with_path(&parts.uri, &rest);
    deployed
        .app
        .handle(http::Request::from_parts(parts, body))
        .await
}

/// The component's name and the path and query the component sees.
fn split(uri: &Uri) -> (&str, String) {
    let path = uri.path().strip_prefix('/').unwrap_or(uri.path());
    let (name, rest) = path.split_once('/').unwrap_or((path, ""));
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    (name, format!("/{rest}{query}"))
}

fn with_path(uri: &Uri, path_and_query: &str) -> Uri {
    let mut parts = uri.clone().into_parts();
    // Made of a valid URI's own path and query, so it is one.
    parts.path_and_query = PathAndQuery::try_from(path_and_query).ok();
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_first_segment_and_the_rest_is_the_path() {
        let cases = [
            ("http://h/app/secret", "app", "/secret"),
            ("http://h/app/a/b?x=1&y", "app", "/a/b?x=1&y"),
            ("http://h/app", "app", "/"),
            ("http://h/app/", "app", "/"),
            ("http://h/app?q", "app", "/?q"),
            ("http://h/", "", "/"),
        ];
        for (uri, name, rest) in cases {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(split(&uri), (name, rest.to_string()), "{uri}");
            assert_eq!(with_path(&uri, rest).path_and_query().unwrap(), rest);
        }
    }
}
