//! Subjects, records, blind-index lookup and batches.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;
use ward_vault::{BatchItem, BatchOutcome, RecordOut, SubjectOut, WriteOptions};

use crate::extract::{Auth, Json, Path, Query};
use crate::{ApiError, AppState, ErrorBody};

/// Body of `POST .../subjects`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSubject {
    /// The tenant's own identifier for the person (stored only as a keyed hash).
    #[serde(default)]
    external_ref: Option<String>,
}

/// Create a data subject.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/subjects", tag = "records", request_body = NewSubject,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 201, body = SubjectOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_subject(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<NewSubject>,
) -> Result<(StatusCode, axum::Json<SubjectOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(
            s.vault
                .create_subject(&ctx, tenant, body.external_ref)
                .await?,
        ),
    ))
}

/// Query of `GET .../subjects`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectQuery {
    /// The tenant's reference for the subject.
    external_ref: String,
}

/// Find a subject by the tenant's external reference.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/subjects", tag = "records",
    params(("tenant" = Uuid, Path, description = "Tenant id"), SubjectQuery),
    responses((status = 200, body = SubjectOut), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn find_subject(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Query(q): Query<SubjectQuery>,
) -> Result<axum::Json<SubjectOut>, ApiError> {
    Ok(axum::Json(
        s.vault
            .subject_by_ref(&ctx, tenant, &q.external_ref)
            .await?,
    ))
}

/// Body of `POST .../records`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRecord {
    /// Collection declared in the policy.
    collection: String,
    /// Field values, validated against the collection's field types.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// Why the record is written (or `?purpose=`); decided like a read's purpose when given.
    #[serde(default)]
    purpose: Option<String>,
    /// Answer with the record's values (or `?return_fields=true`); needs a purpose and is
    /// decided as a read for it. By default the answer has no values.
    #[serde(default)]
    return_fields: Option<bool>,
}

/// Query of record writes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteQuery {
    /// Why the record is written (a fideslang data-use key allowed for the collection).
    purpose: Option<String>,
    /// Answer with the record's values, decided as a read for the purpose.
    return_fields: Option<bool>,
}

/// The write's options from its query and body; the two may not disagree.
fn write_options(
    q: WriteQuery,
    purpose: Option<String>,
    return_fields: Option<bool>,
) -> Result<WriteOptions, ApiError> {
    let purpose = match (q.purpose, purpose) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::bad_request(
                "conflicting_purpose",
                "the query and the body state different purposes",
            )
            .with_field("purpose"));
        }
        (a, b) => a.or(b),
    };
    let return_fields = match (q.return_fields, return_fields) {
        (Some(a), Some(b)) if a != b => {
            return Err(ApiError::bad_request(
                "conflicting_return_fields",
                "the query and the body disagree on return_fields",
            )
            .with_field("return_fields"));
        }
        (a, b) => a.or(b).unwrap_or(false),
    };
    if return_fields && purpose.is_none() {
        return Err(ApiError::bad_request(
            "purpose_required",
            "return_fields needs a purpose: add ?purpose=… or \"purpose\" to the body",
        )
        .with_field("purpose"));
    }
    Ok(WriteOptions {
        purpose,
        return_fields,
    })
}

/// Store a record for a subject. Card numbers, unknown fields and invalid values are refused.
/// The answer carries the record's place and revision; its values only with `return_fields`
/// and a purpose, decided like a read.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/subjects/{subject}/records", tag = "records", request_body = NewRecord,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id"), WriteQuery),
    responses((status = 201, body = RecordOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_record(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
    Query(q): Query<WriteQuery>,
    Json(body): Json<NewRecord>,
) -> Result<(StatusCode, axum::Json<RecordOut>), ApiError> {
    let options = write_options(q, body.purpose, body.return_fields)?;
    let out = s
        .vault
        .create_record(
            &ctx,
            tenant,
            subject,
            &body.collection,
            &body.fields,
            &options,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// Query of record reads.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    /// Why the data is read (a fideslang data-use key allowed for the collection).
    purpose: Option<String>,
    /// Only records of this collection (lists only).
    collection: Option<String>,
}

fn purpose_of(q: &ReadQuery) -> Result<&str, ApiError> {
    q.purpose.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "purpose_required",
            "reads must state a purpose: add ?purpose=…",
        )
        .with_field("purpose")
    })
}

/// List a subject's records readable for a purpose.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/subjects/{subject}/records", tag = "records",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id"), ReadQuery),
    responses((status = 200, body = Vec<RecordOut>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_records(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject)): Path<(Uuid, Uuid)>,
    Query(q): Query<ReadQuery>,
) -> Result<axum::Json<Vec<RecordOut>>, ApiError> {
    let purpose = purpose_of(&q)?;
    Ok(axum::Json(
        s.vault
            .list_records(&ctx, tenant, subject, purpose, q.collection.as_deref())
            .await?,
    ))
}

/// Read one record for a purpose.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/subjects/{subject}/records/{record}", tag = "records",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id"),
           ("record" = Uuid, Path, description = "Record id"), ReadQuery),
    responses((status = 200, body = RecordOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_record(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject, record)): Path<(Uuid, Uuid, Uuid)>,
    Query(q): Query<ReadQuery>,
) -> Result<axum::Json<RecordOut>, ApiError> {
    let purpose = purpose_of(&q)?;
    if q.collection.is_some() {
        return Err(
            ApiError::bad_request("invalid_query", "collection applies to lists only")
                .with_field("collection"),
        );
    }
    Ok(axum::Json(
        s.vault
            .read_record(&ctx, tenant, subject, record, purpose)
            .await?,
    ))
}

/// Body of `PATCH .../records/{record}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordPatch {
    /// Fields to change; `null` removes an optional field. Old values are not kept.
    #[schema(value_type = Object)]
    fields: Map<String, Value>,
    /// Why the record is changed (or `?purpose=`): decided like a read's purpose.
    #[serde(default)]
    purpose: Option<String>,
    /// Answer with the record's values after the change (or `?return_fields=true`), decided
    /// as a read for the same purpose. By default the answer has no values.
    #[serde(default)]
    return_fields: Option<bool>,
}

/// Rectify a record for a stated purpose. The answer carries the record's place and new
/// revision; its values only with `return_fields`, which is decided like a read.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/subjects/{subject}/records/{record}", tag = "records", request_body = RecordPatch,
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id"), ("record" = Uuid, Path, description = "Record id"), WriteQuery),
    responses((status = 200, body = RecordOut), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn patch_record(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject, record)): Path<(Uuid, Uuid, Uuid)>,
    Query(q): Query<WriteQuery>,
    Json(body): Json<RecordPatch>,
) -> Result<axum::Json<RecordOut>, ApiError> {
    let options = write_options(q, body.purpose, body.return_fields)?;
    if options.purpose.is_none() {
        return Err(ApiError::bad_request(
            "purpose_required",
            "updates must state a purpose: add ?purpose=… or \"purpose\" to the body",
        )
        .with_field("purpose"));
    }
    Ok(axum::Json(
        s.vault
            .update_record(&ctx, tenant, subject, record, &body.fields, &options)
            .await?,
    ))
}

/// Delete a record.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/subjects/{subject}/records/{record}", tag = "records",
    params(("tenant" = Uuid, Path, description = "Tenant id"), ("subject" = Uuid, Path, description = "Subject id"), ("record" = Uuid, Path, description = "Record id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete_record(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path((tenant, subject, record)): Path<(Uuid, Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    s.vault.delete_record(&ctx, tenant, subject, record).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of the blind-index lookup.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct LookupQuery {
    /// Collection.
    collection: String,
    /// A field declared `searchable`.
    field: String,
    /// The exact value (normalized like stored values: emails case-insensitive, phones E.164).
    value: String,
    /// Why the data is read.
    purpose: Option<String>,
}

/// Exact-match search through the blind index of a searchable field.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/lookup", tag = "records",
    params(("tenant" = Uuid, Path, description = "Tenant id"), LookupQuery),
    responses((status = 200, body = Vec<RecordOut>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn lookup(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Query(q): Query<LookupQuery>,
) -> Result<axum::Json<Vec<RecordOut>>, ApiError> {
    let purpose = q.purpose.as_deref().ok_or_else(|| {
        ApiError::bad_request(
            "purpose_required",
            "reads must state a purpose: add ?purpose=…",
        )
        .with_field("purpose")
    })?;
    Ok(axum::Json(
        s.vault
            .lookup(&ctx, tenant, &q.collection, &q.field, &q.value, purpose)
            .await?,
    ))
}

/// Body of `POST .../batch`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchBody {
    /// Up to 1000 writes, applied all together or not at all.
    items: Vec<BatchItem>,
}

/// Many writes in one transaction.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/batch", tag = "records", request_body = BatchBody,
    params(("tenant" = Uuid, Path, description = "Tenant id")),
    responses((status = 200, body = BatchOutcome), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn batch(
    State(s): State<AppState>,
    Auth(ctx): Auth,
    Path(tenant): Path<Uuid>,
    Json(body): Json<BatchBody>,
) -> Result<axum::Json<BatchOutcome>, ApiError> {
    Ok(axum::Json(s.vault.batch(&ctx, tenant, body.items).await?))
}
