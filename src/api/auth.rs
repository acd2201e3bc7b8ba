//! Who may use the control endpoints: the token, compared in constant
//! time, or on a loopback bind without one this machine's clients (and no
//! page of another origin).

use super::*;

/// Constant-time comparison (the token must not leak through timing).
pub(super) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who may use a control endpoint: the one rule for every control verb
/// (`/api/workers/{world}/…`, `/api/reload`, `/api/manual-update`,
/// `/api/vip/add`, `/api/vip/remove`).
///
/// - A token is configured: the request must carry it as
///   `Authorization: Bearer <token>` (401 otherwise).
/// - No token, API served on loopback only ([`ApiState::bound_to`]): any
///   client of this machine may, as in the replaced system, except a page
///   of another origin (a browser's `Origin` that is not this machine's:
///   403 `foreign_origin`), so a site on the internet cannot drive the pool
///   through a visitor's browser.
/// - No token otherwise: 403 `control_disabled`.
pub(super) fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.inner.token.as_deref() else {
        if !state.loopback {
            return Err(ApiError::ControlDisabled);
        }
        return match headers.get(header::ORIGIN) {
            None => Ok(()),
            Some(origin) => {
                let origin = origin.to_str().unwrap_or("(not text)");
                if local_origin(origin) {
                    Ok(())
                } else {
                    Err(ApiError::ForeignOrigin(origin.chars().take(200).collect()))
                }
            }
        };
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match given {
        Some(token) if same_secret(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// A browser `Origin` of this machine: `http(s)://localhost`, a
/// `*.localhost` name, or a loopback address, any port.
pub(super) fn local_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.trim().split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    if rest.contains(['/', '@', '?', '#']) {
        return false;
    }
    let host = match rest.strip_prefix('[') {
        // [::1]:port
        Some(v6) => match v6.split_once(']') {
            Some((addr, port)) if port.is_empty() || port.starts_with(':') => addr,
            _ => return false,
        },
        None => rest.rsplit_once(':').map_or(rest, |(h, _)| h),
    };
    let host = host.to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
