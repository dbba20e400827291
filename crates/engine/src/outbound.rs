//! Outbound HTTP policy: which `scheme://host[:port]` a guest may call through
//! `wasi:http/outgoing-handler`. Anything not allowed is refused with
//! `HTTP-request-denied` before a connection is attempted.

use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::names::NamedAs;

/// One allowed destination; each part may hold `*` wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    scheme: String,
    host: String,
    /// `None`: the scheme's default port.
    port: Option<String>,
}

/// The destinations a guest may call. Empty (the default) allows none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Arc<[Pattern]>);

impl AllowList {
    /// Parses a comma list such as `https://*.example.com,http://127.0.0.1:*`.
    pub fn parse(list: &str) -> Result<AllowList, String> {
        let patterns = list
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Pattern::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList(patterns.into()))
    }

    /// Whether a request to `scheme://host:port` may go out.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let (scheme, host) = (scheme.to_ascii_lowercase(), host.to_ascii_lowercase());
        self.0
            .iter()
            .any(|pattern| pattern.matches(&scheme, &host, port))
    }
}

impl Pattern {
    fn parse(entry: &str) -> Result<Pattern, String> {
        let bad = |why: &str| format!("{entry:?}: {why} (expected scheme://host[:port])");
        let (scheme, rest) = entry.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme.is_empty() || rest.is_empty() {
            return Err(bad("empty scheme or host"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("only a scheme, a host and a port may be given"));
        }
        // A port follows the last colon unless that colon is inside an IPv6 literal.
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (rest, None),
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if let Some(port) = port
            && port != "*"
            && port.parse::<u16>().is_err()
        {
            return Err(bad("the port must be a number or *"));
        }
        Ok(Pattern {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_ascii_lowercase(),
            port: port.map(str::to_string),
        })
    }

    /// `scheme` and `host` in lower case.
    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let port_matches = match &self.port {
            Some(pattern) => glob(pattern, &port.to_string()),
            None => default_port(scheme) == Some(port),
        };
        port_matches && glob(&self.scheme, scheme) && glob(&self.host, host)
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `*` matches any run of characters, everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            let Some(text) = text.strip_prefix(prefix) else {
                return false;
            };
            (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .any(|i| glob(rest, &text[i..]))
        }
    }
}

/// The `wasi:http` hooks of one request: outbound calls checked against the allow-list.
pub(crate) struct OutboundHooks {
    pub(crate) app: Arc<str>,
    pub(crate) allow: AllowList,
    /// The allow-list's name to the operator.
    pub(crate) named_as: &'static str,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .unwrap_or(0);
        if !self.allow.allows(&scheme, &host, port) {
            tracing::warn!(
                app = %self.app, %scheme, %host, port,
                "outbound request denied: not an allowed host{}", NamedAs(self.named_as)
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // The default sender is the one wasmtime ships; only the policy is ours.
        let default: &mut dyn WasiHttpHooks = wasmtime_wasi_http::default_hooks();
        default.send_request(request, options, fut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!AllowList::default().allows("https", "example.com", 443));
    }

    #[test]
    fn patterns_match_scheme_host_and_port() {
        let list = AllowList::parse("https://*.example.com, http://127.0.0.1:*, *://api.test:8080")
            .unwrap();
        assert!(list.allows("https", "api.example.com", 443));
        assert!(list.allows("HTTPS", "API.Example.com", 443));
        assert!(!list.allows("https", "example.com", 443));
        assert!(!list.allows("http", "api.example.com", 80));
        assert!(!list.allows("https", "api.example.com", 8443));
        assert!(list.allows("http", "127.0.0.1", 9999));
        assert!(!list.allows("http", "127.0.0.2", 9999));
        assert!(list.allows("http", "api.test", 8080));
        assert!(list.allows("https", "api.test", 8080));
        assert!(!list.allows("https", "api.test", 443));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for entry in [
            "example.com",
            "https://",
            "://x",
            "http://x/path",
            "http://x:port",
        ] {
            assert!(AllowList::parse(entry).is_err(), "{entry}");
        }
    }
}
