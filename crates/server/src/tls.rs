//! HTTPS with rustls on aws-lc-rs: TLS 1.2 and 1.3 only, the provider's default (strong,
//! AEAD-only) cipher suites, and HSTS on every response.
//!
//! Cipher choices follow rustls releases: upgrading the dependency is how the suite list
//! moves with the cryptographic landscape, with no configuration to go stale.

use std::path::Path;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::STRICT_TRANSPORT_SECURITY;
use axum::middleware::Next;
use axum::response::Response;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use tokio_rustls::TlsAcceptor;

use crate::AppState;
use crate::conn::{Handshake, Limits, Tracked};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain could not be read.
    #[error("reading certificate {path}: {message}")]
    Certificate {
        /// File.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The private key could not be read.
    #[error("reading private key {path}: {message}")]
    Key {
        /// File.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the configuration (e.g. key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Builds the server configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificate {
            path: cert.display().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.display().to_string(),
            message: "no certificate in file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.display().to_string(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the API over TLS on `listener` until `shutdown` resolves, with default limits.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    config: Arc<ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_tls_with(listener, state, config, Limits::default(), shutdown).await
}

/// Serves the API over TLS on `listener` with `limits` until `shutdown` resolves. The TLS
/// handshake must finish within the header timeout.
pub async fn serve_tls_with(
    listener: std::net::TcpListener,
    state: AppState,
    config: Arc<ServerConfig>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (vault, webhooks) = (state.vault.clone(), state.webhooks);
    let state = AppState {
        secure_cookies: true,
        ..state
    };
    let app = crate::app(state).layer(axum::middleware::from_fn(hsts));
    crate::serve_app(
        listener,
        app,
        (vault, webhooks),
        limits,
        Tls(TlsAcceptor::from(config)),
        shutdown,
    )
    .await
}

#[derive(Clone)]
struct Tls(TlsAcceptor);

impl Handshake for Tls {
    type Stream = tokio_rustls::server::TlsStream<Tracked<tokio::net::TcpStream>>;
    async fn handshake(
        &self,
        tcp: Tracked<tokio::net::TcpStream>,
    ) -> std::io::Result<Self::Stream> {
        self.0.accept(tcp).await
    }
}

/// Tells browsers to use HTTPS only, for two years, subdomains included.
async fn hsts(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    resp
}
