//! Ward's HTTP API: axum routes over a [`Vault`].
//!
//! Handlers are thin: extract, call one vault method, map its error. Everything that decides
//! or writes lives in `ward-vault`. [`app`] builds the router so tests can serve it on an
//! ephemeral port exactly as `ward serve` does.
#![warn(missing_docs)]

mod conn;
mod error;
mod extract;
mod headers;
mod key_jobs;
mod metrics_layer;
pub mod openapi;
mod params;
mod routes;

pub use routes::doctor::watch as watch_deployment;
pub mod tls;
mod webhook_worker;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use ward_vault::Vault;

pub use conn::Limits;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use key_jobs::KeyJobs;
pub use webhook_worker::WebhookOptions;

use routes::{
    alerts, audit, auth, doctor, incidents, keys, records, rights, support, system, tenants, users,
    webhooks,
};

/// Largest request body accepted (a full batch of 1000 items fits).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    /// The vault.
    pub vault: Vault,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Wakes the background worker that runs record rotations.
    pub key_jobs: KeyJobs,
    /// Where `GET /v1/doctor` looks (files, key provider, certificate) beside the store.
    pub doctor: Arc<ward_doctor::Setup>,
    /// Whether session cookies carry `Secure` (set when the server speaks HTTPS).
    pub secure_cookies: bool,
    /// What the webhook delivery worker may reach.
    pub webhooks: WebhookOptions,
}

impl AppState {
    /// State over a vault, with the process-wide metrics recorder. Starts the background key
    /// job worker on the current runtime; it stops when the state is dropped.
    pub fn new(vault: Vault) -> Self {
        Self {
            key_jobs: KeyJobs::start(vault.clone()),
            vault,
            metrics: metrics_handle(),
            doctor: Arc::default(),
            secure_cookies: false,
            webhooks: WebhookOptions::default(),
        }
    }

    /// Sets what the webhook delivery worker may reach.
    #[must_use]
    pub fn with_webhooks(mut self, options: WebhookOptions) -> Self {
        self.webhooks = options;
        self
    }

    /// Tells `GET /v1/doctor` where the deployment keeps its files and keys (without it, the
    /// doctor checks the store only).
    #[must_use]
    pub fn with_doctor(mut self, setup: ward_doctor::Setup) -> Self {
        self.doctor = Arc::new(setup);
        self
    }
}

/// How often histogram samples are folded into their summaries when nobody scrapes.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Upper bounds of the request-latency buckets, in seconds: from a cached read (well under a
/// millisecond) to a slow export.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide Prometheus recorder (installed once; tests start many servers).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Buckets make the latency a real histogram, which Prometheus can aggregate across
            // routes and servers (a summary's quantiles cannot be), in constant memory per
            // series.
            let builder = PrometheusBuilder::new();
            let recorder = builder
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, in which case ours just renders empty.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            // A recorder built without the exporter's own listener keeps every histogram
            // sample until something drains it: only a scrape did, so a server nobody scraped
            // grew by every request's latency sample (the load soak found it: +70 MiB in 25
            // minutes). Upkeep folds the samples into the summaries every few seconds.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("ward-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start the metrics upkeep thread");
            }
            handle
        })
        .clone()
}

/// The `# HELP` line of every family Ward serves (docs/operations.md lists the same, with
/// their labels; a test holds the three together).
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!("ward_http_requests_total", "HTTP requests answered");
    describe_histogram!(
        "ward_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_counter!(
        "ward_access_denials_total",
        "Accesses the access decision refused, by code"
    );
    describe_counter!(
        "ward_auth_failures_total",
        "Failed authentications (API key, session, login, invitation, reset token)"
    );
    describe_counter!(
        "ward_auth_throttled_total",
        "Requests refused by the failed-authentication throttle"
    );
    describe_gauge!("ward_tenant_subjects", "Subjects a tenant stores");
    describe_gauge!("ward_tenant_records", "Live records a tenant stores");
    describe_gauge!("ward_audit_tree_size", "Events in the audit log");
    describe_gauge!(
        "ward_audit_checkpoint_tree_size",
        "Tree size of the newest signed audit checkpoint"
    );
    describe_gauge!(
        "ward_audit_last_checkpoint_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the newest signed audit checkpoint"
    );
    describe_gauge!(
        "ward_retention_last_run_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last full retention sweep (by any process)"
    );
    describe_gauge!(
        "ward_retention_last_outcome",
        "1 if this server's last full retention sweep succeeded, 0 if it failed"
    );
    describe_counter!(
        "ward_retention_records_total",
        "Records deleted or anonymized by retention in this server"
    );
    describe_gauge!(
        "ward_alerts_open",
        "Unresolved alerts of the detection rules, by rule and severity"
    );
    describe_counter!(
        "ward_alert_hits_total",
        "Detection rule hits (each opens an alert or counts toward an open one)"
    );
    describe_counter!(
        "ward_webhook_deliveries_total",
        "Webhook delivery attempts by outcome (delivered, retry, failed)"
    );
    describe_gauge!(
        "ward_webhook_outbox_pending",
        "Webhook deliveries waiting in the outbox (all servers)"
    );
    describe_counter!("ward_key_rotations_total", "Key rotations completed");
    describe_counter!(
        "ward_key_rotation_records_total",
        "Records re-sealed by record rotation jobs"
    );
    describe_gauge!(
        "ward_key_jobs_running",
        "Record rotation jobs this server runs"
    );
    describe_gauge!(
        "ward_key_job_progress_ratio",
        "A running record rotation job's progress, 0 to 1"
    );
    describe_gauge!(
        "ward_backup_last_outcome",
        "1 if the last scheduled backup run or verification succeeded, 0 if not"
    );
    describe_gauge!(
        "ward_backup_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last successful scheduled backup run or verification"
    );
    describe_gauge!(
        "ward_backup_location_bytes",
        Unit::Bytes,
        "Bytes the backup repository holds in a location"
    );
    describe_gauge!(
        "ward_backup_location_up",
        "1 if the backup location answered at the last run"
    );
}

/// The whole API.
// Long on purpose: the whole route table in one place, so every path, its handler and the
// layers around them read (and review) together.
pub fn app(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/tenants", post(tenants::create_tenant))
        .route("/tenants/{tenant}", get(tenants::get_tenant))
        .route(
            "/tenants/{tenant}/settings",
            axum::routing::patch(tenants::update_settings),
        )
        .route(
            "/tenants/{tenant}/keys",
            post(tenants::create_key).get(tenants::list_keys),
        )
        .route(
            "/tenants/{tenant}/keys/{key}",
            axum::routing::delete(tenants::revoke_key),
        )
        .route(
            "/tenants/{tenant}/subjects",
            post(records::create_subject).get(records::find_subject),
        )
        .route(
            "/tenants/{tenant}/subjects/{subject}/records",
            post(records::create_record).get(records::list_records),
        )
        .route(
            "/tenants/{tenant}/subjects/{subject}/records/{record}",
            get(records::get_record)
                .patch(records::patch_record)
                .delete(records::delete_record),
        )
        .route("/tenants/{tenant}/lookup", get(records::lookup))
        .route("/tenants/{tenant}/batch", post(records::batch))
        .route("/tenants/{tenant}/audit", get(audit::tenant_audit))
        .route("/tenants/{tenant}/cancel", post(rights::cancel))
        .route("/tenants/{tenant}/reactivate", post(rights::reactivate))
        .route("/tenants/{tenant}/export", get(rights::export_tenant))
        .route(
            "/tenants/{tenant}/subjects/export",
            get(rights::export_by_ref),
        )
        .route(
            "/tenants/{tenant}/subjects/{subject}/export",
            get(rights::export_subject),
        )
        .route(
            "/tenants/{tenant}/subjects/{subject}/erase",
            post(rights::erase),
        )
        .route(
            "/tenants/{tenant}/subjects/{subject}/restrictions",
            post(rights::restrict).delete(rights::lift),
        )
        .route(
            "/tenants/{tenant}/subjects/{subject}/hold",
            axum::routing::put(rights::hold),
        )
        .route(
            "/tenants/{tenant}/retention/{collection}",
            axum::routing::put(rights::set_retention),
        )
        .route(
            "/tenants/{tenant}/requests",
            post(rights::open_request).get(rights::list_requests),
        )
        .route(
            "/tenants/{tenant}/requests/{request}/complete",
            post(rights::complete_request),
        )
        .route(
            "/tenants/{tenant}/requests/{request}/reject",
            post(rights::reject_request),
        )
        .route("/retention/run", post(rights::run_retention))
        .route("/keys/rotate", post(keys::rotate))
        .route("/keys/rotate-records", post(keys::rotate_records))
        .route("/keys/status", get(keys::status))
        .route("/doctor", get(doctor::doctor))
        .route("/audit/public-key", get(audit::public_key))
        .route(
            "/audit/checkpoint",
            get(audit::checkpoint).post(audit::new_checkpoint),
        )
        .route("/audit/proof/inclusion", get(audit::inclusion))
        .route("/audit/proof/consistency", get(audit::consistency))
        .route(
            "/tenants/{tenant}/invitations",
            post(tenants::issue_invitation),
        )
        .route("/invitations/claim", post(tenants::claim_invitation))
        .route("/tenants/{tenant}/users", get(users::list_users))
        .route(
            "/tenants/{tenant}/users/{user}",
            axum::routing::patch(users::change_user).delete(users::remove_user),
        )
        .route(
            "/tenants/{tenant}/users/{user}/password-reset",
            post(users::issue_password_reset),
        )
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route(
            "/auth/sessions",
            get(auth::list_sessions).delete(auth::revoke_other_sessions),
        )
        .route(
            "/auth/sessions/{session}",
            axum::routing::delete(auth::revoke_session),
        )
        .route("/auth/password", post(auth::change_password))
        .route("/auth/password/reset", post(auth::reset_password))
        .route("/auth/totp", post(auth::start_totp))
        .route("/auth/totp/confirm", post(auth::confirm_totp))
        .route(
            "/tenants/{tenant}/support-grants",
            post(support::request_grant).get(support::list_grants),
        )
        .route(
            "/tenants/{tenant}/support-grants/{grant}/approve",
            post(support::approve_grant),
        )
        .route(
            "/tenants/{tenant}/support-grants/{grant}/deny",
            post(support::deny_grant),
        )
        .route(
            "/tenants/{tenant}/support-grants/{grant}/revoke",
            post(support::revoke_grant),
        )
        .route("/alerts", get(alerts::list_alerts))
        .route("/alerts/{alert}/acknowledge", post(alerts::acknowledge))
        .route("/alerts/{alert}/resolve", post(alerts::resolve))
        .route("/tenants/{tenant}/alerts", get(alerts::list_tenant_alerts))
        .route(
            "/tenants/{tenant}/alerts/{alert}/acknowledge",
            post(alerts::acknowledge_tenant),
        )
        .route(
            "/tenants/{tenant}/alerts/{alert}/resolve",
            post(alerts::resolve_tenant),
        )
        .route(
            "/webhooks",
            post(webhooks::create_operator_webhook).get(webhooks::list_operator_webhooks),
        )
        .route(
            "/webhooks/{webhook}",
            delete(webhooks::delete_operator_webhook),
        )
        .route(
            "/webhooks/{webhook}/deliveries",
            get(webhooks::operator_deliveries),
        )
        .route(
            "/webhooks/{webhook}/test",
            post(webhooks::test_operator_webhook),
        )
        .route(
            "/tenants/{tenant}/webhooks",
            post(webhooks::create_tenant_webhook).get(webhooks::list_tenant_webhooks),
        )
        .route(
            "/tenants/{tenant}/webhooks/{webhook}",
            delete(webhooks::delete_tenant_webhook),
        )
        .route(
            "/tenants/{tenant}/webhooks/{webhook}/deliveries",
            get(webhooks::tenant_deliveries),
        )
        .route(
            "/tenants/{tenant}/webhooks/{webhook}/test",
            post(webhooks::test_tenant_webhook),
        )
        .route(
            "/incidents",
            post(incidents::open_operator_incident).get(incidents::list_operator_incidents),
        )
        .route(
            "/incidents/{incident}",
            get(incidents::get_operator_incident),
        )
        .route(
            "/incidents/{incident}/notes",
            post(incidents::note_operator_incident),
        )
        .route(
            "/incidents/{incident}/notified",
            post(incidents::notified_operator_incident),
        )
        .route(
            "/incidents/{incident}/close",
            post(incidents::close_operator_incident),
        )
        .route(
            "/incidents/{incident}/notification",
            get(incidents::operator_notification),
        )
        .route(
            "/tenants/{tenant}/incidents",
            post(incidents::open_tenant_incident).get(incidents::list_tenant_incidents),
        )
        .route(
            "/tenants/{tenant}/incidents/{incident}",
            get(incidents::get_tenant_incident),
        )
        .route(
            "/tenants/{tenant}/incidents/{incident}/notes",
            post(incidents::note_tenant_incident),
        )
        .route(
            "/tenants/{tenant}/incidents/{incident}/notified",
            post(incidents::notified_tenant_incident),
        )
        .route(
            "/tenants/{tenant}/incidents/{incident}/close",
            post(incidents::close_tenant_incident),
        )
        .route(
            "/tenants/{tenant}/incidents/{incident}/notification",
            get(incidents::tenant_notification),
        );
    Router::new()
        .route("/healthz", get(system::healthz))
        .route("/openapi.json", get(openapi::serve))
        .route("/metrics", get(system::metrics))
        .nest("/v1", v1)
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(metrics_layer::track))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// Serves the API on `listener` with default [`Limits`] until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, Limits::default(), shutdown).await
}

/// Serves the API on `listener` with `limits` until `shutdown` resolves. Failed
/// authentications are summarized into the audit log as their windows close and, for the
/// windows still open, at shutdown.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (vault, webhooks) = (state.vault.clone(), state.webhooks);
    serve_app(
        listener,
        app(state),
        (vault, webhooks),
        limits,
        conn::Plain,
        shutdown,
    )
    .await
}

/// The accept loop plus the failed-authentication summaries, the webhook delivery worker and
/// the incident clock, for either scheme.
async fn serve_app<H: conn::Handshake>(
    listener: TcpListener,
    app: Router,
    (vault, webhooks): (Vault, WebhookOptions),
    limits: Limits,
    handshake: H,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let flusher = tokio::spawn(flush_auth_failures(vault.clone()));
    let deliverer = tokio::spawn(webhook_worker::run(vault.clone(), webhooks));
    let clock = tokio::spawn(incident_clock(vault.clone()));
    let r = conn::serve(listener, app, limits, handshake, shutdown).await;
    flusher.abort();
    deliverer.abort();
    clock.abort();
    if let Err(e) = vault.flush_auth_failures(true).await {
        tracing::error!(error = %e, "writing the failed-authentication summaries");
    }
    r
}

/// The incidents' 72-hour clock: once a minute, raises the 48-hour and 72-hour alerts of
/// open incidents whose affected tenants are not all notified (`Vault::check_incident_clocks`,
/// which reads the vault's clock, so tests drive it by moving that clock and calling it).
async fn incident_clock(vault: Vault) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = vault.check_incident_clocks().await {
            tracing::error!(error = %e, "checking the incidents' notification clocks");
        }
    }
}

/// Writes the summaries of closed failed-authentication windows once a minute.
async fn flush_auth_failures(vault: Vault) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = vault.flush_auth_failures(false).await {
            tracing::error!(error = %e, "writing the failed-authentication summaries");
        }
    }
}
