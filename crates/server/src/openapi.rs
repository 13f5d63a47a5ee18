//! The OpenAPI 3.1 document, assembled from the handlers' annotations.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{audit, keys, records, rights, system, tenants};

/// Ward's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Ward", description = "Self-hosted personal-data vault: purpose-bound, audited, encrypted per tenant."),
    paths(
        system::healthz,
        tenants::create_tenant, tenants::get_tenant, tenants::create_key, tenants::list_keys, tenants::revoke_key,
        records::create_subject, records::find_subject, records::create_record, records::list_records,
        records::get_record, records::patch_record, records::delete_record, records::lookup, records::batch,
        audit::tenant_audit, audit::public_key, audit::checkpoint, audit::new_checkpoint, audit::inclusion,
        audit::consistency,
        rights::export_subject, rights::export_by_ref, rights::erase, rights::restrict, rights::lift, rights::hold,
        rights::set_retention, rights::open_request, rights::list_requests, rights::complete_request,
        rights::reject_request, keys::rotate, keys::rotate_records, keys::status, rights::cancel, rights::reactivate, rights::export_tenant, rights::run_retention,
        tenants::issue_invitation, tenants::claim_invitation,
    ),
    modifiers(&BearerAuth, &AuthErrors),
    tags(
        (name = "tenants", description = "Organizations and their API keys"),
        (name = "records", description = "Subjects and their encrypted records"),
        (name = "audit", description = "The tamper-evident log of every access"),
        (name = "keys", description = "Key rotation without downtime"),
        (name = "rights", description = "Data-subject rights, requests, holds and retention"),
        (name = "system", description = "Health"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// Every `/v1` operation authenticates, so each may answer 401 and, once a source or token has
/// failed too often, 429 with `Retry-After`; every one with a body may answer 408 when the body
/// stalls: added here once rather than on every handler.
struct AuthErrors;

impl Modify for AuthErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Content, Header, Ref, RefOr, ResponseBuilder};
        let error = || Content::new(Some(Ref::from_schema_name("ErrorBody")));
        let unauthenticated = ResponseBuilder::new()
            .description("Missing, unknown or revoked API key")
            .content("application/json", error())
            .build();
        let throttled = ResponseBuilder::new()
            .description(
                "Too many failed authentications from this source or with this token; \
                 nothing was looked up",
            )
            .content("application/json", error())
            .header(
                "Retry-After",
                Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
            )
            .build();
        let stalled = ResponseBuilder::new()
            .description("The request body stalled longer than the server's body timeout")
            .content("application/json", error())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let has_body = op.request_body.is_some();
                let r = &mut op.responses.responses;
                r.entry("401".into())
                    .or_insert_with(|| RefOr::T(unauthenticated.clone()));
                r.entry("429".into())
                    .or_insert_with(|| RefOr::T(throttled.clone()));
                if has_body {
                    r.entry("408".into())
                        .or_insert_with(|| RefOr::T(stalled.clone()));
                }
            }
        }
    }
}
