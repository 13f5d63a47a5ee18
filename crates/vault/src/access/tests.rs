//! Unit tests of the access decisions and disclosure grants, by role, tenant status and
//! operation; kept apart so the decision itself reads without scrolling past them.

use std::collections::BTreeSet;

use time::macros::datetime;
use ward_policy::Policy;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

fn owner(tenant: Uuid) -> Principal {
    Principal::api_key(Uuid::now_v7(), Some(tenant), Role::Owner, BTreeSet::new())
}

fn policy() -> Policy {
    Policy::parse(ward_policy::EXAMPLE_POLICY, "example.toml").expect("example policy")
}

fn access<'a>(
    p: &'a Principal,
    op: Operation,
    c: &'a Collection,
    purpose: Option<&'a Purpose>,
    restrictions: &'a [String],
) -> Access<'a> {
    Access {
        principal: p,
        tenant: p.tenant.unwrap_or_default(),
        tenant_status: TenantStatus::Active,
        operation: op,
        collection: Some(c),
        purpose,
        restrictions,
        expires_at: None,
        now: NOW,
        tenant_requires_totp: false,
    }
}

fn principal(role: Role, tenant: Uuid) -> Principal {
    Principal::api_key(
        Uuid::nil(),
        (!role.is_platform()).then_some(tenant),
        role,
        Default::default(),
    )
}

fn decide_as(role: Role, operation: Operation) -> Result<(), Denial> {
    let tenant = Uuid::from_u128(1);
    let p = principal(role, tenant);
    decide(&Access {
        principal: &p,
        tenant,
        tenant_status: TenantStatus::Active,
        operation,
        collection: None,
        purpose: None,
        restrictions: &[],
        expires_at: None,
        now: OffsetDateTime::UNIX_EPOCH,
        tenant_requires_totp: false,
    })
}

fn code(r: Result<(), Denial>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(Denial::Hidden { .. }) => "hidden",
        Err(Denial::Forbidden { code, .. } | Denial::Conflict { code, .. }) => code,
    }
}

const ROLES: [Role; 5] = [
    Role::Operator,
    Role::Owner,
    Role::Admin,
    Role::Member,
    Role::Auditor,
];

fn decide_on(status: TenantStatus, operation: Operation) -> &'static str {
    let tenant = Uuid::from_u128(1);
    let p = principal(Role::Owner, tenant);
    code(decide(&Access {
        principal: &p,
        tenant,
        tenant_status: status,
        operation,
        collection: None,
        purpose: None,
        restrictions: &[],
        expires_at: None,
        now: OffsetDateTime::UNIX_EPOCH,
        tenant_requires_totp: false,
    }))
}

#[test]
fn a_cancelled_tenant_keeps_only_what_its_leaving_owner_needs() {
    let open = [
        Operation::ReadTenant,
        Operation::ChangeLifecycle,
        Operation::ReadAudit,
        Operation::ReadAlerts,
        Operation::DecideAlerts,
        Operation::ReadIncidents,
        Operation::ExportTenant,
    ];
    for op in open {
        assert_eq!(decide_on(TenantStatus::Deactivated, op), "ok", "{op:?}");
    }
    for op in [
        Operation::ReadData,
        Operation::WriteData,
        Operation::UpdateData,
        Operation::ManageRights,
        Operation::ManageKeys,
        Operation::ManageWebhooks,
        Operation::ListUsers,
    ] {
        assert_eq!(
            decide_on(TenantStatus::Deactivated, op),
            "tenant_inactive",
            "{op:?}"
        );
        // (Active, the other rules apply: a read still needs its purpose.)
        assert_ne!(
            decide_on(TenantStatus::Active, op),
            "tenant_inactive",
            "{op:?}"
        );
    }
    // Once destroyed, there is nothing left to take away.
    assert_eq!(
        decide_on(TenantStatus::Destroyed, Operation::ExportTenant),
        "hidden"
    );
    assert_eq!(
        decide_on(TenantStatus::Destroyed, Operation::ManageRights),
        "hidden"
    );
}

#[test]
fn a_tenant_export_discloses_like_a_subject_export_and_nothing_else_does() {
    let tenant = Uuid::from_u128(1);
    let p = principal(Role::Owner, tenant);
    let policy = policy();
    let contact = policy.collection("contact").unwrap();
    for op in [Operation::ExportTenant, Operation::ManageRights] {
        assert!(grant_disclosure(&access(&p, op, contact, None, &[])).is_ok());
    }
    for op in [
        Operation::WriteData,
        Operation::ReadAudit,
        Operation::ReadTenant,
    ] {
        assert!(grant_disclosure(&access(&p, op, contact, None, &[])).is_err());
    }
}

#[test]
fn incidents_are_managed_by_owners_and_admins_and_read_by_auditors_too() {
    for role in ROLES {
        let read = code(decide_as(role, Operation::ReadIncidents));
        let manage = code(decide_as(
            role,
            Operation::ManageIncidents {
                operator_incident: false,
            },
        ));
        let (may_read, may_manage) = match role {
            Role::Owner | Role::Admin => (true, true),
            Role::Auditor => (true, false),
            _ => (false, false),
        };
        assert_eq!(read == "ok", may_read, "{role} reading: {read}");
        assert_eq!(manage == "ok", may_manage, "{role} managing: {manage}");
    }
    // The timeline of the operator's incident is the operator's.
    for role in [Role::Owner, Role::Admin] {
        let got = code(decide_as(
            role,
            Operation::ManageIncidents {
                operator_incident: true,
            },
        ));
        assert_eq!(got, "operator_incident", "{role}");
    }
    let op = principal(Role::Operator, Uuid::nil());
    for platform in [
        PlatformOperation::ReadIncidents,
        PlatformOperation::ManageIncidents,
    ] {
        assert!(decide_platform(&op, platform).is_ok());
        for role in [Role::Owner, Role::Admin, Role::Auditor, Role::Member] {
            let p = principal(role, Uuid::from_u128(1));
            assert!(decide_platform(&p, platform).is_err(), "{role}");
        }
    }
}

#[test]
fn keys_are_issued_only_by_owners_and_admins_at_or_below_their_rank() {
    for issuer in ROLES {
        for target in [Role::Owner, Role::Admin, Role::Member, Role::Auditor] {
            let allowed = matches!(issuer, Role::Owner | Role::Admin) && issuer.may_manage(target);
            let got = code(decide_as(issuer, Operation::IssueKey { role: target }));
            assert_eq!(got == "ok", allowed, "{issuer} issuing {target}: {got}");
            if !allowed {
                assert_eq!(got, "role_not_permitted");
            }
        }
    }
}

#[test]
fn a_grant_covers_its_collection_and_live_records_only() {
    let policy = policy();
    let contact = policy.collection("contact").expect("contact");
    let p = owner(Uuid::now_v7());
    let purpose = Purpose::parse("essential.service").expect("purpose");
    let grant = grant_disclosure(&access(
        &p,
        Operation::ReadData,
        contact,
        Some(&purpose),
        &[],
    ))
    .expect("allowed");
    assert!(grant.covers_collection("contact"));
    assert!(!grant.covers_collection("billing"));
    assert!(grant.covers_expiry(None));
    assert!(grant.covers_expiry(Some(NOW + time::Duration::SECOND)));
    assert!(!grant.covers_expiry(Some(NOW)));
}

#[test]
fn only_reads_and_exports_grant_disclosure() {
    let policy = policy();
    let contact = policy.collection("contact").expect("contact");
    let p = owner(Uuid::now_v7());
    let purpose = Purpose::parse("essential.service").expect("purpose");
    for op in [
        Operation::WriteData,
        Operation::UpdateData,
        Operation::ReadTenant,
        Operation::ManageKeys,
        Operation::ReadAudit,
    ] {
        let a = access(&p, op, contact, Some(&purpose), &[]);
        assert!(decide(&a).is_ok(), "{op:?} itself is allowed");
        assert!(grant_disclosure(&a).is_err(), "{op:?} must not disclose");
    }
    assert!(grant_disclosure(&access(&p, Operation::ManageRights, contact, None, &[])).is_ok());
}

#[test]
fn updates_are_purpose_bound_like_reads() {
    let policy = policy();
    let contact = policy.collection("contact").expect("contact");
    let p = owner(Uuid::now_v7());
    let foreign = Purpose::parse("employment.recruitment").expect("purpose");
    let restricted = Purpose::parse("marketing.communications.email").expect("purpose");
    let objections = vec![restricted.as_str().to_owned()];
    let code = |a: &Access<'_>| match decide(a) {
        Err(Denial::Forbidden { code, .. }) => code,
        other => panic!("expected a 403, got {other:?}"),
    };
    for op in [Operation::UpdateData, Operation::ReadData] {
        assert_eq!(
            code(&access(&p, op, contact, None, &[])),
            "purpose_required"
        );
        assert_eq!(
            code(&access(&p, op, contact, Some(&foreign), &[])),
            "purpose_not_allowed"
        );
        assert_eq!(
            code(&access(&p, op, contact, Some(&restricted), &objections)),
            "processing_restricted"
        );
    }
}

#[test]
fn revocation_follows_the_order_and_keeps_the_last_owner() {
    let revoke = |role, last_owner| Operation::RevokeKey { role, last_owner };
    assert_eq!(
        code(decide_as(Role::Admin, revoke(Role::Owner, false))),
        "role_not_permitted"
    );
    assert_eq!(
        code(decide_as(Role::Admin, revoke(Role::Admin, false))),
        "ok"
    );
    assert_eq!(
        code(decide_as(Role::Owner, revoke(Role::Owner, false))),
        "ok"
    );
    assert_eq!(
        code(decide_as(Role::Operator, revoke(Role::Owner, false))),
        "ok"
    );
    for role in [Role::Operator, Role::Owner] {
        assert_eq!(
            code(decide_as(role, revoke(Role::Owner, true))),
            "last_owner"
        );
    }
    // The order is checked first: an admin is told it may not, not that it is the last.
    assert_eq!(
        code(decide_as(Role::Admin, revoke(Role::Owner, true))),
        "role_not_permitted"
    );
    for role in [Role::Member, Role::Auditor] {
        assert_eq!(
            code(decide_as(role, revoke(Role::Member, false))),
            "role_not_permitted"
        );
    }
}

#[test]
fn invitations_are_for_operators_and_tenants_without_an_owner() {
    let issue = |has_owner| Operation::IssueInvitation { has_owner };
    assert_eq!(code(decide_as(Role::Operator, issue(false))), "ok");
    assert_eq!(code(decide_as(Role::Operator, issue(true))), "owner_exists");
    for role in [Role::Owner, Role::Admin, Role::Member, Role::Auditor] {
        assert_eq!(code(decide_as(role, issue(false))), "role_not_permitted");
    }
}

#[test]
fn a_tenant_requiring_totp_refuses_only_sessions_without_it() {
    let tenant = Uuid::from_u128(1);
    let decide_with = |p: &Principal, requires: bool| {
        code(decide(&Access {
            principal: p,
            tenant,
            tenant_status: TenantStatus::Active,
            operation: Operation::ReadTenant,
            collection: None,
            purpose: None,
            restrictions: &[],
            expires_at: None,
            now: NOW,
            tenant_requires_totp: requires,
        }))
    };
    let mut p = principal(Role::Owner, tenant);
    // An API key: an application, not affected.
    assert_eq!(decide_with(&p, true), "ok");
    // A session opened with a password alone.
    p.session = Some(Uuid::from_u128(2));
    assert_eq!(decide_with(&p, false), "ok");
    assert_eq!(decide_with(&p, true), "totp_required");
    // A session of a user with TOTP.
    p.second_factor = true;
    assert_eq!(decide_with(&p, true), "ok");
    // A stranger is still told the tenant does not exist.
    let stranger = Principal {
        second_factor: false,
        session: Some(Uuid::from_u128(3)),
        ..principal(Role::Owner, Uuid::from_u128(9))
    };
    assert_eq!(decide_with(&stranger, true), "hidden");
}

#[test]
fn only_owners_change_settings_and_never_into_their_own_lockout() {
    let op = |enables_totp_without_own| Operation::UpdateSettings {
        enables_totp_without_own,
    };
    assert_eq!(code(decide_as(Role::Owner, op(false))), "ok");
    assert_eq!(code(decide_as(Role::Owner, op(true))), "totp_not_enrolled");
    for role in [
        Role::Admin,
        Role::Member,
        Role::Auditor,
        Role::Operator,
        Role::Support,
    ] {
        for lockout in [false, true] {
            assert_eq!(
                code(decide_as(role, op(lockout))),
                "role_not_permitted",
                "{role}"
            );
        }
    }
}

#[test]
fn checkpoints_are_signed_by_operators_and_auditors() {
    for role in ROLES {
        let allowed = matches!(role, Role::Operator | Role::Auditor);
        assert_eq!(
            code(decide_as(role, Operation::SignCheckpoint)) == "ok",
            allowed,
            "{role}"
        );
    }
}
