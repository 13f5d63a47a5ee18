//! The webhook delivery worker: sends the outbox's due deliveries in the background.
//!
//! It wakes every second, and at once when a commit queued deliveries, claims due rows with a
//! lease (so several servers on one database never send a row twice at once), and posts each
//! with at most [`IN_FLIGHT`] in flight and [`ATTEMPT_TIMEOUT`] per attempt. A receiver that
//! is down or slow therefore never slows a request. Redirects are not followed: a 3xx is a
//! failed attempt like any other non-2xx.
//!
//! A tenant webhook's host is resolved here, every address checked with
//! [`ward_vault::webhook_target::is_forbidden_target`], and the connection made to a checked
//! address, so a DNS answer that changes between check and connect gains nothing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use ward_vault::{ClaimedDelivery, Vault};

/// Most deliveries being sent at once by one server.
pub(crate) const IN_FLIGHT: usize = 8;

/// Longest an attempt may take, connection and answer together.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the outbox is polled when nothing wakes the worker.
const POLL: Duration = Duration::from_secs(1);

/// What the worker may reach.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookOptions {
    /// Let tenant webhooks reach loopback, private and link-local addresses (off by default:
    /// the SSRF rule). For a deployment whose receivers are on its own network, and tests.
    pub allow_private_targets: bool,
}

/// Runs until aborted.
pub(crate) async fn run(vault: Vault, options: WebhookOptions) {
    let owner = uuid::Uuid::new_v4().to_string();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let tls = tls_connector();
    loop {
        let free = u32::try_from(slots.available_permits()).unwrap_or(0);
        if free > 0 {
            match vault.claim_webhook_deliveries(&owner, free).await {
                Ok(claimed) => {
                    for d in claimed {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let (vault, owner, tls) = (vault.clone(), owner.clone(), tls.clone());
                        tokio::spawn(async move {
                            let result = attempt(&d, options, tls.as_ref()).await;
                            let ok = result.starts_with('2') && result.len() == 3;
                            if let Err(e) = vault
                                .record_webhook_attempt(&owner, d.id, d.attempts, &result, ok)
                                .await
                            {
                                tracing::warn!(delivery = %d.id, error = %e, "webhook attempt not recorded");
                            }
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the webhook outbox"),
            }
        }
        tokio::select! {
            () = vault.webhook_wake().notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// One attempt; the HTTP status (`"200"`) or an error class.
async fn attempt(
    d: &ClaimedDelivery,
    options: WebhookOptions,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> String {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, post(d, options, tls)).await {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(class)) => class.to_owned(),
        Err(_) => "timeout".to_owned(),
    }
}

async fn post(
    d: &ClaimedDelivery,
    options: WebhookOptions,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<u16, &'static str> {
    let url = url::Url::parse(&d.url).map_err(|_| "invalid_url")?;
    let host = url.host_str().ok_or("invalid_url")?.to_owned();
    let port = url.port_or_known_default().ok_or("invalid_url")?;
    let addr = resolve(
        &host,
        port,
        d.tenant.is_some() && !options.allow_private_targets,
    )
    .await?;
    let stream = TcpStream::connect(addr).await.map_err(|_| "connect")?;
    // Wall time, not the vault's clock: the receiver checks it against its own clock.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = ward_crypto::webhook_signature(d.secret.as_bytes(), now, d.payload.as_bytes());
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "Ward-Webhooks/1")
        .header("ward-signature", signature)
        .header("ward-delivery", d.id.to_string())
        .header("ward-event", d.event.clone())
        .body(Full::new(Bytes::from(d.payload.clone())))
        .map_err(|_| "invalid_url")?;
    if url.scheme() == "https" {
        let tls = tls.ok_or("tls")?;
        let name = rustls_pki_types::ServerName::try_from(host).map_err(|_| "invalid_url")?;
        let stream = tls.connect(name, stream).await.map_err(|_| "tls")?;
        send(TokioIo::new(stream), req).await
    } else {
        send(TokioIo::new(stream), req).await
    }
}

async fn send<I>(io: I, req: hyper::Request<Full<Bytes>>) -> Result<u16, &'static str>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|_| "connect")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|_| "http")?;
    // Only the status counts: the body is neither read nor stored (a receiver cannot make
    // Ward buffer a large answer), and dropping it closes the connection.
    Ok(resp.status().as_u16())
}

/// The address to connect to: the first the host resolves to, or, when `filter` (a tenant
/// webhook under the SSRF rule), the first if none of them is forbidden.
async fn resolve(host: &str, port: u16, filter: bool) -> Result<SocketAddr, &'static str> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| "dns")?
        .collect();
    if filter
        && addrs
            .iter()
            .any(|a| ward_vault::webhook_target::is_forbidden_target(a.ip()))
    {
        return Err("refused_private_target");
    }
    addrs.first().copied().ok_or("dns")
}

/// A TLS client trusting the system's root certificates; `None` (https deliveries then fail
/// as `tls`) when there are none.
fn tls_connector() -> Option<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!("no system root certificates: https webhooks will fail");
        return None;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
