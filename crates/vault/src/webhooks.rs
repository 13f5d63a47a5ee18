//! Alert webhooks: where a tenant's (or, for the operator, every) alert is sent.
//!
//! The signing secret is shown once, at creation, and stored sealed: a tenant webhook's under
//! the tenant's free-text key (destroying the tenant shreds it), an operator webhook's under a
//! platform key derived from the root key. Deliveries are rows of the outbox written in the
//! same commit as the alert change they report (see `monitor/alerts.rs`); the server's
//! delivery worker sends them ([`Vault::claim_webhook_deliveries`],
//! [`Vault::record_webhook_attempt`]).

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::{Action, AuditEvent};
use ward_crypto::{Zeroizing, aad};
use ward_store::{
    AlertRow, DELIVERY_PENDING, DeliveryOutcome, DeliveryQuery, DeliveryRow, Op, WebhookOp,
    WebhookRow,
};

use crate::{Operation, PlatformOperation, RequestContext, Result, Vault, VaultError, sealed_text};

/// Most live webhooks a tenant (or the operator) may have: each alert costs one delivery per
/// webhook, so the cap bounds what one alert makes Ward send.
pub const MAX_WEBHOOKS: usize = 10;

/// Longest webhook URL, in bytes.
pub const MAX_WEBHOOK_URL: usize = 2_048;

/// Shortest and longest secret a caller may give, in characters (printable ASCII, no space).
pub const WEBHOOK_SECRET_LEN: std::ops::RangeInclusive<usize> = 24..=256;

/// Largest page of the delivery log.
pub const MAX_DELIVERY_PAGE: u32 = 200;

/// Attempts after which a delivery is given up as failed.
pub const MAX_DELIVERY_ATTEMPTS: i64 = 10;

/// How long a claimed delivery is held before another server may take it: longer than an
/// attempt's timeout, so a live server never loses its lease mid-attempt.
const LEASE: time::Duration = time::Duration::seconds(60);

/// The column name bound into a tenant webhook secret's associated data.
const SECRET_COLUMN: &str = "webhooks.secret";

/// A webhook as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookOut {
    /// Webhook id.
    pub id: Uuid,
    /// The tenant whose alerts it receives; null for an operator webhook.
    pub tenant: Option<Uuid>,
    /// Where deliveries are posted.
    pub url: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
}

/// A new webhook and its secret, which is never shown again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// The signing secret (given by the caller or generated): shown once.
    pub secret: String,
}

/// One line of a webhook's delivery log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryOut {
    /// Delivery id (the `Ward-Delivery` header).
    pub id: Uuid,
    /// `alert.opened`, `alert.acknowledged`, `alert.resolved` or `webhook.test`.
    pub event: String,
    /// The alert concerned.
    pub alert: Option<Uuid>,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the next attempt is due (pending ones).
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// The latest attempt.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// The latest attempt's HTTP status or error class (`timeout`, `connect`,
    /// `refused_private_target`, …).
    pub last_result: Option<String>,
    /// When a 2xx answer came.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

/// A delivery this server holds the lease of, ready to send.
pub struct ClaimedDelivery {
    /// Delivery id.
    pub id: Uuid,
    /// The webhook's tenant (`None`: an operator webhook, which may target any address).
    pub tenant: Option<Uuid>,
    /// Where to post.
    pub url: String,
    /// The event kind.
    pub event: String,
    /// The JSON body.
    pub payload: String,
    /// The signing secret.
    pub secret: Zeroizing<String>,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// Checks a webhook URL: absolute http(s), a host, no userinfo, at most [`MAX_WEBHOOK_URL`]
/// bytes. Whether its addresses are allowed is decided at delivery time (DNS may change).
pub fn validate_webhook_url(raw: &str) -> Result<url::Url> {
    let bad = |why: &str| VaultError::invalid("invalid_url", why, Some("url"));
    if raw.len() > MAX_WEBHOOK_URL {
        return Err(bad("the url is longer than 2048 bytes"));
    }
    let url = url::Url::parse(raw).map_err(|_| bad("the url is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the url must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("the url has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("the url may not carry a user name or password"));
    }
    Ok(url)
}

fn validate_secret(secret: &str) -> Result<()> {
    if WEBHOOK_SECRET_LEN.contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(VaultError::invalid(
            "invalid_secret",
            "the secret must be 24 to 256 printable ASCII characters without spaces",
            Some("secret"),
        ))
    }
}

fn generate_secret() -> Result<String> {
    let bytes = Zeroizing::new(ward_crypto::random_bytes::<32>()?);
    Ok(hex::encode(bytes.as_slice()))
}

impl Vault {
    /// Creates a webhook of `tenant` (`None`: the operator's). The secret is the caller's
    /// (checked against [`WEBHOOK_SECRET_LEN`]) or 32 random bytes in hex.
    ///
    /// # Errors
    /// `Invalid` (field `url` or `secret`); `StateConflict` `webhook_limit` past
    /// [`MAX_WEBHOOKS`]; `NotFound`/`Forbidden` from the access decision.
    pub async fn create_webhook(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        url: &str,
        secret: Option<String>,
    ) -> Result<CreatedWebhook> {
        let secret = secret.map(Zeroizing::new);
        let mut event = self
            .authorize_webhooks(ctx, tenant, Action::WebhookCreate)
            .await?;
        let url = validate_webhook_url(url)?;
        let secret = match secret {
            Some(s) => {
                validate_secret(&s)?;
                s
            }
            None => Zeroizing::new(generate_secret()?),
        };
        if self.inner.store.webhooks(tenant).await?.len() >= MAX_WEBHOOKS {
            return Err(VaultError::StateConflict {
                code: "webhook_limit",
                reason: format!("at most {MAX_WEBHOOKS} webhooks"),
            });
        }
        let id = Uuid::new_v4();
        let sealed = self.seal_webhook_secret(tenant, id, &secret).await?;
        let row = WebhookRow {
            id,
            tenant,
            url: url.to_string(),
            secret: sealed,
            created_at: self.now(),
            created_by: event.actor.id.clone(),
            deleted_at: None,
        };
        event.detail = Some(serde_json::json!({ "webhook": id, "url": row.url }));
        let out = webhook_out(&row);
        self.commit(vec![
            Op::Webhook(WebhookOp::Insert(row)),
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(CreatedWebhook {
            webhook: out,
            secret: secret.to_string(),
        })
    }

    /// The live webhooks of `tenant` (`None`: the operator's).
    ///
    /// # Errors
    /// `NotFound`/`Forbidden` from the access decision.
    pub async fn list_webhooks(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
    ) -> Result<Vec<WebhookOut>> {
        let event = self
            .authorize_webhooks(ctx, tenant, Action::WebhookRead)
            .await?;
        let rows = self.inner.store.webhooks(tenant).await?;
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(rows.iter().map(webhook_out).collect())
    }

    /// Deletes a webhook; its pending deliveries are dropped, its log kept.
    ///
    /// # Errors
    /// `NotFound` for a webhook not in the view; the access decision's errors.
    pub async fn delete_webhook(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
    ) -> Result<()> {
        let mut event = self
            .authorize_webhooks(ctx, tenant, Action::WebhookDelete)
            .await?;
        event.detail = Some(serde_json::json!({ "webhook": id }));
        self.commit(vec![
            Op::Webhook(WebhookOp::Delete {
                id,
                tenant,
                at: self.now(),
            }),
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(())
    }

    /// A webhook's delivery log, newest first, after delivery `before` when given.
    ///
    /// # Errors
    /// `NotFound` for a webhook (or `before`) not in the view; the access decision's errors.
    pub async fn list_webhook_deliveries(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<DeliveryOut>> {
        let mut event = self
            .authorize_webhooks(ctx, tenant, Action::WebhookRead)
            .await?;
        self.visible_webhook(tenant, id).await?;
        let before = match before {
            None => None,
            Some(d) => match self.inner.store.webhook_delivery(d).await? {
                Some(row) if row.webhook == id => Some((row.created_at, row.id)),
                _ => return Err(VaultError::NotFound("webhook delivery")),
            },
        };
        let rows = self
            .inner
            .store
            .webhook_deliveries(&DeliveryQuery {
                webhook: id,
                before,
                limit: limit.clamp(1, MAX_DELIVERY_PAGE),
            })
            .await?;
        event.detail = Some(serde_json::json!({ "webhook": id }));
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(rows.iter().map(delivery_out).collect())
    }

    /// Queues a `webhook.test` delivery to a webhook.
    ///
    /// # Errors
    /// `NotFound` for a webhook not in the view; the access decision's errors.
    pub async fn test_webhook(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
    ) -> Result<DeliveryOut> {
        let mut event = self
            .authorize_webhooks(ctx, tenant, Action::WebhookTest)
            .await?;
        let hook = self.visible_webhook(tenant, id).await?;
        let delivery_id = Uuid::new_v4();
        let at = self.now();
        let payload = serde_json::json!({
            "event": "webhook.test",
            "delivery": delivery_id,
            "webhook": hook.id,
            "sent_for": event.actor.id,
            "at": at.unix_timestamp(),
        });
        let row = delivery_row(
            delivery_id,
            &hook,
            "webhook.test",
            None,
            payload.to_string(),
            at,
        );
        let out = delivery_out(&row);
        event.detail = Some(serde_json::json!({ "webhook": id, "delivery": delivery_id }));
        self.commit(vec![
            Op::Webhook(WebhookOp::Enqueue(row)),
            Op::Audit(Box::new(event)),
        ])
        .await?;
        self.inner.webhook_wake.notify_one();
        Ok(out)
    }

    /// The outbox rows reporting `event` of alert `a` to every live webhook that receives
    /// it: the alert's tenant's and the operator's. Committed with the alert change.
    pub(crate) async fn webhook_enqueue_ops(&self, event: &str, a: &AlertRow) -> Result<Vec<Op>> {
        let mut hooks = self.inner.store.webhooks(None).await?;
        if let Some(t) = a.tenant {
            hooks.extend(self.inner.store.webhooks(Some(t)).await?);
        }
        let at = self.now();
        let mut ops = Vec::with_capacity(hooks.len());
        for hook in &hooks {
            let id = Uuid::new_v4();
            let payload = serde_json::json!({
                "event": event,
                "delivery": id,
                "webhook": hook.id,
                "alert": crate::monitor::alert_view(a),
            });
            ops.push(Op::Webhook(WebhookOp::Enqueue(delivery_row(
                id,
                hook,
                event,
                Some(a.id),
                payload.to_string(),
                at,
            ))));
        }
        Ok(ops)
    }

    /// Wakes the delivery worker (after a commit that queued deliveries).
    pub(crate) fn wake_webhooks(&self) {
        self.inner.webhook_wake.notify_one();
    }

    /// What the delivery worker waits on between polls.
    pub fn webhook_wake(&self) -> &tokio::sync::Notify {
        &self.inner.webhook_wake
    }

    /// Takes the lease of up to `limit` due deliveries for `owner` (this server), with their
    /// webhook's URL and opened secret. A row another server claimed first is skipped; a row
    /// whose webhook is gone or whose secret does not open is given up.
    ///
    /// # Errors
    /// If the store cannot be read.
    pub async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = self.now();
        let due = self.inner.store.due_webhook_deliveries(now, limit).await?;
        let mut out = Vec::new();
        for d in due {
            let claim = Op::Webhook(WebhookOp::Claim {
                id: d.id,
                owner: owner.to_owned(),
                now,
                until: now + LEASE,
            });
            match self.commit(vec![claim]).await {
                Ok(_) => {}
                Err(ward_store::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            let opened = match self.inner.store.webhook(d.webhook).await? {
                Some(hook) if hook.deleted_at.is_none() => self
                    .open_webhook_secret(&hook)
                    .await
                    .map(|secret| (hook.url, secret)),
                _ => Err(VaultError::NotFound("webhook")),
            };
            match opened {
                Ok((url, secret)) => out.push(ClaimedDelivery {
                    id: d.id,
                    tenant: d.tenant,
                    url,
                    event: d.event,
                    payload: d.payload,
                    secret,
                    attempts: d.attempts,
                }),
                Err(e) => {
                    tracing::warn!(delivery = %d.id, error = %e, "webhook delivery given up");
                    self.record_webhook_attempt(owner, d.id, d.attempts, "webhook_unusable", false)
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Records an attempt of a claimed delivery: delivered, or retried after an exponential
    /// backoff with jitter (10 s doubling, at most an hour), or failed after
    /// [`MAX_DELIVERY_ATTEMPTS`]. Returns what it came to.
    ///
    /// # Errors
    /// `NotFound` when the lease was lost meanwhile; store errors.
    pub async fn record_webhook_attempt(
        &self,
        owner: &str,
        id: Uuid,
        attempts_before: i64,
        result: &str,
        delivered: bool,
    ) -> Result<&'static str> {
        let at = self.now();
        let attempts = attempts_before + 1;
        let (outcome, name) = if delivered {
            (DeliveryOutcome::Delivered, "delivered")
        } else if attempts >= MAX_DELIVERY_ATTEMPTS {
            (DeliveryOutcome::Failed, "failed")
        } else {
            (DeliveryOutcome::Retry(at + backoff(attempts)), "retry")
        };
        self.commit(vec![Op::Webhook(WebhookOp::Record {
            id,
            owner: owner.to_owned(),
            at,
            result: result.to_owned(),
            outcome,
        })])
        .await?;
        metrics::counter!("ward_webhook_deliveries_total", "outcome" => name).increment(1);
        Ok(name)
    }

    async fn authorize_webhooks(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        action: Action,
    ) -> Result<AuditEvent> {
        let event = self.event(ctx, action, tenant);
        match tenant {
            None => {
                self.check_platform(ctx, PlatformOperation::ManageWebhooks, &event)
                    .await?;
            }
            Some(t) => {
                let trow = self.visible_tenant(ctx, t, &event).await?;
                let access = self.tenant_access(ctx, &trow, Operation::ManageWebhooks);
                self.check(&access, &event).await?;
            }
        }
        Ok(event)
    }

    async fn visible_webhook(&self, tenant: Option<Uuid>, id: Uuid) -> Result<WebhookRow> {
        match self.inner.store.webhook(id).await? {
            Some(w) if w.tenant == tenant && w.deleted_at.is_none() => Ok(w),
            _ => Err(VaultError::NotFound("webhook")),
        }
    }

    async fn seal_webhook_secret(
        &self,
        tenant: Option<Uuid>,
        id: Uuid,
        secret: &str,
    ) -> Result<Vec<u8>> {
        match tenant {
            None => self
                .inner
                .webhook_keys
                .seal(secret.as_bytes(), |v| aad::webhook_secret(id.as_bytes(), v)),
            Some(t) => {
                let trow = self
                    .inner
                    .store
                    .tenant(t)
                    .await?
                    .ok_or(VaultError::NotFound("tenant"))?;
                let tk = self.inner.keys.tenant(&trow)?;
                Ok(sealed_text::seal(&tk, t, id, SECRET_COLUMN, secret)?.into_bytes())
            }
        }
    }

    async fn open_webhook_secret(&self, hook: &WebhookRow) -> Result<Zeroizing<String>> {
        match hook.tenant {
            None => self
                .inner
                .webhook_keys
                .open_text(&hook.secret, |v| aad::webhook_secret(hook.id.as_bytes(), v)),
            Some(t) => {
                let trow = self
                    .inner
                    .store
                    .tenant(t)
                    .await?
                    .ok_or(VaultError::NotFound("tenant"))?;
                let tk = self.inner.keys.tenant(&trow)?;
                let stored =
                    std::str::from_utf8(&hook.secret).map_err(|_| VaultError::Integrity)?;
                // A value without the sealed prefix was never written by Ward: refuse it.
                if !stored.starts_with(sealed_text::PREFIX) {
                    return Err(VaultError::Integrity);
                }
                Ok(Zeroizing::new(sealed_text::open(
                    &tk,
                    t,
                    hook.id,
                    SECRET_COLUMN,
                    stored,
                )?))
            }
        }
    }
}

/// 10 s doubling per attempt, at most an hour, plus up to a tenth more at random (so the
/// retries of many deliveries failed together spread out).
fn backoff(attempts: i64) -> time::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let base = 10_i64.saturating_mul(1_i64 << exp).min(3_600);
    let jitter = ward_crypto::random_bytes::<2>()
        .map(|b| i64::from(u16::from_be_bytes(b)) % (base / 10 + 1))
        .unwrap_or(0);
    time::Duration::seconds(base + jitter)
}

fn delivery_row(
    id: Uuid,
    hook: &WebhookRow,
    event: &str,
    alert: Option<Uuid>,
    payload: String,
    at: OffsetDateTime,
) -> DeliveryRow {
    DeliveryRow {
        id,
        webhook: hook.id,
        tenant: hook.tenant,
        event: event.to_owned(),
        alert,
        payload,
        status: DELIVERY_PENDING.to_owned(),
        attempts: 0,
        created_at: at,
        next_attempt_at: at,
        last_attempt_at: None,
        last_result: None,
        delivered_at: None,
        lease_owner: None,
        lease_until: None,
    }
}

fn webhook_out(w: &WebhookRow) -> WebhookOut {
    WebhookOut {
        id: w.id,
        tenant: w.tenant,
        url: w.url.clone(),
        created_at: w.created_at,
        created_by: w.created_by.clone(),
    }
}

fn delivery_out(d: &DeliveryRow) -> DeliveryOut {
    DeliveryOut {
        id: d.id,
        event: d.event.clone(),
        alert: d.alert,
        status: d.status.clone(),
        attempts: d.attempts,
        created_at: d.created_at,
        next_attempt_at: d.next_attempt_at,
        last_attempt_at: d.last_attempt_at,
        last_result: d.last_result.clone(),
        delivered_at: d.delivered_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_an_hour() {
        for (n, base) in [
            (1, 10),
            (2, 20),
            (3, 40),
            (9, 2_560),
            (10, 3_600),
            (40, 3_600),
        ] {
            let d = backoff(n).whole_seconds();
            assert!(d >= base && d <= base + base / 10, "{n}: {d}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http_without_userinfo() {
        assert!(validate_webhook_url("https://hooks.example.com/ward").is_ok());
        assert!(validate_webhook_url("http://127.0.0.1:8080/x").is_ok());
        for bad in [
            "ftp://example.com/",
            "/relative",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(validate_webhook_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2_048));
        assert!(validate_webhook_url(&long).is_err());
    }

    #[test]
    fn secrets_are_printable_and_bounded() {
        assert!(validate_secret(&"a".repeat(24)).is_ok());
        assert!(validate_secret(&"a".repeat(23)).is_err());
        assert!(validate_secret(&"a".repeat(257)).is_err());
        assert!(validate_secret(&format!("{} x", "a".repeat(24))).is_err());
        assert_eq!(generate_secret().map(|s| s.len()).ok(), Some(64));
    }
}
