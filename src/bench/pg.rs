//! An ephemeral PostgreSQL cluster from the local server binaries
//! (`pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`):
//! `initdb` and `pg_ctl` run as the `postgres` user (`runuser`; `initdb`
//! refuses root), in a fresh directory, on a free port of 127.0.0.1, with
//! `fsync=off`. The server is stopped (`pg_ctl -m immediate stop`) and the
//! directory removed on drop. `worldpool bench --cluster` and the tests
//! use it; [`PgCluster::stop_server`] and [`PgCluster::start_server`]
//! restart it on the same data.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a cluster could not be made or started.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No `initdb`/`pg_ctl` found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found via `pg_config --bindir` or \
         /usr/lib/postgresql/*/bin: install them (apt-get install postgresql)"
    )]
    NoBinaries,
    /// A step failed; `what` names it, `detail` has its output.
    #[error("{what}: {detail}")]
    Step {
        /// The step (`initdb`, `pg_ctl start`, `chown`, …).
        what: String,
        /// Its error or output.
        detail: String,
    },
}

fn step(what: impl Into<String>, detail: impl ToString) -> PgError {
    PgError::Step {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// A cluster made by `initdb`: stopped (immediate) and removed on drop.
#[derive(Debug)]
pub struct PgCluster {
    bindir: PathBuf,
    dir: PathBuf,
    port: u16,
    /// More server options (`-c ssl=on …`).
    extra: String,
}

impl PgCluster {
    /// Make a cluster and start its server.
    pub fn start() -> Result<PgCluster, PgError> {
        let cluster = PgCluster::init()?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// Make a cluster (`initdb`, owned by `postgres`, a free port chosen)
    /// without starting it: add options with [`PgCluster::set_options`],
    /// files into [`PgCluster::dir`], then [`PgCluster::start_server`].
    pub fn init() -> Result<PgCluster, PgError> {
        let bindir = find_bindir()?;
        let dir = tempfile::Builder::new()
            .prefix("worldpool-pg-")
            .tempdir()
            .map_err(|e| step("tempdir", e))?
            .keep();
        // From here on, a failure removes the directory (drop).
        let mut cluster = PgCluster {
            bindir,
            dir,
            port: 0,
            extra: String::new(),
        };
        chown_postgres(&cluster.dir, true)?;
        let data = cluster.dir.join("data");
        run_as_postgres(
            &cluster.bindir.join("initdb"),
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        )?;
        cluster.port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| step("free port", e))?
            .port();
        Ok(cluster)
    }

    /// The cluster's directory (the data is in `data/`, the log `log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// More server options, e.g. `-c ssl=on -c ssl_cert_file=…`.
    pub fn set_options(&mut self, extra: &str) {
        self.extra = format!(" {}", extra.trim());
    }

    /// (Re)start the server on its port; waits until it accepts
    /// connections (at most 30 s).
    pub fn start_server(&self) -> Result<(), PgError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200{}",
            self.port,
            self.dir.display(),
            self.extra
        );
        run_as_postgres(
            &self.bindir.join("pg_ctl"),
            &[
                "-D",
                &self.dir.join("data").to_string_lossy(),
                "-l",
                &self.dir.join("log").to_string_lossy(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            step("pg_ctl start", format!("{e}\nserver log:\n{log}"))
        })
    }

    /// Stop the server at once (`-m immediate`: no shutdown checkpoint,
    /// like a crash), keeping the data.
    pub fn stop_server(&self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bindir.join("pg_ctl"))
            .args([
                "-D",
                &self.dir.join("data").to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stop the server and remove the directory (what drop does; for a
    /// cluster kept in a static, which is never dropped).
    pub fn stop(&self) {
        self.stop_server();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Give `path` (and with `recursive` what is under it) to `postgres`.
pub fn chown_postgres(path: &Path, recursive: bool) -> Result<(), PgError> {
    let mut cmd = Command::new("chown");
    if recursive {
        cmd.arg("-R");
    }
    let status = cmd
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .map_err(|e| step("chown", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(step(
            "chown",
            format!(
                "chown postgres {} failed: is there a `postgres` user?",
                path.display()
            ),
        ))
    }
}

fn run_as_postgres(program: &Path, args: &[&str]) -> Result<(), PgError> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .map_err(|e| step(format!("runuser {}", program.display()), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(step(
            format!("{} {args:?}", program.display()),
            format!(
                "failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }
}

fn find_bindir() -> Result<PathBuf, PgError> {
    let mut candidates = Vec::new();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        candidates.push(PathBuf::from(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ));
    }
    if let Ok(dir) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = dir.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        versions.reverse();
        candidates.extend(versions);
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        .ok_or(PgError::NoBinaries)
}
