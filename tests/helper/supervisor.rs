//! A `worldpool run` as a real process, with its API on a free loopback
//! port, the test worker by default, and its JSON log in a file. Killed
//! (SIGKILL) when dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{bin, free_port, test_worker, wait_for};

/// How to start one.
pub struct Options {
    /// `[[worlds]]` names.
    pub worlds: Vec<String>,
    /// The test worker's modes (`WORLDPOOL_TEST_WORKER_MODE`); `None`
    /// runs the real worker.
    pub test_mode: Option<String>,
    /// More TOML, appended to the generated `[pool]`/`[api]` tables'
    /// file (write whole tables: `[limits]`, `[site]`, …).
    pub extra_toml: String,
    /// Keys added to `[api]`.
    pub api_toml: String,
    /// Keys added to `[pool]`.
    pub pool_toml: String,
    /// Environment for the supervisor.
    pub env: Vec<(String, String)>,
    /// `RLIMIT_NOFILE` (soft, hard) for the supervisor.
    pub nofile: Option<(u64, u64)>,
    /// `[storage] url`; `None`: a SQLite file in the temporary directory.
    pub storage_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            worlds: vec!["A".into(), "B".into()],
            test_mode: Some("*=idle".into()),
            extra_toml: String::new(),
            api_toml: String::new(),
            pool_toml: String::new(),
            env: Vec::new(),
            nofile: None,
            storage_url: None,
        }
    }
}

/// A running `worldpool run`.
pub struct Supervisor {
    pub child: Child,
    pub api: SocketAddr,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Supervisor {
    /// Start it and wait until its API answers.
    pub fn start(options: Options) -> Supervisor {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("worlds.toml");
        let mut text = format!(
            "[pool]\nmin_uptime = \"300ms\"\nstop_grace = \"2s\"\n\
             heartbeat_timeout = \"5s\"\nstart_timeout = \"10s\"\n{}\n\
             [api]\nbind = \"127.0.0.1:{port}\"\n{}\n\
             [storage]\nurl = \"{}\"\n{}\n",
            options.pool_toml,
            options.api_toml,
            options
                .storage_url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("store.db").display())),
            options.extra_toml,
        );
        for w in &options.worlds {
            text.push_str(&format!("[[worlds]]\nname = \"{w}\"\nguilds = [\"G\"]\n"));
        }
        std::fs::write(&config, text).expect("config written");
        let log = dir.path().join("supervisor.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.args(["--log-json", "run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env_remove(worldpool::api::TOKEN_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(mode) = &options.test_mode {
            cmd.env(worldpool::supervise::WORKER_PROGRAM_ENV, test_worker())
                .env("WORLDPOOL_TEST_WORKER_MODE", mode);
        }
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        if let Some((soft, hard)) = options.nofile {
            // SAFETY: setrlimit is async-signal-safe; nothing is allocated.
            unsafe {
                cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard));
            }
        }
        let child = cmd.spawn().expect("worldpool run starts");
        let sup = Supervisor {
            child,
            api: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            dir,
        };
        wait_for("the API answers", Duration::from_secs(30), || {
            sup.get("/api/workers")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        });
        sup
    }

    /// `GET path` on a connection of its own: status and JSON body, or
    /// `None` when the API does not answer within 5 s.
    pub fn get(&self, path: &str) -> Option<(u16, Value)> {
        let mut s = TcpStream::connect_timeout(&self.api, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        // Bodies may come chunked: take the JSON between the first `{`/`[`
        // and the last `}`/`]`.
        let start = body.find(['{', '['])?;
        let end = body.rfind(['}', ']'])?;
        let value = serde_json::from_str(&body[start..=end]).unwrap_or(Value::Null);
        Some((status, value))
    }

    /// `POST path` with a JSON body on a connection of its own: status and
    /// JSON body, or `None` when the API does not answer within 5 s.
    pub fn post_json(&self, path: &str, body: &Value) -> Option<(u16, Value)> {
        let mut s = TcpStream::connect_timeout(&self.api, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let body = body.to_string();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let start = body.find(['{', '['])?;
        let end = body.rfind(['}', ']'])?;
        let value = serde_json::from_str(&body[start..=end]).unwrap_or(Value::Null);
        Some((status, value))
    }

    /// One worker's snapshot from `/api/workers/NAME`.
    pub fn worker(&self, name: &str) -> Option<Value> {
        self.get(&format!("/api/workers/{name}"))
            .filter(|(s, _)| *s == 200)
            .map(|(_, v)| v)
    }

    /// Wait until `name` is running; its pid.
    pub fn running_pid(&self, name: &str, deadline: Duration) -> u32 {
        wait_for(&format!("worker {name} running"), deadline, || {
            let w = self.worker(name)?;
            (w["state"] == "running")
                .then(|| w["pid"].as_u64())?
                .map(|p| p as u32)
        })
    }
}
