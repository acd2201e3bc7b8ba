//! An ephemeral PostgreSQL for tests: one cluster per test process (started
//! on first use from the local binaries, as the `postgres` user, on a free
//! port, stopped when the process exits), a fresh database per test.
//! `WORLDPOOL_TEST_DATABASE_URL` points at an existing server instead.
//! Missing PostgreSQL fails the test with a clear message; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub use worldpool::bench::pg::PgCluster;

/// A new cluster that also accepts TLS (`ssl = on`), with a certificate
/// for `127.0.0.1` (its only name) signed by a CA made for the test
/// (`openssl`); the cluster and the CA certificate's path.
pub fn start_with_tls() -> Result<(PgCluster, PathBuf), String> {
    let mut cluster = PgCluster::init().map_err(|e| e.to_string())?;
    let (cert, key) = make_certificates(cluster.dir())?;
    cluster.set_options(&format!(
        "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        cert.display(),
        key.display()
    ));
    cluster.start_server().map_err(|e| e.to_string())?;
    let ca = cluster.dir().join("ca.crt");
    Ok((cluster, ca))
}

/// A CA and a server certificate for `IP:127.0.0.1` it signed, in `dir`
/// (the server's files owned by `postgres`, the key private to it); the
/// certificate's and the key's paths.
fn make_certificates(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl (needed to make the test's certificates): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=worldpool test CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca)?;
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(&csr)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| format!("server.ext: {e}"))?;
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ])?;
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    for f in [&cert, &key] {
        worldpool::bench::pg::chown_postgres(f, false).map_err(|e| e.to_string())?;
    }
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod server.key: {e}"))?;
    Ok((cert, key))
}

static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
static SHARED_CLUSTER: OnceLock<PgCluster> = OnceLock::new();

extern "C" fn stop_shared_cluster() {
    if let Some(c) = SHARED_CLUSTER.get() {
        c.stop();
    }
}

/// URL of the shared server (started on first use). Panics with a clear
/// message when PostgreSQL is not available.
pub fn server_url() -> String {
    let result = SHARED.get_or_init(|| {
        if let Ok(url) = std::env::var("WORLDPOOL_TEST_DATABASE_URL")
            && !url.trim().is_empty()
        {
            return Ok(url);
        }
        let cluster = PgCluster::start().map_err(|e| {
            format!("{e} (or set WORLDPOOL_TEST_DATABASE_URL=postgres://user@host:port/db)")
        })?;
        let url = cluster.url();
        let _ = SHARED_CLUSTER.set(cluster);
        // Statics are never dropped: stop the server when the process exits.
        // SAFETY: registering a plain extern "C" fn with atexit is sound.
        unsafe {
            libc::atexit(stop_shared_cluster);
        }
        Ok(url)
    });
    match result {
        Ok(url) => url.clone(),
        Err(e) => panic!("PostgreSQL is required for this test and could not be started: {e}"),
    }
}

/// A URL to a brand-new, empty database on the shared server.
pub async fn fresh_database_url() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let server = server_url();
    let name = format!(
        "wp_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to test PostgreSQL {server}: {e}"));
    let task = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    drop(client);
    let _ = task.await;
    let mut url = url::Url::parse(&server).expect("server URL parses");
    url.set_path(&format!("/{name}"));
    url.to_string()
}
