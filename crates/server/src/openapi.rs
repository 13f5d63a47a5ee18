//! The OpenAPI 3.1 document, assembled from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    alerts, audit, auth, doctor, incidents, keys, records, rights, support, system, tenants, users,
    webhooks,
};

/// The OpenAPI 3.1 description of this API, generated from the code (`GET /openapi.json`).
pub(crate) async fn serve() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi().to_json().unwrap_or_default(),
    )
}

/// Ward's HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Ward", description = "Self-hosted personal-data vault: purpose-bound, audited, encrypted per tenant."),
    paths(
        system::healthz,
        tenants::create_tenant, tenants::get_tenant, tenants::update_settings, tenants::create_key, tenants::list_keys, tenants::revoke_key,
        records::create_subject, records::find_subject, records::create_record, records::list_records,
        records::get_record, records::patch_record, records::delete_record, records::lookup, records::batch,
        audit::tenant_audit, audit::public_key, audit::checkpoint, audit::new_checkpoint, audit::inclusion,
        audit::consistency,
        rights::export_subject, rights::export_by_ref, rights::erase, rights::restrict, rights::lift, rights::hold,
        rights::set_retention, rights::open_request, rights::list_requests, rights::complete_request,
        rights::reject_request, keys::rotate, keys::rotate_records, keys::status, rights::cancel, rights::reactivate, rights::export_tenant, rights::run_retention,
        tenants::issue_invitation, tenants::claim_invitation,
        users::list_users, users::change_user, users::remove_user, users::issue_password_reset,
        doctor::doctor,
        auth::login, auth::logout, auth::list_sessions, auth::revoke_other_sessions, auth::revoke_session, auth::change_password,
        auth::reset_password, auth::start_totp, auth::confirm_totp,
        support::request_grant, support::list_grants, support::approve_grant, support::deny_grant,
        support::revoke_grant,
        alerts::list_alerts, alerts::list_tenant_alerts, alerts::acknowledge, alerts::resolve,
        alerts::acknowledge_tenant, alerts::resolve_tenant,
        webhooks::create_tenant_webhook, webhooks::list_tenant_webhooks,
        webhooks::delete_tenant_webhook, webhooks::tenant_deliveries, webhooks::test_tenant_webhook,
        webhooks::create_operator_webhook, webhooks::list_operator_webhooks,
        webhooks::delete_operator_webhook, webhooks::operator_deliveries,
        webhooks::test_operator_webhook,
        incidents::open_operator_incident, incidents::list_operator_incidents,
        incidents::get_operator_incident, incidents::note_operator_incident,
        incidents::notified_operator_incident, incidents::close_operator_incident,
        incidents::operator_notification,
        incidents::open_tenant_incident, incidents::list_tenant_incidents,
        incidents::get_tenant_incident, incidents::note_tenant_incident,
        incidents::notified_tenant_incident, incidents::close_tenant_incident,
        incidents::tenant_notification,
    ),
    modifiers(&BearerAuth, &AuthErrors, &PermissionTable),
    tags(
        (name = "tenants", description = "Organizations and their API keys"),
        (name = "records", description = "Subjects and their encrypted records"),
        (name = "audit", description = "The tamper-evident log of every access"),
        (name = "keys", description = "Key rotation without downtime"),
        (name = "rights", description = "Data-subject rights, requests, holds and retention"),
        (name = "system", description = "Health and the deployment's checks"),
        (name = "auth", description = "People: login sessions in a cookie, CSRF tokens, passwords"),
        (name = "support", description = "Support grants: staff access to a tenant's data only with its approval"),
        (name = "monitoring", description = "Alerts of the detection rules over the audit stream"),
        (name = "incidents", description = "Personal-data breach incidents and their 72-hour notification clock (GDPR Art. 33)"),
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
            components.add_security_scheme(
                "session",
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    ward_vault::SESSION_COOKIE,
                    "The session cookie set by POST /v1/auth/login; unsafe requests also send \
                     the login's csrf_token in the X-CSRF-Token header",
                ))),
            );
        }
    }
}

/// The permission table (`ward roles`) in the document's description, so API users read the
/// same table the access decision reads.
struct PermissionTable;

impl Modify for PermissionTable {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let table = ward_vault::permissions::render();
        let text = format!(
            "{}\n\nWho may do what (`ward roles`; `grant`: only under a live support grant of \
             the tenant):\n\n```\n{table}```\n",
            openapi.info.description.clone().unwrap_or_default()
        );
        openapi.info.description = Some(text);
    }
}

/// The answers every `/v1` operation may give because of what all of them share, added here
/// once rather than on every handler, so the document lists every status a route can return:
/// - authentication: 401, and 429 with `Retry-After` once a source or token failed too often;
/// - the extractors: a malformed path id or query is 400, a path naming nothing is 404;
/// - a body: malformed JSON 400, a wrong content type 415, too large 413, invalid values 422,
///   a stalled body 408;
/// - a tenant's routes: the access decision may refuse with 403, among others with
///   `totp_required` for a session without TOTP in a tenant that requires it.
struct AuthErrors;

/// The 403 of every tenant route.
const TENANT_FORBIDDEN: &str = "The access decision refused it; the error gives the reason \
     (for example `role_not_permitted`). A session opened without TOTP (a user who has none) \
     in a tenant that requires it is refused with `totp_required` on every route of the \
     tenant: enrol with POST /v1/auth/totp and POST /v1/auth/totp/confirm. API keys are not \
     affected.";

impl Modify for AuthErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Content, Header, Ref, RefOr, ResponseBuilder};
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            )
        };
        let throttled = RefOr::T(
            ResponseBuilder::new()
                .description(
                    "Too many failed authentications from this source or with this token; \
                     nothing was looked up",
                )
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .header(
                    "Retry-After",
                    Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
                )
                .build(),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let tenant_scoped = path.starts_with("/v1/tenants/{tenant}");
            let item_params: Vec<ParameterIn> = item
                .parameters
                .iter()
                .flatten()
                .filter_map(parameter_in)
                .collect();
            for (op, unsafe_method) in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .zip([false, true, true, true, true])
            .filter_map(|(op, unsafe_method)| op.as_mut().map(|op| (op, unsafe_method)))
            {
                let params: Vec<ParameterIn> = item_params
                    .iter()
                    .cloned()
                    .chain(op.parameters.iter().flatten().filter_map(parameter_in))
                    .collect();
                let has_path = params.iter().any(|p| matches!(p, ParameterIn::Path));
                let has_query = params.iter().any(|p| matches!(p, ParameterIn::Query));
                let has_body = op.request_body.is_some();
                let r = &mut op.responses.responses;
                let mut add = |code: &str, response: &RefOr<utoipa::openapi::Response>| {
                    r.entry(code.into()).or_insert_with(|| response.clone());
                };
                add(
                    "401",
                    &error("Missing, unknown, revoked or expired API key or session"),
                );
                add("429", &throttled);
                if has_path || has_query || has_body {
                    add(
                        "400",
                        &error("Malformed id, query or body; the error names the field"),
                    );
                }
                if has_path {
                    add("404", &error("Nothing of that id is visible to this key"));
                }
                if has_body {
                    add(
                        "408",
                        &error("The request body stalled longer than the server's body timeout"),
                    );
                    add("413", &error("The request body is too large"));
                    add("415", &error("The body is not sent as application/json"));
                    add(
                        "422",
                        &error("A value is invalid; the error names the field"),
                    );
                }
                // A cookie-authenticated unsafe request without its CSRF token is 403.
                let unsafe_authenticated = op.security.is_some() && unsafe_method;
                if tenant_scoped || unsafe_authenticated {
                    add(
                        "403",
                        &error("The access decision refused it; the error gives the reason"),
                    );
                }
                // Every tenant route is reachable with a session, and a tenant that requires
                // TOTP refuses a session opened without it: said once here for all of them.
                if tenant_scoped && let Some(RefOr::T(forbidden)) = r.get_mut("403") {
                    forbidden.description = TENANT_FORBIDDEN.into();
                }
            }
        }
    }
}

/// Where a parameter goes; `None` for a reference (Ward's document has none).
fn parameter_in(
    p: &utoipa::openapi::RefOr<utoipa::openapi::path::Parameter>,
) -> Option<utoipa::openapi::path::ParameterIn> {
    match p {
        utoipa::openapi::RefOr::T(p) => Some(p.parameter_in.clone()),
        utoipa::openapi::RefOr::Ref(_) => None,
    }
}
