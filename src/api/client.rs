//! A small HTTP/1.1 client (plain `http://` only) for `worldpool status`
//! `worldpool reload` and the benchmark's API load: one keep-alive
//! connection, GET and body-less POST.
//! The supervisor's binary carries no TLS stack and no reqwest.

use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One keep-alive connection to an `http://host:port[/prefix]` base URL.
pub struct HttpClient {
    authority: String,
    prefix: String,
    sender: Option<http1::SendRequest<Empty<Bytes>>>,
}

impl HttpClient {
    /// A client for `base` (`http://127.0.0.1:8080`); connects lazily.
    pub fn new(base: &str) -> anyhow::Result<HttpClient> {
        let url = url::Url::parse(base).with_context(|| format!("`{base}` is not a URL"))?;
        if url.scheme() != "http" {
            bail!("`{base}`: only http:// URLs are supported here");
        }
        let host = url
            .host_str()
            .with_context(|| format!("`{base}` has no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(HttpClient {
            authority,
            prefix: url.path().trim_end_matches('/').to_string(),
            sender: None,
        })
    }

    async fn connect(&mut self) -> anyhow::Result<&mut http1::SendRequest<Empty<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream =
                tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&self.authority))
                    .await
                    .map_err(|_| anyhow::anyhow!("no connection within 5 s"))
                    .and_then(|r| r.map_err(anyhow::Error::from))
                    .with_context(|| format!("cannot connect to {}", self.authority))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .context("HTTP handshake failed")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().context("no connection")
    }

    /// GET `path` (below the base URL's path); the status and the whole
    /// body. Reconnects once when the kept-alive connection was closed.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(Method::GET, path, None).await
    }

    /// POST to `path` with no body and, when given, a bearer token.
    pub async fn post(
        &mut self,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.send(Method::POST, path, token).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let uri = format!("{}{path}", self.prefix);
        let host = self.authority.clone();
        let auth = token.map(|t| format!("Bearer {t}"));
        let request = || {
            let mut r = Request::builder()
                .method(method.clone())
                .uri(uri.as_str())
                .header(header::HOST, host.as_str());
            if let Some(auth) = &auth {
                r = r.header(header::AUTHORIZATION, auth.as_str());
            }
            r.body(Empty::<Bytes>::new())
                .context("building the request")
        };
        let req = request()?;
        let sender = self.connect().await?;
        sender.ready().await.context("connection not ready")?;
        let response = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) if e.is_canceled() || e.is_closed() => {
                self.sender = None;
                let req = request()?;
                let sender = self.connect().await?;
                sender.send_request(req).await.context("request failed")?
            }
            Err(e) => return Err(e).context("request failed"),
        };
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok((status, body))
    }

    /// [`get`](Self::get) with a deadline.
    pub async fn get_within(
        &mut self,
        path: &str,
        limit: Duration,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        tokio::time::timeout(limit, self.get(path))
            .await
            .with_context(|| format!("no answer within {limit:?}"))?
    }
}

/// What to check when the API of a pool cannot be reached.
pub const UNREACHABLE_HINT: &str =
    "is `worldpool run` running? Point to it with --api URL or WORLDPOOL_API";

/// The `message` of an API error body, or the body's start when it is not
/// one.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        let body = br#"{"error":"x","message":"no such worker","status":404}"#;
        assert_eq!(error_message(body), "no such worker");
        assert_eq!(error_message(b"plain text"), "plain text");
    }

    #[test]
    fn base_urls() {
        let c = HttpClient::new("http://127.0.0.1:8080/").expect("url");
        assert_eq!(
            (c.authority.as_str(), c.prefix.as_str()),
            ("127.0.0.1:8080", "")
        );
        let c = HttpClient::new("http://localhost/pool").expect("url");
        assert_eq!(
            (c.authority.as_str(), c.prefix.as_str()),
            ("localhost:80", "/pool")
        );
        assert!(HttpClient::new("https://example.com").is_err());
        assert!(HttpClient::new("not a url").is_err());
    }

    #[tokio::test]
    async fn gets_over_one_connection() {
        let app = axum::Router::new().route("/x", axum::routing::get(|| async { "hi" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut c = HttpClient::new(&format!("http://{addr}")).expect("url");
        for _ in 0..3 {
            let (status, body) = c.get("/x").await.expect("answer");
            assert_eq!((status, &body[..]), (StatusCode::OK, &b"hi"[..]));
        }
        let (status, _) = c.get("/missing").await.expect("answer");
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn posts_with_a_bearer_token() {
        let app = axum::Router::new().route(
            "/p",
            axum::routing::post(|headers: axum::http::HeaderMap| async move {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_string()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut c = HttpClient::new(&format!("http://{addr}")).expect("url");
        let (status, body) = c.post("/p", Some("s3cret")).await.expect("answer");
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"Bearer s3cret"[..]));
        let (_, body) = c.post("/p", None).await.expect("answer");
        assert_eq!(&body[..], b"none");
        let (status, _) = c.get("/p").await.expect("answer");
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
}
