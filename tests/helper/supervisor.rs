//! `worldpool run` as a real process: [`run_command`] builds it,
//! [`Process`] owns it (killed with SIGKILL when dropped), [`Supervisor`]
//! runs one on a generated config with its API on a free loopback port,
//! the test worker by default, and its JSON log in a file.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
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
    /// stderr into a pipe (`process.child.stderr`), not the log file.
    pub stderr_piped: bool,
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
            stderr_piped: false,
        }
    }
}

/// How [`run_command`] starts `worldpool run`.
#[derive(Default)]
pub struct Launch<'a> {
    /// `--api-bind 127.0.0.1:PORT` (else the config's `[api] bind`).
    pub api_port: Option<u16>,
    /// `--no-api`.
    pub no_api: bool,
    /// `--log-json`: one JSON object per log line.
    pub log_json: bool,
    /// `WORLDPOOL_API_TOKEN` (never inherited from the test's environment).
    pub token: Option<&'a str>,
    /// The test worker in this mode (`WORLDPOOL_TEST_WORKER_MODE`); `None`
    /// runs the real worker.
    pub test_mode: Option<&'a str>,
    /// More environment.
    pub env: &'a [(String, String)],
    /// `RLIMIT_NOFILE` (soft, hard).
    pub nofile: Option<(u64, u64)>,
    /// Global flags before the verb (`--log-format json`).
    pub flags: &'a [&'a str],
    /// Leave `RUST_LOG` unset (the config's `[log] level` decides) instead
    /// of `info`.
    pub no_rust_log: bool,
    /// In a process group of its own (a test can then signal the node and
    /// its workers together).
    pub own_group: bool,
    /// stderr into a pipe the test holds (`child.stderr`) instead of `log`.
    pub stderr_piped: bool,
}

/// The one way the tests start `worldpool run --config CONFIG`: stdin and
/// stdout closed, stderr (the log, `RUST_LOG=info`) into `log`, and none of
/// the test's own token, database URL, worker program or log format
/// leaking in. One-shot commands are [`super::cli`]'s.
pub fn run_command(config: &Path, log: &Path, launch: &Launch<'_>) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(launch.flags);
    if launch.log_json {
        cmd.arg("--log-json");
    }
    cmd.arg("run");
    if let Some(port) = launch.api_port {
        cmd.args(["--api-bind", &format!("127.0.0.1:{port}")]);
    }
    if launch.no_api {
        cmd.arg("--no-api");
    }
    cmd.arg("--config")
        .arg(config)
        .env_remove(worldpool::api::TOKEN_ENV)
        .env_remove("DATABASE_URL")
        .env_remove(worldpool::supervise::WORKER_PROGRAM_ENV)
        .env_remove("WORLDPOOL_LOG_FORMAT")
        .env_remove("WORLDPOOL_LOG_JSON")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
    if launch.no_rust_log {
        cmd.env_remove("RUST_LOG");
    } else {
        cmd.env("RUST_LOG", "info");
    }
    if let Some(t) = launch.token {
        cmd.env(worldpool::api::TOKEN_ENV, t);
    }
    if let Some(mode) = launch.test_mode {
        cmd.env(worldpool::supervise::WORKER_PROGRAM_ENV, test_worker())
            .env("WORLDPOOL_TEST_WORKER_MODE", mode);
    }
    for (k, v) in launch.env {
        cmd.env(k, v);
    }
    if launch.own_group {
        cmd.process_group(0);
    }
    if launch.stderr_piped {
        cmd.stderr(Stdio::piped());
    }
    if let Some((soft, hard)) = launch.nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard));
        }
    }
    cmd
}

/// A `worldpool run` process started by [`run_command`], killed (SIGKILL)
/// and reaped when dropped, then its temporary directory removed.
pub struct Process {
    pub child: Child,
    /// Its log (stderr).
    pub log: PathBuf,
    /// The directory it runs in, if the process owns it.
    pub dir: Option<tempfile::TempDir>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Spawn `worldpool run --config CONFIG`, its log into `log`.
    pub fn spawn(config: &Path, log: &Path, launch: &Launch<'_>) -> Process {
        let child = run_command(config, log, launch)
            .spawn()
            .expect("worldpool run starts");
        Process {
            child,
            log: log.to_path_buf(),
            dir: None,
        }
    }

    /// The same, owning `dir` (removed once the process is gone).
    pub fn in_dir(mut self, dir: tempfile::TempDir) -> Process {
        self.dir = Some(dir);
        self
    }

    /// Send `signal` to the supervisor.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .unwrap_or_else(|e| panic!("{signal} to the supervisor: {e}"));
    }

    /// SIGTERM, then wait up to `deadline` for the exit (panics after).
    pub fn sigterm_and_wait(&mut self, deadline: Duration) -> std::process::ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        wait_for("the supervisor exits", deadline, || {
            self.child.try_wait().expect("try_wait")
        })
    }

    /// SIGTERM, then wait up to `grace` for the exit; `None` when it is
    /// still running (never panics: safe in `Drop`).
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Err(_) => return None,
                Ok(None) if std::time::Instant::now() >= deadline => return None,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The JSON log lines' `fields` objects (`Launch::log_json`).
    pub fn log_fields(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v.get("fields").cloned())
            .collect()
    }

    /// The address the API logged it listens on (`Launch::log_json`;
    /// `api_port: Some(0)` lets it take any).
    pub fn logged_api_addr(&self, deadline: Duration) -> String {
        wait_for("the API's address in the log", deadline, || {
            self.log_fields()
                .iter()
                .find_map(|f| f["addr"].as_str().map(str::to_string))
        })
    }
}

/// A running `worldpool run` on a generated config, its API answering.
pub struct Supervisor {
    pub process: Process,
    pub api: SocketAddr,
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
        let process = Process::spawn(
            &config,
            &log,
            &Launch {
                log_json: true,
                test_mode: options.test_mode.as_deref(),
                env: &options.env,
                nofile: options.nofile,
                stderr_piped: options.stderr_piped,
                ..Launch::default()
            },
        )
        .in_dir(dir);
        let sup = Supervisor {
            process,
            api: SocketAddr::from(([127, 0, 0, 1], port)),
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
        self.request(&format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        ))
    }

    /// `POST path` with a JSON body on a connection of its own: status and
    /// JSON body, or `None` when the API does not answer within 5 s.
    pub fn post_json(&self, path: &str, body: &Value) -> Option<(u16, Value)> {
        let body = body.to_string();
        self.request(&format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// Send `request` whole on a new connection and read the answer to its
    /// end: status and JSON body (bodies may come chunked: the JSON between
    /// the first `{`/`[` and the last `}`/`]`).
    fn request(&self, request: &str) -> Option<(u16, Value)> {
        let mut s = TcpStream::connect_timeout(&self.api, Duration::from_secs(5)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(request.as_bytes()).ok()?;
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

/// `worldpool run --config CONFIG --api-bind 127.0.0.1:PORT` on a config
/// the test wrote, stopped (SIGTERM, then SIGKILL after 20 s) on drop,
/// even when the test fails.
pub struct RunningPool {
    process: Option<Process>,
    log: PathBuf,
}

impl RunningPool {
    /// Start it; `idle_workers` runs the idle test worker instead of real
    /// workers.
    pub fn start(config: &Path, port: u16, token: Option<&str>, idle_workers: bool) -> RunningPool {
        RunningPool::spawn(config, port, token, idle_workers.then_some("idle"))
    }

    /// The same over the test worker in `mode`
    /// (`WORLDPOOL_TEST_WORKER_MODE`: `idle`, `fail-start`, or per world,
    /// `idle,Beta=fail-start`), no token.
    pub fn with_test_workers(config: &Path, port: u16, mode: &str) -> RunningPool {
        RunningPool::spawn(config, port, None, Some(mode))
    }

    fn spawn(
        config: &Path,
        port: u16,
        token: Option<&str>,
        test_mode: Option<&str>,
    ) -> RunningPool {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = config.with_extension(format!("{port}.{n}.log"));
        let process = Process::spawn(
            config,
            &log,
            &Launch {
                api_port: Some(port),
                token,
                test_mode,
                ..Launch::default()
            },
        );
        RunningPool {
            process: Some(process),
            log,
        }
    }

    /// Its stderr so far (kept after it stopped).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The supervisor's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    /// SIGTERM and wait for the exit (SIGKILL after 20 s).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            // Still running after the grace: dropping it kills it.
            let _ = process.terminate(Duration::from_secs(20));
        }
    }
}

impl Drop for RunningPool {
    fn drop(&mut self) {
        self.stop();
    }
}
