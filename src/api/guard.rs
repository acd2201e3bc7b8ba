//! What a browser can be made to send: the checks every request passes
//! before its handler, in one middleware ([`guard`]).
//!
//! - **DNS rebinding.** A page on `evil.example` whose name the attacker
//!   points at 127.0.0.1 talks to the API as if same-origin, but its
//!   requests carry `Host: evil.example`. The `Host` header (or the
//!   request target's authority) must name this server: `localhost`, a
//!   loopback address (`127.0.0.1`, `[::1]`), the bound address, or one of
//!   `[api] allowed_hosts` (`"*"` allows any); the port is not compared.
//!   A non-loopback bind on the unspecified address (`0.0.0.0`, `[::]`)
//!   answers to any IP literal (an IP in `Host` cannot be rebound). Else
//!   421 `host_not_allowed`. A request without any host (HTTP/1.0) comes
//!   from no browser and passes.
//! - **Cross-site requests.** A browser says where a request comes from in
//!   `Sec-Fetch-Site`; any method but GET, HEAD and OPTIONS coming from
//!   another site (`cross-site`, or `same-site`: another port of this
//!   host) is 403 `cross_site`, whatever it carries.
//! - **JSON bodies.** A form or `fetch` of another page can send
//!   `text/plain`, `application/x-www-form-urlencoded` or
//!   `multipart/form-data` to any address without asking; only
//!   `application/json` needs the page to be allowed first. So a request
//!   other than GET, HEAD and OPTIONS that has a body or a `Content-Type`
//!   must say `application/json` (or `application/…+json`), else 415
//!   `unsupported_media_type`. Excepted: the uploads (`/api/upload/…`,
//!   multipart with the token as `password`) and `/api/manual-update`,
//!   which also takes the token as a form field (the replaced system's
//!   pages send JSON).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::{ApiError, ApiState};

/// The names the API answers to (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    /// `[api] allowed_hosts`, lowercase, without brackets.
    extra: Vec<String>,
    /// `"*"` was given: every host.
    any: bool,
    /// The address the API is bound to, once known.
    bind: Option<IpAddr>,
}

impl AllowedHosts {
    /// Loopback names plus `extra` (`[api] allowed_hosts`; `"*"`: any).
    pub fn new(extra: &[String]) -> AllowedHosts {
        let mut out = AllowedHosts::default();
        for h in extra {
            let h = h.trim().trim_start_matches('[').trim_end_matches(']');
            if h == "*" {
                out.any = true;
            } else if !h.is_empty() {
                out.extra.push(h.to_ascii_lowercase());
            }
        }
        out
    }

    /// The same, for a server bound to `bind`.
    pub fn bound_to(mut self, bind: SocketAddr) -> AllowedHosts {
        self.bind = Some(bind.ip());
        self
    }

    /// Whether a `Host` value (with or without its port) names this server.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let name = host_name(host).to_ascii_lowercase();
        if name == "localhost" || self.extra.contains(&name) {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => true,
            Ok(ip) => match self.bind {
                Some(bind) if bind.is_unspecified() => true,
                Some(bind) => bind == ip,
                None => false,
            },
            Err(_) => false,
        }
    }
}

/// The name in a `Host` value: `[::1]:5000` → `::1`, `localhost:5000` →
/// `localhost`, a trailing dot dropped.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match host.rsplit_once(':') {
            // One colon: name and port.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        }
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// Whether a `Content-Type` is JSON: `application/json` or
/// `application/<anything>+json`, parameters ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim() != "0");
    length.unwrap_or(false) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// The checks of the module documentation, before any handler.
pub(super) async fn guard(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    match check(&state, &request) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::warn!(
                method = %request.method(),
                path = request.uri().path(),
                error = e.code(),
                "request refused: {}", e.message()
            );
            e.into_response()
        }
    }
}

fn check(state: &ApiState, request: &Request) -> Result<(), ApiError> {
    let headers = request.headers();
    let host = match headers.get(header::HOST) {
        Some(v) => Some(v.to_str().unwrap_or("")),
        None => request.uri().authority().map(|a| a.as_str()),
    };
    if let Some(host) = host
        && !state.allowed_hosts.allows(host)
    {
        return Err(ApiError::HostNotAllowed(
            host.chars().take(100).collect::<String>(),
        ));
    }
    let method = request.method();
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return Ok(());
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
        return Err(ApiError::CrossSite);
    }
    let path = request.uri().path();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    if path.starts_with("/api/upload/") {
        return Ok(());
    }
    match content_type {
        Some(ct) if is_json(ct) => Ok(()),
        Some(ct)
            if path == "/api/manual-update"
                && ct
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded") =>
        {
            Ok(())
        }
        Some(ct) => Err(ApiError::UnsupportedMediaType(
            ct.chars().take(100).collect(),
        )),
        None if has_body(headers) => Err(ApiError::UnsupportedMediaType(String::new())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_by_bind_and_config() {
        let loopback = AllowedHosts::new(&[]).bound_to("127.0.0.1:5000".parse().expect("addr"));
        let table: &[(&AllowedHosts, &str, bool)] = &[
            (&loopback, "localhost", true),
            (&loopback, "localhost:5000", true),
            (&loopback, "LOCALHOST:5000", true),
            (&loopback, "localhost.:5000", true),
            (&loopback, "127.0.0.1", true),
            (&loopback, "127.0.0.1:5000", true),
            (&loopback, "127.0.0.2:5000", true),
            (&loopback, "[::1]", true),
            (&loopback, "[::1]:5000", true),
            (&loopback, "evil.example", false),
            (&loopback, "evil.example:5000", false),
            (&loopback, "localhost.evil.example", false),
            (&loopback, "10.0.0.5:5000", false),
            (&loopback, "", false),
        ];
        for (hosts, host, want) in table {
            assert_eq!(hosts.allows(host), *want, "{host}");
        }
        let lan = AllowedHosts::new(&["Pool.Lan".into(), "[fd00::5]".into()])
            .bound_to("10.0.0.5:5000".parse().expect("addr"));
        assert!(lan.allows("pool.lan:5000"));
        assert!(lan.allows("[fd00::5]:5000"));
        assert!(lan.allows("10.0.0.5:5000"));
        assert!(lan.allows("localhost:5000"));
        assert!(!lan.allows("10.0.0.6:5000"));
        assert!(!lan.allows("evil.example"));
        let everywhere = AllowedHosts::new(&[]).bound_to("0.0.0.0:5000".parse().expect("addr"));
        assert!(everywhere.allows("192.168.1.9:5000"));
        assert!(everywhere.allows("[fe80::1]:5000"));
        assert!(!everywhere.allows("evil.example:5000"));
        let any = AllowedHosts::new(&["*".into()]);
        assert!(any.allows("evil.example"));
    }

    #[test]
    fn json_content_types() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json(ct), "{ct}");
        }
        for ct in [
            "text/plain",
            "text/plain; charset=application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "",
        ] {
            assert!(!is_json(ct), "{ct}");
        }
    }
}
