//! An API served on 127.0.0.1:0 for a test and a client that speaks to it
//! the way the replaced system's pages do (JSON bodies, multipart uploads).

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use worldpool::api::{self, ApiState};

/// A running API and its client.
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Api {
    /// Serve `state` on a free port of 127.0.0.1.
    pub async fn serve(state: ApiState) -> Api {
        let stop = CancellationToken::new();
        let (addr, task) = api::serve("127.0.0.1:0".parse().expect("addr"), state, stop.clone())
            .await
            .expect("API serves");
        Api::at(format!("http://{addr}"), stop, task)
    }

    /// A client of an API served at `base` by `task`, stopped by `stop`.
    pub fn at(base: String, stop: CancellationToken, task: tokio::task::JoinHandle<()>) -> Api {
        Api {
            base,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            stop,
            task,
        }
    }

    /// GET: status and JSON body (`null` when it is not JSON).
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

    /// GET: the body as text.
    pub async fn text(&self, path: &str) -> String {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        r.text().await.expect("body")
    }

    /// POST a JSON body, with a bearer token when given.
    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
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

    /// Stop serving and wait for the server.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
