//! PostgreSQL over TLS, by the storage URL's `sslmode`, against a local
//! cluster with `ssl = on` and a certificate signed by a CA made for the
//! test.

use worldpool::store::Store;

/// Whether the connections of `application_name` are encrypted, as the
/// server sees them (`pg_stat_ssl`), asked over a plain connection.
async fn encrypted(base: &str, application: &str) -> Vec<bool> {
    let (client, conn) =
        tokio_postgres::connect(&format!("{base}?sslmode=disable"), tokio_postgres::NoTls)
            .await
            .expect("plain connection");
    let task = tokio::spawn(conn);
    let rows = client
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1",
            &[&application],
        )
        .await
        .expect("pg_stat_ssl");
    drop(client);
    let _ = task.await;
    rows.iter().map(|r| r.get::<_, bool>(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_chooses_tls_and_how_the_server_is_checked() {
    let (cluster, ca) = crate::helper::pg::start_with_tls()
        .unwrap_or_else(|e| panic!("PostgreSQL with TLS is required for this test: {e}"));
    let base = cluster.url();
    let ca = ca.display().to_string();
    let open = |query: String| {
        let url = format!("{base}?{query}");
        async move { Store::open(&url, 1).await.map(|s| (s, url)) }
    };

    // require: encrypted (the certificate is not checked).
    let (store, _) = open("sslmode=require&application_name=wp_require".into())
        .await
        .expect("sslmode=require connects");
    store.ping().await.expect("ping");
    assert_eq!(encrypted(&base, "wp_require").await, [true]);

    // verify-full with the test's CA: encrypted, and the server checked.
    let (store, _) = open(format!(
        "sslmode=verify-full&sslrootcert={ca}&application_name=wp_full"
    ))
    .await
    .expect("verify-full with the CA connects");
    store.ping().await.expect("ping");
    assert_eq!(encrypted(&base, "wp_full").await, [true]);

    // verify-full without it: the system's roots do not know the test's CA.
    let e = open("sslmode=verify-full&application_name=wp_unknown".into())
        .await
        .expect_err("an unknown CA is refused")
        .to_string();
    assert!(e.contains("TLS"), "{e}");
    assert!(
        e.contains("not signed by a trusted CA") && e.contains("sslrootcert"),
        "{e}"
    );

    // The certificate names 127.0.0.1 only: by the name `localhost`
    // verify-full refuses it, verify-ca (the chain only) takes it.
    let by_name = base.replace("127.0.0.1", "localhost");
    let e = Store::open(
        &format!("{by_name}?sslmode=verify-full&sslrootcert={ca}"),
        1,
    )
    .await
    .expect_err("the name is checked")
    .to_string();
    assert!(e.contains("does not name this host"), "{e}");
    let store = Store::open(
        &format!("{by_name}?sslmode=verify-ca&sslrootcert={ca}&application_name=wp_ca"),
        1,
    )
    .await
    .expect("verify-ca checks the chain only");
    store.ping().await.expect("ping");
    assert_eq!(encrypted(&base, "wp_ca").await, [true]);

    // disable: plain; no sslmode (prefer): TLS, since the server offers it.
    let (store, _) = open("sslmode=disable&application_name=wp_plain".into())
        .await
        .expect("disable");
    store.ping().await.expect("ping");
    assert_eq!(encrypted(&base, "wp_plain").await, [false]);
    let (store, _) = open("application_name=wp_default".into())
        .await
        .expect("the default");
    store.ping().await.expect("ping");
    assert_eq!(encrypted(&base, "wp_default").await, [true]);

    // A bad mode or a CA file that is not there: refused at open.
    let e = open("sslmode=verify-everything".into())
        .await
        .expect_err("unknown mode")
        .to_string();
    assert!(e.contains("sslmode `verify-everything`"), "{e}");
    let e = open("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem".into())
        .await
        .expect_err("missing CA file")
        .to_string();
    assert!(e.contains("sslrootcert /nonexistent/ca.pem"), "{e}");
}

/// `require` against a server without TLS (the shared test server) is
/// refused, not silently plain.
#[tokio::test]
async fn require_refuses_a_server_without_tls() {
    let url = crate::helper::pg::fresh_database_url().await;
    let e = Store::open(&format!("{url}?sslmode=require"), 1)
        .await
        .expect_err("no TLS on that server")
        .to_string();
    assert!(e.contains("TLS"), "{e}");
    // The default takes it plain.
    Store::open(&url, 1)
        .await
        .expect("prefer falls back to plain");
}
