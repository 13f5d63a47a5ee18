//! Authentication: a bearer token to a principal, behind the failed-authentication throttle,
//! with failures audited per source and window rather than one event per request.

use std::time::Instant;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ward_audit::{Action, Actor, AuditEvent, Outcome};
use ward_crypto::{ct_eq, token_hash};
use ward_policy::Purpose;
use ward_store::Op;

use crate::auth_guard::{Record, WindowCount};
use crate::{Principal, Result, Role, Vault, VaultError, parse_list};

/// A token this server validated moments ago: what it resolved to, when, and when the key ends
/// (an expiry is checked against the vault's clock even while the entry is fresh).
pub(crate) struct CachedKey {
    pub(crate) principal: Principal,
    at: Instant,
    expires_at: Option<OffsetDateTime>,
}

/// Most summary events written by one commit when flushing.
const FLUSH_BATCH: usize = 1_000;

impl Vault {
    /// Resolves a bearer token to its principal.
    ///
    /// A source (keyed hash of `client_ip`) or a token that failed `lockout_threshold` times
    /// within `lockout_window` is refused with [`VaultError::Throttled`] before the store is
    /// asked; a token this server validated moments ago passes without being charged. The
    /// first failure of a source in a window is audited at once (without the token), the
    /// rest are counted and audited as one summary (see [`Vault::flush_auth_failures`]).
    pub async fn authenticate(
        &self,
        token: Option<&str>,
        request_id: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<Principal> {
        let hash = token.map(token_hash);
        if let Some(h) = &hash {
            let cache = self
                .inner
                .auth_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(h)
                && c.at.elapsed() < crate::AUTH_CACHE_TTL
                && c.expires_at.is_none_or(|end| end > self.now())
            {
                return Ok(c.principal.clone());
            }
        }
        let now = self.now();
        let (source, token_key) = self.throttle_keys(client_ip, hash.as_ref());
        self.check_throttle(source.as_deref(), token_key.as_ref())?;
        let row = match &hash {
            Some(h) => self.inner.store.api_key_by_hash(h).await?,
            None => None,
        };
        let expires_at = row.as_ref().and_then(|r| r.expires_at);
        let principal = match (row, &hash) {
            // The store found the row by its hash; comparing again in constant time keeps
            // the secret comparison itself out of any index's early exit.
            (Some(r), Some(h))
                if r.revoked_at.is_none()
                    && r.expires_at.is_none_or(|end| end > now)
                    && ct_eq(&r.token_hash, h) =>
            {
                Some(Principal::api_key(
                    r.id,
                    r.tenant,
                    Role::parse(&r.role)?,
                    parse_list(&r.purposes)
                        .iter()
                        .filter_map(|p| Purpose::parse(p).ok())
                        .collect(),
                ))
            }
            _ => None,
        };
        let Some(principal) = principal else {
            let reason = if token.is_some() {
                "unknown, revoked or expired API key"
            } else {
                "no API key"
            };
            self.record_auth_failure(source, token_key, request_id, reason, now)
                .await?;
            return Err(VaultError::Unauthenticated);
        };
        if let Some(h) = hash {
            let mut cache = self
                .inner
                .auth_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(
                h,
                CachedKey {
                    principal: principal.clone(),
                    at: Instant::now(),
                    expires_at,
                },
            );
        }
        Ok(principal)
    }

    /// The throttle's keys for a secret presented by `client_ip`: the source's keyed hash and
    /// a short prefix of the secret's hash, which names it in memory without keeping it.
    pub(crate) fn throttle_keys(
        &self,
        client_ip: Option<std::net::IpAddr>,
        secret_hash: Option<&[u8; 32]>,
    ) -> (Option<String>, Option<[u8; 16]>) {
        let source = client_ip.map(|ip| self.client_hash(ip));
        let token_key = secret_hash.map(|h| {
            let mut k = [0u8; 16];
            k.copy_from_slice(&h[..16]);
            k
        });
        (source, token_key)
    }

    /// Refuses a source or secret that is out of attempts, before the store is asked.
    pub(crate) fn check_throttle(
        &self,
        source: Option<&str>,
        token_key: Option<&[u8; 16]>,
    ) -> Result<()> {
        let now = self.now();
        self.inner
            .auth_guard
            .check(source, token_key, now)
            .map_err(|r| {
                metrics::counter!("ward_auth_throttled_total").increment(1);
                // A refused attempt is a failed one to the rules too; its alert is written
                // beside the request, which is answered at once.
                let hits = self
                    .inner
                    .monitor
                    .observe_auth_failure(source, token_key, now);
                if !hits.is_empty()
                    && let Ok(rt) = tokio::runtime::Handle::try_current()
                {
                    let vault = self.clone();
                    rt.spawn(async move { vault.raise(hits).await });
                }
                VaultError::Throttled {
                    retry_after: r.retry_after,
                }
            })
    }

    /// Charges a failed credential (an API key, an invitation) to the throttle and audits it
    /// the aggregated way: the source's first failure in a window at once, the rest as one
    /// summary when the window closes.
    pub(crate) async fn record_auth_failure(
        &self,
        source: Option<String>,
        token_key: Option<[u8; 16]>,
        request_id: &str,
        reason: &'static str,
        now: OffsetDateTime,
    ) -> Result<()> {
        // The reason is one of the callers' fixed phrases: a bounded label.
        metrics::counter!("ward_auth_failures_total", "reason" => reason).increment(1);
        let (record, closed) =
            self.inner
                .auth_guard
                .fail(source.as_deref(), token_key.as_ref(), now);
        self.observe_auth_failure(source.as_deref(), token_key.as_ref())
            .await;
        let mut ops = Vec::new();
        if let Some((src, w)) = closed {
            ops.push(Op::Audit(Box::new(self.auth_summary(&src, &w, now))));
        }
        if let Record::First { start } = record {
            let event = failed_authentication(
                now,
                request_id.to_owned(),
                reason,
                source,
                json!({
                    "failures": 1,
                    "window_start": rfc3339(start),
                    "further_failures": "counted in one summary event when the window closes",
                }),
            );
            ops.push(Op::Audit(Box::new(event)));
        }
        if !ops.is_empty() {
            self.commit(ops).await?;
        }
        Ok(())
    }

    /// Writes one summary event per source whose failure window has closed (every open
    /// window when `all`, as at shutdown); returns how many were written. Also forgets
    /// throttle state that has refilled or outlived the policy's IP-hash window.
    pub async fn flush_auth_failures(&self, all: bool) -> Result<usize> {
        let now = self.now();
        // Alert hits counted in memory are written on the same schedule.
        if let Err(e) = self.flush_alerts(all).await {
            tracing::warn!(error = %e, "alert hits not written");
        }
        let closed = self.inner.auth_guard.take_closed(now, all);
        let n = closed.len();
        for chunk in closed.chunks(FLUSH_BATCH) {
            let ops = chunk
                .iter()
                .map(|(src, w)| Op::Audit(Box::new(self.auth_summary(src, w, now))))
                .collect();
            self.commit(ops).await?;
        }
        Ok(n)
    }

    fn auth_summary(&self, source: &str, w: &WindowCount, now: OffsetDateTime) -> AuditEvent {
        let end = w.start + self.inner.policy.security.lockout_window.as_duration();
        failed_authentication(
            now,
            format!("auth-failures-{}", w.start.unix_timestamp()),
            "repeated failed authentication from one source",
            (!source.is_empty()).then(|| source.to_owned()),
            json!({
                "failures": w.failures,
                "throttled": w.throttled,
                "window_start": rfc3339(w.start),
                "window_end": rfc3339(end.min(now.max(w.start))),
            }),
        )
    }
}

/// The audit event of failed authentication: anonymous, denied, with no tenant.
fn failed_authentication(
    at: OffsetDateTime,
    request_id: String,
    reason: &str,
    client: Option<String>,
    detail: serde_json::Value,
) -> AuditEvent {
    AuditEvent {
        at,
        request_id,
        actor: anonymous(),
        tenant: None,
        subject: None,
        record: None,
        collection: None,
        purpose: None,
        action: Action::Authenticate,
        outcome: Outcome::Denied,
        reason: Some(reason.into()),
        client,
        detail: Some(detail),
    }
}

fn anonymous() -> Actor {
    Actor {
        id: "anonymous".into(),
        role: "none".into(),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
