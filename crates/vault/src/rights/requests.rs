//! Tracked data-subject requests: opening, listing, completing and rejecting them, and the
//! sealing of their free text. Apart because a request's lifecycle is bookkeeping around the
//! rights, not a right itself.

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use ward_audit::Action;
use ward_policy::Purpose;
use ward_store::{Op, RecordFilter, RequestRow, TenantRow};

use crate::access::Operation;
use crate::request_state::{RequestKind, RequestStatus};
use crate::sealed_text;
use crate::{RequestContext, Result, Vault, VaultError};

use super::{CompleteRequest, NewRequest, RequestOut, RestrictionIn};

impl Vault {
    /// Opens a data-subject request, due one month later.
    pub async fn open_request(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        new: NewRequest,
    ) -> Result<RequestOut> {
        let mut event = self.event(ctx, Action::RequestCreate, Some(tenant));
        event.subject = Some(new.subject);
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        let Some(kind) = RequestKind::parse(&new.kind) else {
            return Err(VaultError::invalid(
                "invalid_kind",
                format!("kind must be one of {}", RequestKind::listed()),
                Some("kind"),
            ));
        };
        let verified_by =
            crate::text::parse(&new.verified_by, "verified_by", "invalid_verified_by", 200)?;
        let verified_by = verified_by.as_str();
        self.subject_view(tenant, new.subject, RecordFilter::None)
            .await?;
        let mut detail = json!({});
        if kind == RequestKind::Restriction {
            for p in &new.purposes {
                Purpose::parse(p).map_err(|e| {
                    VaultError::invalid("invalid_purpose", format!("{p:?}: {e}"), Some("purposes"))
                })?;
            }
            if new.purposes.is_empty() && !new.all_non_essential {
                return Err(VaultError::invalid(
                    "empty_restriction",
                    "name purposes or set all_non_essential",
                    Some("purposes"),
                ));
            }
            detail =
                json!({ "purposes": new.purposes, "all_non_essential": new.all_non_essential });
        }
        let now = self.now();
        let row = RequestRow {
            tenant,
            id: Uuid::now_v7(),
            kind: kind.as_str().to_owned(),
            subject: new.subject,
            status: RequestStatus::Open.as_str().to_owned(),
            verified_by: verified_by.to_owned(),
            detail: detail.to_string(),
            created_at: now,
            due_at: now + Duration::days(REQUEST_DUE_DAYS),
            closed_at: None,
        };
        event.detail = Some(json!({ "request": row.id, "kind": row.kind }));
        let out = request_out(&row, now, None);
        let row = self.seal_request_text(&trow, row)?;
        self.commit(vec![Op::InsertRequest(row), Op::Audit(Box::new(event))])
            .await?;
        Ok(out)
    }

    /// Lists requests; `overdue_only` keeps open ones past their deadline.
    pub async fn list_requests(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        status: Option<&str>,
        overdue_only: bool,
    ) -> Result<Vec<RequestOut>> {
        let event = self.event(ctx, Action::RequestRead, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        if let Some(s) = status
            && RequestStatus::parse(s).is_none()
        {
            return Err(VaultError::invalid(
                "invalid_status",
                "status is open, completed or rejected",
                Some("status"),
            ));
        }
        let now = self.now();
        let rows = self
            .inner
            .store
            .requests(
                tenant,
                if overdue_only {
                    Some(RequestStatus::Open.as_str())
                } else {
                    status
                },
            )
            .await?;
        let rows = rows
            .into_iter()
            .map(|r| self.open_request_text(&trow, r))
            .collect::<Result<Vec<_>>>()?;
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(rows
            .iter()
            .map(|r| request_out(r, now, None))
            .filter(|r| !overdue_only || r.overdue)
            .collect())
    }

    /// Completes a request by performing it.
    pub async fn complete_request(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        id: Uuid,
        how: CompleteRequest,
    ) -> Result<RequestOut> {
        let (row, trow) = self.open_request_row(ctx, tenant, id).await?;
        let kind = RequestKind::parse(&row.kind).ok_or_else(|| {
            VaultError::Store(ward_store::StoreError::Corrupt(format!(
                "request {} has kind {:?}",
                row.id, row.kind
            )))
        })?;
        let result = match kind {
            RequestKind::Access | RequestKind::Portability => {
                self.export_subject(ctx, tenant, row.subject).await?
            }
            RequestKind::Erasure => {
                serde_json::to_value(self.erase_subject(ctx, tenant, row.subject).await?)
                    .unwrap_or(Value::Null)
            }
            RequestKind::Restriction => {
                let d: Value = serde_json::from_str(&row.detail).unwrap_or(Value::Null);
                let r = RestrictionIn {
                    purposes: d["purposes"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    all_non_essential: d["all_non_essential"].as_bool().unwrap_or(false),
                };
                json!({ "restrictions": self.restrict(ctx, tenant, row.subject, r).await? })
            }
            RequestKind::Rectification => {
                let (Some(record), Some(fields)) = (how.record, how.fields.as_ref()) else {
                    return Err(VaultError::invalid(
                        "fields_required",
                        "completing a rectification needs record and fields",
                        Some("fields"),
                    ));
                };
                let rec = self
                    .rectify(
                        ctx,
                        tenant,
                        row.subject,
                        record,
                        fields,
                        crate::records::UpdateBasis::SubjectRequest,
                    )
                    .await?;
                json!({ "record": rec.id, "revision": rec.revision })
            }
        };
        let summary = match kind {
            RequestKind::Access | RequestKind::Portability => json!({ "delivered": true }),
            RequestKind::Erasure | RequestKind::Rectification | RequestKind::Restriction => {
                result.clone()
            }
        };
        self.close_request(
            ctx,
            &trow,
            row,
            RequestStatus::Completed,
            summary,
            Some(result),
        )
        .await
    }

    /// Rejects a request with a reason (e.g. identity could not be verified).
    pub async fn reject_request(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        id: Uuid,
        reason: &str,
    ) -> Result<RequestOut> {
        let reason = crate::text::parse(reason, "reason", "invalid_reason", 1000)?;
        let reason = reason.as_str();
        let (row, trow) = self.open_request_row(ctx, tenant, id).await?;
        self.close_request(
            ctx,
            &trow,
            row,
            RequestStatus::Rejected,
            json!({ "reason": reason }),
            None,
        )
        .await
    }

    async fn open_request_row(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        id: Uuid,
    ) -> Result<(RequestRow, TenantRow)> {
        let event = self.event(ctx, Action::RequestUpdate, Some(tenant));
        let trow = self.visible_tenant(ctx, tenant, &event).await?;
        self.check(
            &self.tenant_access(ctx, &trow, Operation::ManageRights),
            &event,
        )
        .await?;
        let row = self
            .inner
            .store
            .request(tenant, id)
            .await?
            .ok_or(VaultError::NotFound("request"))?;
        let row = self.open_request_text(&trow, row)?;
        if RequestStatus::parse(&row.status) != Some(RequestStatus::Open) {
            return Err(VaultError::conflict(format!(
                "request is already {}",
                row.status
            )));
        }
        Ok((row, trow))
    }

    async fn close_request(
        &self,
        ctx: &RequestContext,
        trow: &TenantRow,
        row: RequestRow,
        status: RequestStatus,
        detail: Value,
        result: Option<Value>,
    ) -> Result<RequestOut> {
        let now = self.now();
        let mut event = self.event(ctx, Action::RequestUpdate, Some(row.tenant));
        event.subject = Some(row.subject);
        event.detail = Some(json!({ "request": row.id, "status": status.as_str() }));
        let mut merged: Value = serde_json::from_str(&row.detail).unwrap_or_else(|_| json!({}));
        merged["outcome"] = detail;
        let updated = RequestRow {
            status: status.as_str().to_owned(),
            detail: merged.to_string(),
            closed_at: Some(now),
            ..row
        };
        let tk = self.inner.keys.tenant(trow)?;
        self.commit(vec![
            Op::UpdateRequest {
                tenant: updated.tenant,
                id: updated.id,
                status: updated.status.clone(),
                detail: sealed_text::seal(
                    &tk,
                    updated.tenant,
                    updated.id,
                    "detail",
                    &updated.detail,
                )?,
                closed_at: updated.closed_at,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(request_out(&updated, now, result))
    }

    /// The request as stored: its free text sealed (see [`sealed_text`]).
    fn seal_request_text(&self, trow: &TenantRow, row: RequestRow) -> Result<RequestRow> {
        let tk = self.inner.keys.tenant(trow)?;
        Ok(RequestRow {
            verified_by: sealed_text::seal(
                &tk,
                row.tenant,
                row.id,
                "verified_by",
                &row.verified_by,
            )?,
            detail: sealed_text::seal(&tk, row.tenant, row.id, "detail", &row.detail)?,
            ..row
        })
    }

    /// The request as read: its free text opened.
    fn open_request_text(&self, trow: &TenantRow, row: RequestRow) -> Result<RequestRow> {
        let tk = self.inner.keys.tenant(trow)?;
        Ok(RequestRow {
            verified_by: sealed_text::open(
                &tk,
                row.tenant,
                row.id,
                "verified_by",
                &row.verified_by,
            )?,
            detail: sealed_text::open(&tk, row.tenant, row.id, "detail", &row.detail)?,
            ..row
        })
    }

    /// Seals the request free text that a Ward from before sealing wrote in clear, in every
    /// tenant; returns how many requests it sealed. Run at start-up (idempotent, cheap when
    /// nothing is left). This is a migration in code rather than in SQL because SQL has no
    /// keys; reads also accept clear text, so a row not yet sealed (or written meanwhile by
    /// an older server sharing a PostgreSQL database) is still shown, never an error. Each
    /// row is replaced only if it still holds what was read, so a request closed meanwhile
    /// keeps its newer detail. Not audited: it changes how a value is stored, not who can
    /// see it, like a schema migration.
    pub async fn seal_legacy_free_text(&self) -> Result<u64> {
        let rows = self
            .inner
            .store
            .requests_in_clear(sealed_text::PREFIX)
            .await?;
        let mut sealed = 0u64;
        let mut ops = Vec::new();
        let mut tenant: Option<TenantRow> = None;
        for row in rows {
            // Rows come ordered by tenant: each tenant's key is read once.
            if tenant.as_ref().is_none_or(|t| t.id != row.tenant) {
                tenant = self.inner.store.tenant(row.tenant).await?;
            }
            let Some(trow) = tenant.as_ref().filter(|t| t.wrapped_key.is_some()) else {
                continue; // destroyed: its key is gone, its requests with it
            };
            let plain = self.open_request_text(trow, row.clone())?;
            let new = self.seal_request_text(trow, plain)?;
            ops.push(Op::SealRequestText {
                tenant: row.tenant,
                id: row.id,
                old_verified_by: row.verified_by,
                old_detail: row.detail,
                verified_by: new.verified_by,
                detail: new.detail,
            });
        }
        for chunk in ops.chunks(500) {
            sealed += chunk.len() as u64;
            self.commit(chunk.to_vec()).await?;
        }
        Ok(sealed)
    }
}

/// Days GDPR Art. 12(3) allows for answering a request ("one month").
const REQUEST_DUE_DAYS: i64 = 30;

fn request_out(r: &RequestRow, now: OffsetDateTime, result: Option<Value>) -> RequestOut {
    RequestOut {
        id: r.id,
        kind: r.kind.clone(),
        subject: r.subject,
        status: r.status.clone(),
        verified_by: r.verified_by.clone(),
        created_at: r.created_at,
        due_at: r.due_at,
        closed_at: r.closed_at,
        overdue: RequestStatus::parse(&r.status) == Some(RequestStatus::Open) && r.due_at < now,
        detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
        result,
    }
}
