//! The dashboard: `GET /` (the page) and `GET /assets/{file}` (its script,
//! styles and the vendored chart library), every byte embedded in the
//! binary, so the page works offline and needs no build step.
//!
//! The page reads the ordinary API (`/api/workers`, `/api/events`,
//! `/api/deltas`, the rankings endpoints) and sends control requests with
//! the token the operator pastes; the server side is only these files.
//!
//! Caching: the page itself is `no-cache` (revalidated with its ETag), and
//! names its assets with `?v=<hash of every asset>`; an asset requested
//! with the current hash is `immutable` for a year, any other request of it
//! is `no-cache` with an ETag.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: &str = include_str!("dashboard/index.html");

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("dashboard/app.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("dashboard/uPlot.min.css"),
    },
    Asset {
        name: "uPlot.LICENSE",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("dashboard/uPlot.LICENSE"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("dashboard/favicon.svg"),
    },
];

/// What the page may load: only this origin; no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

const LONG_CACHE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The dashboard's routes, to merge into [`super::app`].
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
}

/// FNV-1a, 64 bits: a stable content hash (not a security boundary).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The version of the asset set: changes when any asset changes.
fn version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let parts: Vec<&[u8]> = ASSETS.iter().map(|a| a.body).collect();
        format!("{:016x}", fnv1a(&parts))
    })
}

/// The page, with the asset version filled in, and its ETag.
fn page() -> &'static (String, String) {
    static P: OnceLock<(String, String)> = OnceLock::new();
    P.get_or_init(|| {
        let html = INDEX.replace("{{v}}", version());
        let etag = format!("\"{:016x}\"", fnv1a(&[html.as_bytes()]));
        (html, etag)
    })
}

fn asset_etag(a: &Asset) -> String {
    format!("\"{:016x}\"", fnv1a(&[a.body]))
}

/// Whether `If-None-Match` lists `etag` (or `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn respond(
    headers: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let mut response = if not_modified(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn index(headers: HeaderMap) -> Response {
    let (html, etag) = page();
    let mut response = respond(
        &headers,
        etag,
        "text/html; charset=utf-8",
        REVALIDATE,
        html.as_bytes(),
    );
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// An asset's query: `v`, the version the page asked for (other
/// parameters are ignored).
#[derive(serde::Deserialize)]
struct AssetQuery {
    v: Option<String>,
}

async fn asset(
    Path(file): Path<String>,
    super::query::Lenient(query): super::query::Lenient<AssetQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = ASSETS
        .iter()
        .find(|a| a.name == file)
        .ok_or(ApiError::NoRoute)?;
    let current = query.v.as_deref() == Some(version());
    let cache = if current { LONG_CACHE } else { REVALIDATE };
    Ok(respond(
        &headers,
        &asset_etag(a),
        a.content_type,
        cache,
        a.body,
    ))
}

/// Total bytes of the page and every asset it loads (the licence is not
/// loaded by the page).
pub fn page_bytes() -> usize {
    page().0.len()
        + ASSETS
            .iter()
            .filter(|a| !a.name.ends_with(".LICENSE"))
            .map(|a| a.body.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut req = Request::get(uri);
        if let Some(tag) = if_none_match {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        routes::<()>()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    fn header_of(r: &Response, name: header::HeaderName) -> &str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn page_and_assets_have_types_and_caching() {
        let r = get("/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_of(&r, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header_of(&r, header::CACHE_CONTROL), "no-cache");
        assert!(header_of(&r, header::CONTENT_SECURITY_POLICY).contains("default-src 'self'"));
        let etag = header_of(&r, header::ETAG).to_string();
        assert_eq!(
            get("/", Some(&etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );

        let (html, _) = page();
        assert!(!html.contains("{{v}}"));
        for a in ASSETS.iter().filter(|a| !a.name.ends_with(".LICENSE")) {
            let uri = format!("/assets/{}?v={}", a.name, version());
            assert!(html.contains(&uri), "the page does not load {uri}");
            let r = get(&uri, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{uri}");
            assert_eq!(header_of(&r, header::CONTENT_TYPE), a.content_type);
            assert_eq!(header_of(&r, header::CACHE_CONTROL), LONG_CACHE);
            assert_eq!(header_of(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            // Without the current version: revalidate.
            let r = get(&format!("/assets/{}", a.name), None).await;
            assert_eq!(header_of(&r, header::CACHE_CONTROL), REVALIDATE);
            let tag = header_of(&r, header::ETAG).to_string();
            let r = get(&format!("/assets/{}", a.name), Some(&tag)).await;
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        }
        assert_eq!(
            get("/assets/nope.js", None).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/assets/..%2Fmod.rs", None).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_stays_small() {
        let (html, _) = page();
        let texts = std::iter::once(html.as_bytes())
            .chain(
                ASSETS
                    .iter()
                    .filter(|a| !a.name.starts_with("uPlot"))
                    .map(|a| a.body),
            )
            .map(String::from_utf8_lossy);
        for text in texts {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                // The SVG namespace is an identifier, not a request.
                let text = text.replace("http://www.w3.org/2000/svg", "");
                assert!(!text.contains(needle), "{needle} in an asset");
            }
        }
        assert!(
            page_bytes() < 300 * 1024,
            "the page is {} bytes",
            page_bytes()
        );
    }
}
