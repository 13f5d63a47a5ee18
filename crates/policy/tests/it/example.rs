//! The shipped example policy models the five reference privacy policies.

use std::collections::BTreeSet;

use ward_policy::{
    Anonymize, EXAMPLE_POLICY, FieldType, LegalBasis, OnExpiry, Period, Policy, RetentionStart,
};

fn example() -> Policy {
    Policy::parse(EXAMPLE_POLICY, "saas-policy.toml").unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn example_policy_parses_with_the_expected_collections() {
    let policy = example();
    let names: Vec<&str> = policy.collections.keys().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "billing",
            "browser_visit",
            "contact",
            "customer_record",
            "job_application",
            "server_log"
        ]
    );
    assert_eq!(policy.organization.contact, "privacy@acme.example");
    assert_eq!(policy.audit.retain_for, Period::parse("60d").unwrap());
    assert_eq!(policy.tenants.grace_period, Period::parse("4w").unwrap());
    assert_eq!(policy.security.server_log_retain_for.days(), 14);
    assert_eq!(policy.regions.backups, ["France", "Germany"]);
    let subprocessors: Vec<&str> = policy
        .subprocessors
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        subprocessors,
        ["Stripe", "GoCardless", "Hetzner Online GmbH", "OVHcloud"]
    );
}

#[test]
fn example_policy_keeps_the_promised_retention() {
    let policy = example();
    let retention = |name: &str| policy.collection(name).unwrap().retention.clone().unwrap();

    let job = retention("job_application");
    assert_eq!(job.retain_for, Period::parse("2y").unwrap());
    assert_eq!(job.on_expiry, OnExpiry::Delete);

    let visits = retention("browser_visit");
    assert_eq!(visits.retain_for.days(), 60);
    assert_eq!(visits.on_expiry, OnExpiry::Anonymize);

    let customers = retention("customer_record");
    assert_eq!(customers.retain_for.days(), 90);
    assert_eq!(
        customers.from,
        RetentionStart::Field("contract_end".parse().unwrap())
    );

    let logs = retention("server_log");
    assert_eq!(logs.retain_for.days(), 14);

    let billing = policy.collection("billing").unwrap();
    assert_eq!(billing.legal_basis, LegalBasis::LegalObligation);
    assert_eq!(
        billing.legal_hold.as_ref().unwrap().retain_for,
        Period::parse("10y").unwrap()
    );
    assert!(billing.purposes.iter().all(|p| p.is_essential()));
}

#[test]
fn example_policy_uses_every_anonymization_strategy() {
    let policy = example();
    let used: BTreeSet<String> = policy
        .collections
        .values()
        .flat_map(|c| c.fields.values())
        .filter_map(|f| f.anonymize)
        .map(|a| match a {
            Anonymize::GeneralizeDate(_) => "generalize_date".to_owned(),
            Anonymize::Bucket { .. } => "bucket".to_owned(),
            other => other.to_string(),
        })
        .collect();
    let expected: BTreeSet<String> = [
        "drop",
        "null",
        "hmac",
        "ip_mask",
        "generalize_date",
        "coarse_geo",
        "bucket",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(used, expected);
}

#[test]
fn example_contact_fields_are_typed_and_searchable() {
    let policy = example();
    let contact = policy.collection("contact").unwrap();
    let email = &contact.fields["email"];
    assert_eq!(email.ty, FieldType::Email);
    assert!(email.searchable && email.required);
    let searchable: Vec<&str> = contact
        .searchable_fields()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(searchable, ["email", "phone"]);
    // No Art. 9 data anywhere: the policies promise never to collect it.
    assert!(policy.collections.values().all(|c| {
        c.art9_condition.is_none()
            && c.fields
                .values()
                .all(|f| f.category.special_category().is_none())
    }));
}

#[test]
fn policy_serializes_for_other_tools() {
    let json = serde_json::to_value(example()).unwrap();
    let email = &json["collections"]["contact"]["fields"]["email"];
    assert_eq!(email["type"], "email");
    assert_eq!(email["category"], "user.contact.email");
    assert_eq!(email["anonymize"], "hmac");
    assert_eq!(
        json["collections"]["contact"]["retention"]["retain_for"],
        "3y"
    );
    assert_eq!(
        json["collections"]["billing"]["legal_basis"],
        "legal_obligation"
    );
}

#[test]
fn example_file_on_disk_loads_too() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/saas-policy.toml");
    assert_eq!(Policy::load(&path).unwrap(), example());
}

#[test]
fn unreadable_file_is_a_diagnostic() {
    let err = Policy::load(std::path::Path::new("/nonexistent/ward-policy.toml")).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1);
    let shown = err.to_string();
    assert!(
        shown.starts_with("/nonexistent/ward-policy.toml:1:1: error: cannot read policy file"),
        "{shown}"
    );
}
