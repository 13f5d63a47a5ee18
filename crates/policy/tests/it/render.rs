//! Rendered documents are generated from, and mention, what the policy declares.

use ward_policy::{EXAMPLE_POLICY, Policy, RenderFormat};

fn example() -> Policy {
    Policy::parse(EXAMPLE_POLICY, "saas-policy.toml").unwrap()
}

#[test]
fn notice_covers_every_collection_and_promise() {
    let policy = example();
    let notice = policy.render(RenderFormat::Notice);
    assert!(
        notice.starts_with("# Privacy notice — Acme Cloud SAS\n"),
        "{notice}"
    );
    for name in policy.collections.keys() {
        assert!(notice.contains(&format!("(`{name}`)")), "missing {name}");
    }
    for expected in [
        "<privacy@acme.example>",
        "deleted 2 years after the `applied_on` date",
        "anonymized 60 days after it is collected",
        "anonymized 90 days after the `contract_end` date",
        "kept for 10 years after creation, even after an erasure request",
        "never record or store payment card numbers",
        "| Stripe |",
        "France (OVHcloud)",
        "kept deactivated for 4 weeks",
        "kept for 60 days",
        "only the month kept",
        "marketing e-mails (`marketing.communications.email`)",
    ] {
        assert!(
            notice.contains(expected),
            "notice lacks {expected:?}:\n{notice}"
        );
    }
}

#[test]
fn ropa_has_an_entry_per_processing_activity() {
    let policy = example();
    let ropa = policy.render(RenderFormat::Ropa);
    assert!(ropa.contains("GDPR Art. 30(1)"));
    for name in policy.collections.keys() {
        assert!(ropa.contains(&format!("`{name}`")), "missing {name}");
    }
    for expected in [
        "| (b) Purposes |",
        "| (c) Categories of data subjects | job applicants |",
        "| (d) Recipients |",
        "GoCardless: United Kingdom (EU adequacy decision)",
        "| (f) Time limits for erasure |",
        "legal hold of 10 years from creation",
        "Camille Laurent",
    ] {
        assert!(ropa.contains(expected), "ROPA lacks {expected:?}:\n{ropa}");
    }
}

#[test]
fn subprocessor_table_lists_each_subprocessor_once() {
    let policy = example();
    let table = policy.render(RenderFormat::Subprocessors);
    for s in &policy.subprocessors {
        assert_eq!(
            table.matches(&format!("| {} |", s.name)).count(),
            1,
            "{}",
            s.name
        );
    }
    assert!(table.contains("| Stripe | Payment processing"), "{table}");
    assert!(table.contains("`billing`"), "{table}");
}

#[test]
fn table_cells_are_escaped() {
    let source = format!(
        "[[subprocessors]]\nname = \"A|B\"\npurpose = \"x\"\nlocation = \"EU\"\n{}",
        super::BASE
    );
    let table = super::load(&source).render(RenderFormat::Subprocessors);
    assert!(table.contains("| A\\|B |"), "{table}");
}

/// The notice states the IP-hash handling the server applies (issue 13): no address is
/// stored, and the hashing key changes every `ip_hash_window`, not after the audit retention.
#[test]
fn notice_states_the_ip_hash_handling_the_server_applies() {
    let src =
        ward_policy::EXAMPLE_POLICY.replace(r#"ip_hash_window = "7d""#, r#"ip_hash_window = "3d""#);
    let policy = Policy::parse(&src, "p.toml").unwrap();
    let notice = policy.render(RenderFormat::Notice);
    assert!(notice.contains("IP addresses are never stored"), "{notice}");
    assert!(
        notice.contains("the key exists only in the server's memory and is replaced every 3 days"),
        "{notice}"
    );
    let ropa = policy.render(RenderFormat::Ropa);
    assert!(
        ropa.contains("in-memory key is replaced every 3 days"),
        "{ropa}"
    );
}
