//! TLS of the PostgreSQL connection, with libpq's `sslmode` semantics, on rustls (ring):
//! tokio-postgres's `MakeTlsConnect`/`TlsConnect`/`TlsStream` over `tokio-rustls`.
//!
//! tokio-postgres 0.7 knows `sslmode=disable|prefer|require` only and refuses unknown
//! parameters, so [`TlsSettings::split`] takes `sslmode` and `sslrootcert` out of the
//! connection string before the driver parses the rest, and the driver is given the mode
//! that decides whether TLS is negotiated (`disable`, `prefer` or `require`); verification
//! is this module's.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::{ExportError, Result};

/// libpq's `sslmode` (default [`Mode::Prefer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No TLS.
    Disable,
    /// TLS when the server accepts it, plain otherwise (libpq's default). `allow` is read
    /// as `prefer`: it connects to the same servers and encrypts whenever it can.
    Prefer,
    /// TLS or fail.
    Require,
    /// TLS, the server's certificate chain verified against the roots.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host connected to.
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => Mode::Disable,
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(ExportError::InvalidInput(format!(
                    "database URL: sslmode={other} is not one of disable, allow, prefer, \
                     require, verify-ca, verify-full"
                )));
            }
        })
    }

    /// What the driver is told: whether TLS is asked for, and whether it is required.
    fn driver_mode(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// Where the trusted root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// The system's (rustls-native-certs: `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the
    /// distribution's bundle).
    System,
    /// A PEM file of one or more certificates (`sslrootcert=<file>`).
    File(PathBuf),
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// The mode actually applied (see [`TlsSettings::split`] for the defaults).
    pub(crate) mode: Mode,
    /// Roots to verify against; `None` means the certificate is not verified.
    pub(crate) roots: Option<Roots>,
}

impl TlsSettings {
    /// Takes `sslmode` and `sslrootcert` out of a connection string (URL or libpq
    /// `key=value` form) and returns the rest for tokio-postgres. The last occurrence of a
    /// key wins, as in libpq.
    ///
    /// As in libpq: no `sslmode` is `prefer`; `require` (and `prefer`) with an
    /// `sslrootcert` file verify the chain as `verify-ca` does; `verify-*` without
    /// `sslrootcert` use the system roots; `sslrootcert=system` means the system roots,
    /// makes `verify-full` the default and refuses a weaker mode. Unlike libpq,
    /// `~/.postgresql/root.crt` is never read.
    pub(crate) fn split(url: &str) -> Result<(String, Self)> {
        let (rest, sslmode, rootcert) = extract(url);
        let rootcert = rootcert.filter(|r| !r.is_empty());
        let system = rootcert.as_deref() == Some("system");
        let mode = match sslmode.as_deref() {
            None if system => Mode::VerifyFull,
            None => Mode::Prefer,
            Some(v) => Mode::parse(v)?,
        };
        if system && mode != Mode::VerifyFull {
            return Err(ExportError::InvalidInput(format!(
                "database URL: sslrootcert=system needs sslmode=verify-full (it was {})",
                sslmode.as_deref().unwrap_or("prefer")
            )));
        }
        let roots = match (mode, rootcert) {
            (Mode::Disable, _) => None,
            (_, Some(r)) if r == "system" => Some(Roots::System),
            (_, Some(file)) => Some(Roots::File(PathBuf::from(file))),
            (Mode::VerifyCa | Mode::VerifyFull, None) => Some(Roots::System),
            (Mode::Prefer | Mode::Require, None) => None,
        };
        Ok((rest, Self { mode, roots }))
    }

    /// The mode handed to tokio-postgres.
    pub(crate) fn driver_mode(&self) -> SslMode {
        self.mode.driver_mode()
    }

    /// Builds the connector: loads the roots (a missing or empty file, or no system roots,
    /// is [`ExportError::InvalidInput`]) and picks the verifier.
    pub(crate) fn connector(&self) -> Result<MakeRustls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match &self.roots {
            None => Arc::new(NoVerification(provider.clone())),
            Some(roots) => {
                let store = Arc::new(load_roots(roots)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                    .build()
                    .map_err(|e| {
                        ExportError::InvalidInput(format!("database URL: sslrootcert: {e}"))
                    })?;
                if self.mode == Mode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ExportError::InvalidInput(format!("TLS configuration: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // Needed by PostgreSQL 17's direct TLS (`sslnegotiation=direct`), harmless otherwise.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(MakeRustls(Arc::new(config)))
    }
}

/// Splits a connection string into (the rest, `sslmode`, `sslrootcert`). Only the
/// syntax needed to find these two keys is read; anything else is left to tokio-postgres
/// (a string this cannot tokenize is returned unchanged, for the driver to reject).
fn extract(url: &str) -> (String, Option<String>, Option<String>) {
    let (mut sslmode, mut rootcert) = (None, None);
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            sslmode = Some(value);
            true
        }
        "sslrootcert" => {
            rootcert = Some(value);
            true
        }
        _ => false,
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let k = percent_decode_str(k).decode_utf8_lossy();
                        let v = percent_decode_str(v).decode_utf8_lossy().into_owned();
                        !take(&k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        match key_values(url) {
            None => url.to_string(),
            Some(pairs) => {
                let mut rest = String::with_capacity(url.len());
                let mut last = 0;
                for (start, end, k, v) in pairs {
                    if take(&k, v) {
                        rest.push_str(&url[last..start]);
                        last = end;
                    }
                }
                rest.push_str(&url[last..]);
                rest
            }
        }
    };
    (rest, sslmode, rootcert)
}

/// The `key = value` pairs of a libpq connection string with their byte spans, values
/// unquoted (`'…'`, with `\` escaping the next character); `None` when the syntax is not
/// understood.
fn key_values(s: &str) -> Option<Vec<(usize, usize, String, String)>> {
    let mut chars = s.char_indices().peekable();
    let mut out = Vec::new();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            return Some(out);
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if key.is_empty() || chars.next_if(|(_, c)| *c == '=').is_none() {
            return None;
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if(|(_, c)| *c == '\'').is_some();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None if quoted => return None,
                None => break s.len(),
                Some((i, '\'')) if quoted => break i + 1,
                Some((i, c)) if !quoted && c.is_whitespace() => break i,
                Some((_, '\\')) => value.push(chars.next()?.1),
                Some((_, c)) => value.push(c),
            }
        };
        out.push((start, end, key, value));
    }
}

/// The connector handed to tokio-postgres (one rustls configuration for every host).
#[derive(Clone)]
pub(crate) struct MakeRustls(Arc<ClientConfig>);

/// Raised when there is no name to give the TLS handshake (a bad host name).
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not a valid host name for TLS")]
pub(crate) struct BadServerName(String);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    /// Never fails here: a host name rustls cannot use fails the handshake instead, so
    /// `prefer` still connects in plain to a server that refuses TLS.
    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        let name =
            ServerName::try_from(domain.to_string()).map_err(|_| BadServerName(domain.to_string()));
        Ok(RustlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

/// One TLS handshake to come.
pub(crate) struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: std::result::Result<ServerName<'static>, BadServerName>,
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
            let name = self
                .name
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(RustlsStream(Box::new(stream)))
        })
    }
}

/// A TLS session over `S`. Channel binding (`SCRAM-SHA-256-PLUS`) is not offered:
/// SCRAM-SHA-256 runs without it, as with libpq's default `channel_binding=prefer` when
/// the client cannot bind.
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

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// `sslmode=require` (and `prefer`) without roots, as libpq: any certificate is accepted,
/// the session is encrypted, and the handshake signatures are still checked (so the
/// server holds the key of the certificate it sent, whoever signed it).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain (signature, validity dates, usage) is verified, the host name
/// is not. WebPKI checks the name last, after the chain: a name mismatch means the chain
/// was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Reads the trusted roots.
fn load_roots(roots: &Roots) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let shown = path.display();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect())
                .map_err(|e| {
                    ExportError::InvalidInput(format!(
                        "database URL: sslrootcert={shown}: cannot read it as PEM \
                         certificates: {e}"
                    ))
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ExportError::InvalidInput(format!(
                    "database URL: sslrootcert={shown} holds no usable certificate (expected \
                     PEM, e.g. the RDS bundle global-bundle.pem)"
                )));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(ExportError::InvalidInput(format!(
                    "database URL: no system root certificates found{why}; set \
                     sslrootcert=<PEM file of the server's CA> (e.g. the RDS bundle) or \
                     SSL_CERT_FILE"
                )));
            }
        }
    }
    Ok(store)
}

/// A driver error caused by TLS that retrying cannot fix (an untrusted or mismatched
/// certificate, a server without TLS when TLS is required), as a message saying what
/// to fix; `None` for anything else (a connection reset during the handshake stays
/// retryable).
pub(crate) fn fatal_tls_error(e: &tokio_postgres::Error) -> Option<String> {
    let mut cur: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = cur {
        let inner: &(dyn StdError + 'static) = match err.downcast_ref::<io::Error>() {
            // An I/O error without an inner error (reset, refused) is not TLS's.
            Some(io) => io.get_ref()?,
            None => err,
        };
        if let Some(r) = inner.downcast_ref::<rustls::Error>() {
            return Some(match r {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                    "TLS handshake: the server's certificate is not signed by a trusted root \
                     ({r}); with sslmode=verify-ca/verify-full set sslrootcert=<PEM file of \
                     the server's CA> (for RDS, the region's certificate bundle)"
                ),
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => format!(
                    "TLS handshake: the server's certificate does not name the host connected \
                     to ({r}); connect with a host name the certificate holds, or use \
                     sslmode=verify-ca"
                ),
                _ => format!("TLS handshake failed: {r}"),
            });
        }
        if let Some(b) = inner.downcast_ref::<BadServerName>() {
            return Some(format!("TLS handshake: {b}"));
        }
        // tokio-postgres's own TLS errors are plain strings.
        let text = inner.to_string();
        if text.contains("server does not support TLS") {
            return Some(
                "the server does not accept TLS, which sslmode=require/verify-ca/verify-full \
                 needs: enable ssl on the server, or use sslmode=prefer"
                    .into(),
            );
        }
        if text.contains("no hostname provided for TLS") {
            return Some("TLS needs a host name: set host= (not only hostaddr=)".into());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsSettings) {
        TlsSettings::split(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn split_err(url: &str) -> String {
        match TlsSettings::split(url) {
            Ok(r) => panic!("{url}: expected an error, got {r:?}"),
            Err(e) => {
                assert_eq!(e.error_name(), "Fatal.InvalidInput");
                e.to_string()
            }
        }
    }

    fn settings(mode: Mode, roots: Option<Roots>) -> TlsSettings {
        TlsSettings { mode, roots }
    }

    fn file(p: &str) -> Option<Roots> {
        Some(Roots::File(PathBuf::from(p)))
    }

    #[test]
    fn no_sslmode_is_prefer_without_verification() {
        let url = "postgres://u:p@db:5432/platform";
        assert_eq!(split(url), (url.to_string(), settings(Mode::Prefer, None)));
        let kv = "host=db user=u dbname=platform";
        assert_eq!(split(kv), (kv.to_string(), settings(Mode::Prefer, None)));
    }

    #[test]
    fn each_sslmode_of_libpq() {
        for (value, mode, roots, driver) in [
            ("disable", Mode::Disable, None, SslMode::Disable),
            ("allow", Mode::Prefer, None, SslMode::Prefer),
            ("prefer", Mode::Prefer, None, SslMode::Prefer),
            ("require", Mode::Require, None, SslMode::Require),
            (
                "verify-ca",
                Mode::VerifyCa,
                Some(Roots::System),
                SslMode::Require,
            ),
            (
                "verify-full",
                Mode::VerifyFull,
                Some(Roots::System),
                SslMode::Require,
            ),
        ] {
            let (rest, s) = split(&format!("postgres://u@db/platform?sslmode={value}"));
            assert_eq!(rest, "postgres://u@db/platform", "{value}");
            assert_eq!(s, settings(mode, roots), "{value}");
            assert_eq!(s.driver_mode(), driver, "{value}");
        }
        let msg = split_err("postgres://u:secret@db/platform?sslmode=verify");
        assert!(msg.contains("sslmode=verify is not one of"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }

    #[test]
    fn sslrootcert_is_taken_out_and_other_parameters_kept() {
        let (rest, s) = split(
            "postgresql://u:p%40ss@db:5432/platform?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fopt%2Frds%20ca.pem&options=-csearch_path%3Dplatform",
        );
        assert_eq!(
            rest,
            "postgresql://u:p%40ss@db:5432/platform?application_name=x&options=-csearch_path%3Dplatform"
        );
        assert_eq!(s, settings(Mode::VerifyFull, file("/opt/rds ca.pem")));
        // The driver accepts what is left.
        assert!(rest.parse::<tokio_postgres::Config>().is_ok());
        // The last occurrence wins, as in libpq.
        let (_, s) = split("postgres://db/p?sslmode=disable&sslmode=require");
        assert_eq!(s.mode, Mode::Require);
    }

    #[test]
    fn key_value_form() {
        let (rest, s) =
            split("host=db sslmode = verify-ca  sslrootcert='/opt/my ca\\'s.pem' dbname=platform");
        assert_eq!(rest, "host=db    dbname=platform");
        assert_eq!(s, settings(Mode::VerifyCa, file("/opt/my ca's.pem")));
        assert!(rest.parse::<tokio_postgres::Config>().is_ok());
        let (rest, s) = split("sslmode=require");
        assert_eq!((rest.as_str(), s.mode), ("", Mode::Require));
        // What this does not understand is left to the driver, which refuses it.
        let (rest, s) = split("host=db sslmode");
        assert_eq!((rest.as_str(), s.mode), ("host=db sslmode", Mode::Prefer));
        assert!(rest.parse::<tokio_postgres::Config>().is_err());
        let (rest, _) = split("host='db");
        assert_eq!(rest, "host='db");
        // Client certificates are not supported: the driver refuses the key.
        let (rest, _) = split("host=db sslmode=verify-full sslcert=client.pem");
        assert_eq!(rest, "host=db  sslcert=client.pem");
        let e = rest.parse::<tokio_postgres::Config>().unwrap_err();
        let cause = StdError::source(&e).map(|c| c.to_string());
        assert!(cause.is_some_and(|c| c.contains("sslcert")), "{e}");
    }

    #[test]
    fn a_root_file_makes_require_and_prefer_verify_the_chain() {
        for mode in ["prefer", "require"] {
            let (_, s) = split(&format!(
                "postgres://db/p?sslmode={mode}&sslrootcert=ca.pem"
            ));
            assert_eq!(s.roots, file("ca.pem"), "{mode}");
        }
        // disable never reads it; an empty value is no file.
        let (_, s) = split("postgres://db/p?sslmode=disable&sslrootcert=ca.pem");
        assert_eq!(s, settings(Mode::Disable, None));
        let (_, s) = split("postgres://db/p?sslmode=require&sslrootcert=");
        assert_eq!(s, settings(Mode::Require, None));
    }

    #[test]
    fn sslrootcert_system_means_verify_full() {
        let (_, s) = split("postgres://db/p?sslrootcert=system");
        assert_eq!(s, settings(Mode::VerifyFull, Some(Roots::System)));
        let (_, s) = split("postgres://db/p?sslrootcert=system&sslmode=verify-full");
        assert_eq!(s, settings(Mode::VerifyFull, Some(Roots::System)));
        for weak in ["require", "verify-ca", "disable"] {
            let msg = split_err(&format!(
                "postgres://db/p?sslrootcert=system&sslmode={weak}"
            ));
            assert!(msg.contains("needs sslmode=verify-full"), "{msg}");
        }
    }

    #[test]
    fn root_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("irtlake-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for (path, needle) in [(&missing, "cannot read"), (&empty, "no usable certificate")] {
            let s = settings(Mode::VerifyFull, Some(Roots::File(path.clone())));
            let Err(e) = s.connector() else {
                panic!("{} was accepted", path.display())
            };
            assert_eq!(e.error_name(), "Fatal.InvalidInput");
            let msg = e.to_string();
            assert!(
                msg.contains(needle) && msg.contains("sslrootcert="),
                "{msg}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
        // Without roots nothing is read.
        assert!(settings(Mode::Require, None).connector().is_ok());
    }
}
