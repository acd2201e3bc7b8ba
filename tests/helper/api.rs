//! Talking to a running API: a JSON client over an in-process server or a
//! `worldpool run` on 127.0.0.1 (started with [`super::supervisor`]), and a
//! reader of Server-Sent Events frames.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use worldpool::api::{self, ApiState};

/// How long one SSE read may wait.
const SSE_DEADLINE: Duration = Duration::from_secs(30);

/// A JSON client of one API; owns the server when it started it.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    server: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
}

impl Api {
    /// Serve `state` on 127.0.0.1 (a free port) for this test.
    pub async fn serve(state: ApiState) -> Api {
        let stop = CancellationToken::new();
        let (addr, task) = api::serve("127.0.0.1:0".parse().expect("addr"), state, stop.clone())
            .await
            .expect("API serves");
        Api {
            server: Some((stop, task)),
            ..Api::at(format!("http://{addr}"))
        }
    }

    /// A client of an API served elsewhere (`worldpool run`).
    pub fn at(base: String) -> Api {
        Api {
            base,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            server: None,
        }
    }

    /// `GET`: status and JSON body (null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `POST` with an optional JSON body and bearer token.
    pub async fn post(
        &self,
        path: &str,
        body: impl Into<Option<Value>>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(b) = body.into() {
            req = req.json(&b);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST a `multipart/form-data` form as the old pages' `FormData` does:
    /// a `file` field (`file_name`, `bytes`) and text fields, in order.
    pub async fn post_form(
        &self,
        path: &str,
        file_name: &str,
        bytes: &[u8],
        fields: &[(&str, &str)],
    ) -> (u16, Value) {
        let boundary = "----worldpoolTestBoundary7MA4YWxk";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n\
                     {value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("POST form");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET`: status, content type and text body.
    pub async fn text(&self, path: &str) -> (u16, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, ctype, r.text().await.expect("body"))
    }

    /// Open an event stream.
    pub async fn stream(&self, path: &str) -> reqwest::Response {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .expect("GET stream");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r
    }

    /// Stop the server this client started (nothing otherwise).
    pub async fn stop(self) {
        if let Some((stop, task)) = self.server {
            stop.cancel();
            let _ = task.await;
        }
    }
}

/// Read SSE frames from a response until `done` says stop; returns (event
/// name or "message", data) pairs.
pub async fn sse_frames(
    resp: &mut reqwest::Response,
    buf: &mut String,
    mut done: impl FnMut(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let mut frames = Vec::new();
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut name = "message".to_string();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_string();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            if !data.is_empty() {
                frames.push((name, data));
            }
        }
        if done(&frames) {
            return frames;
        }
        match tokio::time::timeout(SSE_DEADLINE, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => return frames,
            Ok(Err(e)) => panic!("stream broke: {e}"),
            Err(_) => panic!("no SSE frame within {SSE_DEADLINE:?}; got {frames:?}"),
        }
    }
}
