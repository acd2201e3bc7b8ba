//! A headless Chromium driven over WebDriver, for the dashboard tests.
//!
//! [`Browser::start`] runs `chromedriver` on a free port in its own process
//! group, opens a session on Debian's Chromium (headless, no network
//! beyond what the page asks for, a fresh profile) and talks to it with a
//! few JSON calls (the W3C WebDriver protocol, over reqwest). Dropping the
//! [`Browser`] kills chromedriver and the browser it started (the whole
//! process group), even when the test fails. A missing browser fails the
//! test with the command that installs it: it never skips.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::free_port;

/// The WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where Debian puts them; `WORLDPOOL_TEST_CHROMIUM` and
/// `WORLDPOOL_TEST_CHROMEDRIVER` override.
const CHROMIUM: (&str, &str) = ("WORLDPOOL_TEST_CHROMIUM", "/usr/bin/chromium");
const CHROMEDRIVER: (&str, &str) = ("WORLDPOOL_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");

fn program(which: (&str, &str)) -> PathBuf {
    let path = std::env::var_os(which.0)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(which.1));
    assert!(
        path.exists(),
        "the browser tests need Chromium and ChromeDriver, and {} is missing: install them with \
         `apt-get install -y chromium chromium-driver` (.ci/run does), or point {} at it",
        path.display(),
        which.0
    );
    path
}

/// A running chromedriver + Chromium session.
pub struct Browser {
    http: reqwest::Client,
    session_url: String,
    driver: Child,
    log: PathBuf,
    profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and every browser process share its process group.
        let pgid = self.driver.id() as i32;
        // SAFETY: kill(2) on a process group this test created.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Start chromedriver and a headless Chromium with a `width`×`height`
    /// window.
    pub async fn start(width: u32, height: u32) -> Browser {
        let chromium = program(CHROMIUM);
        let chromedriver = program(CHROMEDRIVER);
        let profile = tempfile::Builder::new()
            .prefix("worldpool-chromium-")
            .tempdir()
            .expect("profile dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let mut last_error = String::new();
        // The port is free when picked; another process could take it
        // before chromedriver binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let log = profile.path().join("chromedriver.log");
            let mut driver = Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromedriver.display()));
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(20);
            let ready = loop {
                if let Ok(Some(status)) = driver.try_wait() {
                    last_error = format!("chromedriver exited with {status}");
                    break false;
                }
                let ok = match http.get(format!("{base}/status")).send().await {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|v| v["value"]["ready"] == true),
                    Err(_) => false,
                };
                if ok {
                    break true;
                }
                if Instant::now() > deadline {
                    last_error = "chromedriver did not answer within 20 s".to_string();
                    break false;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            if !ready {
                // SAFETY: kill(2) on the process group this loop created.
                unsafe { libc::kill(-(driver.id() as i32), libc::SIGKILL) };
                let _ = driver.wait();
                continue;
            }
            let mut browser = Browser {
                http,
                session_url: String::new(),
                driver,
                log,
                profile,
            };
            let args = [
                "--headless".to_string(),
                "--no-sandbox".to_string(),
                "--disable-gpu".to_string(),
                "--disable-background-networking".to_string(),
                "--disable-component-update".to_string(),
                "--disable-sync".to_string(),
                "--disable-quic".to_string(),
                "--disable-extensions".to_string(),
                "--disable-default-apps".to_string(),
                "--no-first-run".to_string(),
                "--no-default-browser-check".to_string(),
                "--disable-dev-shm-usage".to_string(),
                format!("--window-size={width},{height}"),
                format!(
                    "--user-data-dir={}",
                    browser.profile.path().join("profile").display()
                ),
            ];
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {"binary": chromium, "args": args},
            }}});
            let answer = browser.raw("POST", &format!("{base}/session"), caps).await;
            let id = answer["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| {
                    panic!(
                        "chromedriver did not open a session: {answer}\n{}",
                        browser.driver_log()
                    )
                })
                .to_string();
            browser.session_url = format!("{base}/session/{id}");
            browser.set_viewport(width, height).await;
            return browser;
        }
        panic!("cannot start chromedriver: {last_error}");
    }

    /// chromedriver's log, for failure messages.
    pub fn driver_log(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    async fn raw(&self, method: &str, url: &str, body: Value) -> Value {
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
        response
            .json::<Value>()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {url}: not JSON: {e}"))
    }

    /// One session command; panics with the driver's error.
    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.session_url);
        let v = self.raw(method, &url, body).await;
        if let Some(error) = v["value"]["error"].as_str() {
            panic!(
                "WebDriver {method} {path}: {error}: {}",
                v["value"]["message"].as_str().unwrap_or_default()
            );
        }
        v["value"].clone()
    }

    /// Make the page area exactly `width`×`height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600
            }}),
        )
        .await;
    }

    /// Load a URL (returns when the page's load event fired).
    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    /// Run `body` (a function body; `arguments` holds `args`) in the page.
    pub async fn eval(&self, body: &str, args: Value) -> Value {
        let args = if args.is_array() { args } else { json!([args]) };
        self.cmd(
            "POST",
            "/execute/sync",
            json!({"script": body, "args": args}),
        )
        .await
    }

    /// Evaluate `body` until it returns something other than null, false
    /// or undefined; panic with `what` (and the last value) after `deadline`.
    pub async fn wait_for(&self, what: &str, deadline: Duration, body: &str, args: Value) -> Value {
        let start = Instant::now();
        loop {
            let v = self.eval(body, args.clone()).await;
            if !(v.is_null() || v == Value::Bool(false)) {
                return v;
            }
            if start.elapsed() > deadline {
                let page = self
                    .eval(
                        "return document.body ? document.body.innerText.slice(0, 3000) : ''",
                        json!([]),
                    )
                    .await;
                panic!(
                    "timed out after {deadline:?} waiting for {what}\n--- page text:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    /// Click the element matching `css` as a user would.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.cmd("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    /// Replace the text of the input matching `css` by typing `text`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd("POST", &format!("/element/{id}/clear"), json!({}))
            .await;
        if !text.is_empty() {
            self.cmd(
                "POST",
                &format!("/element/{id}/value"),
                json!({ "text": text }),
            )
            .await;
        }
    }

    /// Press keys (WebDriver key codes, e.g. "\u{E004}" for Tab) on the
    /// focused element.
    pub async fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                let c = c.to_string();
                [
                    json!({"type": "keyDown", "value": c}),
                    json!({"type": "keyUp", "value": c}),
                ]
            })
            .collect();
        self.cmd(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
        self.cmd("DELETE", "/actions", json!({})).await;
    }

    /// The browser console since the last call: (level, message).
    pub async fn console(&self) -> Vec<(String, String)> {
        let v = self
            .cmd("POST", "/se/log", json!({"type": "browser"}))
            .await;
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd("GET", "/screenshot", json!({})).await;
        decode_base64(v.as_str().expect("screenshot is base64 text"))
    }
}

/// Width and height of a PNG (from its IHDR chunk).
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// Standard base64 (what WebDriver sends screenshots in).
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes() {
    assert_eq!(decode_base64("aGVsbG8="), b"hello");
    assert_eq!(decode_base64("aGk="), b"hi");
    assert_eq!(decode_base64("YWJj"), b"abc");
}
