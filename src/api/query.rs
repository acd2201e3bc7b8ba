//! Typed query strings: a handler takes its parameters as a struct that
//! derives `Deserialize` (what it reads) and `IntoParams` (how
//! /api/openapi.json describes them), through one of two extractors whose
//! rejection is an [`ApiError`] (`bad_parameter`, naming the parameter):
//!
//! - [`Strict`], for worldpool's own endpoints: axum's `Query<T>`, after
//!   refusing a parameter the struct does not declare and one given twice.
//! - [`Lenient`], for the compatibility endpoints, as the replaced system
//!   read them: unknown parameters are ignored, the last of a repeated one
//!   wins, and an empty (or blank) value is as if it were absent.
//!
//! Values stay text in these structs; the handlers check them with the
//! helpers that write the message (`limit_param`, `limit_value`, …).

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;

use super::ApiError;

/// Query parameters, strictly: unknown or repeated ones are errors.
#[derive(Debug)]
pub(super) struct Strict<T>(pub T);

/// Query parameters, leniently: unknown ones are ignored, the last of a
/// repeated one wins, empty values are absent.
#[derive(Debug)]
pub(super) struct Lenient<T>(pub T);

/// The names `T` declares (what its `IntoParams` documents).
fn declared<T: IntoParams>() -> Vec<String> {
    T::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|p| p.name)
        .collect()
}

impl<T, S> FromRequestParts<S> for Strict<T>
where
    T: DeserializeOwned + IntoParams + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let allowed = declared::<T>();
        let mut seen = std::collections::HashSet::new();
        for (k, _) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            if !allowed.iter().any(|a| *a == k) {
                return Err(ApiError::bad_param(
                    &k,
                    format!("unknown parameter; accepted: {}", allowed.join(", ")),
                ));
            }
            if !seen.insert(k.clone()) {
                return Err(ApiError::bad_param(&k, "given more than once"));
            }
        }
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(t)) => Ok(Strict(t)),
            Err(e) => Err(ApiError::bad_param("query", e.body_text())),
        }
    }
}

impl<T, S> FromRequestParts<S> for Lenient<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        lenient(parts.uri.query()).map(Lenient)
    }
}

/// `raw` read leniently into `T`.
pub(super) fn lenient<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // Each name once now: what `Query<T>` reads, without its refusal of a
    // repeated field.
    let once = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    serde_urlencoded::from_str(&once).map_err(|e| ApiError::bad_param("query", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, IntoParams, PartialEq)]
    struct Q {
        world: Option<String>,
        limit: Option<String>,
    }

    async fn strict(uri: &str) -> Result<Q, ApiError> {
        let (mut parts, ()) = Request::get(uri).body(()).expect("request").into_parts();
        Strict::<Q>::from_request_parts(&mut parts, &())
            .await
            .map(|Strict(q)| q)
    }

    #[tokio::test]
    async fn strict_refuses_unknown_and_repeated_parameters() {
        let q = strict("/x?world=S%C3%A3o+Paulo&limit=3").await;
        assert_eq!(
            q,
            Ok(Q {
                world: Some("São Paulo".into()),
                limit: Some("3".into())
            })
        );
        assert_eq!(
            strict("/x").await,
            Ok(Q {
                world: None,
                limit: None
            })
        );
        assert!(matches!(
            strict("/x?worlds=x").await,
            Err(ApiError::BadParam { ref param, ref message })
                if param == "worlds" && message.contains("accepted: world, limit")
        ));
        assert!(matches!(
            strict("/x?world=a&world=b").await,
            Err(ApiError::BadParam { ref param, .. }) if param == "world"
        ));
    }

    #[test]
    fn lenient_ignores_unknown_keeps_the_last_and_drops_empty_values() {
        let q: Q = lenient(Some("world=a&world=b&limit=+&other=1")).expect("lenient");
        assert_eq!(
            q,
            Q {
                world: Some("b".into()),
                limit: None
            }
        );
        let q: Q = lenient(None).expect("no query");
        assert_eq!(q.world, None);
    }
}
