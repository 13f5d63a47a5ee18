//! Unit tests of the incident helpers and the Markdown draft, kept out of the module so it
//! reads as code.

use ward_audit::Action;

use super::*;

#[test]
fn fan_out_adds_one_event_per_other_tenant() {
    let t1 = Uuid::from_u128(1);
    let t2 = Uuid::from_u128(2);
    let event = AuditEvent::allowed(
        OffsetDateTime::UNIX_EPOCH,
        "",
        ward_audit::Actor::system("test"),
        Action::IncidentOpen,
        Some(t1),
    );
    let ops = fan_out(event, [t1, t2]);
    let tenants: Vec<Option<Uuid>> = ops
        .iter()
        .filter_map(|o| match o {
            Op::Audit(e) => Some(e.tenant),
            _ => None,
        })
        .collect();
    assert_eq!(tenants, vec![Some(t1), Some(t2)]);
}

#[test]
fn the_markdown_draft_names_every_part() {
    let draft = NotificationDraft {
        incident: Uuid::from_u128(9),
        tenant: Uuid::from_u128(1),
        title: "Laptop stolen".into(),
        what_happened: vec!["found out at 9".into()],
        collections: vec!["contact".into()],
        data_categories: vec![CategoryOut {
            category: "user.contact.email".into(),
            label: "Email".into(),
        }],
        categories_basis: "records".into(),
        subjects_affected: 3,
        measures: vec!["disk was encrypted\nsessions revoked".into()],
        contact: ContactOut {
            organization: "Acme".into(),
            contact: "privacy@acme.example".into(),
            dpo: Some("dpo@acme.example".into()),
        },
        opened_at: OffsetDateTime::UNIX_EPOCH,
        deadline: OffsetDateTime::UNIX_EPOCH + NOTIFICATION_DEADLINE,
        notified_at: None,
    };
    let md = draft.to_markdown();
    for part in [
        "Laptop stolen",
        "found out at 9",
        "`user.contact.email`",
        "3 known",
        "- disk was encrypted\n  sessions revoked\n",
        "privacy@acme.example",
        "dpo@acme.example",
        "1970-01-04T00:00:00Z",
    ] {
        assert!(md.contains(part), "{part} missing from {md}");
    }
}
