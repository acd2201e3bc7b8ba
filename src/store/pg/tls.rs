//! PostgreSQL over TLS (rustls), chosen by the storage URL as libpq does:
//!
//! | `sslmode`      | TLS                          | the server's certificate                    |
//! |----------------|------------------------------|---------------------------------------------|
//! | `disable`      | never                        | -                                           |
//! | `prefer` (default) | when the server offers it | not checked (against passive listeners only) |
//! | `require`      | always, or no connection     | not checked                                 |
//! | `verify-ca`    | always                       | signed by a trusted CA                      |
//! | `verify-full`  | always                       | signed by a trusted CA and naming the host  |
//!
//! The trusted CAs are the PEM file named by `sslrootcert=PATH`, or with
//! `sslrootcert=system` (and by default) the system's roots. Both
//! parameters are taken out of the URL before it reaches `tokio-postgres`,
//! which knows neither the two verifying modes nor `sslrootcert`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use crate::store::StoreError;

/// `sslmode` of a storage URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// What `tokio-postgres` is told: it negotiates, the connector checks.
    fn negotiation(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// A storage URL split into what `tokio-postgres` reads and the TLS
/// settings it does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsUrl {
    /// The URL for `tokio-postgres`: `sslrootcert` removed, `sslmode` one
    /// it knows.
    pub url: String,
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file, or `None` for the system's roots.
    pub root_cert: Option<String>,
}

/// Take `sslmode` and `sslrootcert` out of a `postgres://` URL.
pub(crate) fn split_url(url: &str) -> Result<TlsUrl, StoreError> {
    let bad = |what: String| StoreError::BadUrl(format!("{}: {what}", super::redact(url)));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut kept: Vec<(String, String)> = Vec::new();
    for (k, v) in parsed.query_pairs() {
        match k.as_ref() {
            "sslmode" => {
                mode = SslMode::parse(&v).ok_or_else(|| {
                    bad(format!(
                        "sslmode `{v}`: use disable, prefer, require, verify-ca or verify-full"
                    ))
                })?;
            }
            "sslrootcert" => {
                root_cert = (v != "system").then(|| v.into_owned());
            }
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if root_cert.is_some() && matches!(mode, SslMode::Disable | SslMode::Prefer | SslMode::Require)
    {
        return Err(bad(
            "sslrootcert is only read with sslmode=verify-ca or verify-full".into(),
        ));
    }
    kept.push(("sslmode".into(), mode.negotiation().into()));
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    Ok(TlsUrl {
        url: parsed.to_string(),
        mode,
        root_cert,
    })
}

/// The rustls connector for a URL's settings (the CA file is read now: a
/// missing or empty one is an error at open, not at the first query).
pub(crate) fn connector(tls: &TlsUrl) -> Result<MakeRustls, StoreError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Rejected(format!("postgres TLS: {e}")))?;
    let config = match tls.mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(tls.root_cert.as_deref())?);
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()
            .map_err(|e| StoreError::Rejected(format!("postgres TLS: {e}")))?;
            let verifier: Arc<dyn ServerCertVerifier> = if tls.mode == SslMode::VerifyCa {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
    };
    Ok(MakeRustls {
        config: Arc::new(config),
    })
}

/// The CAs of `sslrootcert`, or the system's.
fn roots(file: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let bad = |what: String| {
                StoreError::Rejected(format!("postgres TLS: sslrootcert {path}: {what}"))
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(e.to_string()))?;
                store.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(StoreError::Rejected(
                    "postgres TLS: no system CA certificates found; name the server's CA \
                     with sslrootcert=PATH"
                        .into(),
                ));
            }
        }
    }
    Ok(store)
}

/// `require`: encrypted, whoever the server is (the handshake's own
/// signatures are still checked).
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name is not.
#[derive(Debug)]
struct AnyName(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as C;
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `tokio-postgres`' TLS hook over rustls.
#[derive(Clone)]
pub(crate) struct MakeRustls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for MakeRustls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MakeRustls")
    }
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<RustlsConnect> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{host}` is not a host name TLS can check: {e}"),
            )
        })?;
        Ok(RustlsConnect {
            config: self.config.clone(),
            name,
        })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
                .map_err(|e| io::Error::new(e.kind(), format!("TLS: {}", explain(&e))))
        })
    }
}

/// The handshake's error in the words an operator can act on.
fn explain(e: &io::Error) -> String {
    use rustls::CertificateError as C;
    let rustls_error = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let hint = match rustls_error {
        Some(rustls::Error::InvalidCertificate(C::UnknownIssuer)) => {
            " (the server's certificate is not signed by a trusted CA: name its CA file \
             with sslrootcert=PATH)"
        }
        Some(rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        )) => {
            " (the server's certificate does not name this host: connect by the name it \
             has, or use sslmode=verify-ca)"
        }
        Some(rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. })) => {
            " (the server's certificate has expired)"
        }
        _ => "",
    };
    format!("{e}{hint}")
}

/// A TLS connection to the server.
pub(crate) struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_tokio_postgres_reads_and_the_tls_settings() {
        let t = split_url("postgres://u:p@db.example:5433/wp").expect("plain");
        assert_eq!(t.mode, SslMode::Prefer, "libpq's default");
        assert_eq!(t.url, "postgres://u:p@db.example:5433/wp?sslmode=prefer");
        let t = split_url(
            "postgres://u@db.example/wp?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .expect("verify-full");
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            t.url,
            "postgres://u@db.example/wp?application_name=x&sslmode=require"
        );
        let t = split_url("postgres://h/wp?sslmode=verify-ca&sslrootcert=system").expect("ca");
        assert_eq!((t.mode, t.root_cert), (SslMode::VerifyCa, None));
        assert_eq!(
            split_url("postgres://h/wp?sslmode=disable")
                .expect("off")
                .mode,
            SslMode::Disable
        );
        for bad in [
            "postgres://h/wp?sslmode=allow",
            "postgres://h/wp?sslmode=require&sslrootcert=/ca.pem",
            "postgres://u:secret@h/wp?sslmode=bogus",
        ] {
            let e = split_url(bad).expect_err(bad).to_string();
            assert!(e.contains("sslmode") || e.contains("sslrootcert"), "{e}");
            assert!(!e.contains("secret"), "the password is never shown: {e}");
        }
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("written");
        for path in [dir.path().join("missing.pem"), empty] {
            let tls = TlsUrl {
                url: String::new(),
                mode: SslMode::VerifyFull,
                root_cert: Some(path.display().to_string()),
            };
            let e = connector(&tls).expect_err("no CA").to_string();
            assert!(e.contains("sslrootcert"), "{e}");
        }
    }
}
