//! Validating records against a collection: check order, Create vs Patch, normalization.

use serde_json::{Map, Value, json};
use ward_policy::{Collection, Period, Policy, Purpose, ValidationMode, ViolationCode};

use super::load;

const POLICY: &str = r#"[organization]
name = "Acme"
contact = "privacy@acme.example"

[collections.contact]
purposes = ["essential.service", "marketing"]
legal_basis = "contract"
retain_for = "3y"

[collections.contact.fields.email]
type = "email"
category = "user.contact.email"
required = true
searchable = true

[collections.contact.fields.name]
type = "string"
category = "user.name"
required = true
max_length = 10

[collections.contact.fields.phone]
type = "phone"
category = "user.contact.phone_number"
searchable = true

[collections.contact.fields.notes]
type = "json"
category = "user.content.private"
"#;

fn policy() -> Policy {
    load(POLICY)
}

fn contact(policy: &Policy) -> &Collection {
    policy.collection("contact").unwrap()
}

fn input(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(map) => map,
        _ => unreachable!("fixtures are objects"),
    }
}

#[track_caller]
fn violation(v: Value, mode: ValidationMode) -> (String, ViolationCode) {
    let policy = policy();
    match contact(&policy).validate(&input(v.clone()), mode) {
        Ok(out) => panic!("accepted {v} as {out:?}"),
        Err(err) => (err.field, err.code),
    }
}

#[test]
fn create_normalizes_every_field() {
    let policy = policy();
    let out = contact(&policy)
        .validate(
            &input(json!({
                "email": " Ann@Example.ORG",
                "name": "Ann",
                "phone": "+33 6 12 34 56 78",
                "notes": {"likes": ["tea"]}
            })),
            ValidationMode::Create,
        )
        .unwrap();
    assert_eq!(out["email"], json!("Ann@example.org"));
    assert_eq!(out["phone"], json!("+33612345678"));
    assert_eq!(out["notes"], json!({"likes": ["tea"]}));
    assert_eq!(out.len(), 4);
}

#[test]
fn create_requires_required_fields() {
    assert_eq!(
        violation(json!({"email": "a@example.com"}), ValidationMode::Create),
        ("name".to_owned(), ViolationCode::MissingField)
    );
    // Optional nulls on create mean "not given" and are left out.
    let policy = policy();
    let out = contact(&policy)
        .validate(
            &input(json!({"email": "a@example.com", "name": "A", "phone": null})),
            ValidationMode::Create,
        )
        .unwrap();
    assert!(!out.contains_key("phone"));
}

#[test]
fn patch_allows_partial_updates_and_null_removal() {
    let policy = policy();
    let out = contact(&policy)
        .validate(&input(json!({"phone": null})), ValidationMode::Patch)
        .unwrap();
    assert_eq!(out.get("phone"), Some(&Value::Null));
    let out = contact(&policy)
        .validate(&input(json!({"name": "Bo"})), ValidationMode::Patch)
        .unwrap();
    assert_eq!(out.len(), 1);
    // A required field cannot be removed.
    assert_eq!(
        violation(json!({"email": null}), ValidationMode::Patch),
        ("email".to_owned(), ViolationCode::InvalidValue)
    );
}

#[test]
fn invalid_values_name_the_field_and_the_type_code() {
    let policy = policy();
    let err = contact(&policy)
        .validate(
            &input(json!({"email": "not-an-email", "name": "A"})),
            ValidationMode::Create,
        )
        .unwrap_err();
    assert_eq!(err.field, "email");
    assert_eq!(err.code, ViolationCode::InvalidValue);
    assert_eq!(err.code.as_str(), "invalid_value");
    assert!(err.message.starts_with("invalid_email: "), "{err}");
    // max_length from the policy applies.
    assert_eq!(
        violation(
            json!({"email": "a@example.com", "name": "Bartholomew"}),
            ValidationMode::Create
        ),
        ("name".to_owned(), ViolationCode::InvalidValue)
    );
}

#[test]
fn checks_run_in_the_documented_order() {
    // A card number beats an unknown field, which beats a bad value, which beats a missing one.
    assert_eq!(
        violation(
            json!({"zzz": "x", "email": "bad", "notes": {"card": "4111 1111 1111 1111"}}),
            ValidationMode::Create
        ),
        ("notes".to_owned(), ViolationCode::CardDataRefused)
    );
    assert_eq!(
        violation(
            json!({"zzz": "4111111111111111", "email": "bad"}),
            ValidationMode::Create
        ),
        ("zzz".to_owned(), ViolationCode::CardDataRefused)
    );
    assert_eq!(
        violation(json!({"zzz": "x", "email": "bad"}), ValidationMode::Create),
        ("zzz".to_owned(), ViolationCode::UnknownField)
    );
    assert_eq!(
        violation(json!({"email": "bad"}), ValidationMode::Create),
        ("email".to_owned(), ViolationCode::InvalidValue)
    );
    assert_eq!(
        violation(json!({"email": "a@example.com"}), ValidationMode::Create),
        ("name".to_owned(), ViolationCode::MissingField)
    );
    // Unknown fields are refused in patches too.
    assert_eq!(
        violation(json!({"Email": "a@example.com"}), ValidationMode::Patch),
        ("Email".to_owned(), ViolationCode::UnknownField)
    );
}

#[test]
fn card_refusal_never_echoes_the_number() {
    let policy = policy();
    let err = contact(&policy)
        .validate(
            &input(json!({"name": "4111111111111111"})),
            ValidationMode::Patch,
        )
        .unwrap_err();
    assert_eq!(err.code.as_str(), "card_data_refused");
    assert!(!err.to_string().contains("4111"), "{err}");
}

#[test]
fn purposes_follow_the_taxonomy_hierarchy() {
    let policy = policy();
    let contact = contact(&policy);
    let p = |s: &str| Purpose::parse(s).unwrap();
    assert!(contact.allows_purpose(&p("essential.service")));
    assert!(contact.allows_purpose(&p("essential.service.authentication")));
    assert!(contact.allows_purpose(&p("marketing.communications.email")));
    assert!(!contact.allows_purpose(&p("essential")));
    assert!(!contact.allows_purpose(&p("analytics")));
}

#[test]
fn searchable_fields_are_listed() {
    let policy = policy();
    let names: Vec<&str> = contact(&policy)
        .searchable_fields()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(names, ["email", "phone"]);
}

#[test]
fn retention_can_be_shortened_never_lengthened() {
    let policy = policy();
    let retention = contact(&policy).retention.clone().unwrap();
    let shorter = retention.shortened(Period::parse("1y").unwrap()).unwrap();
    assert_eq!(shorter.retain_for, Period::parse("1y").unwrap());
    assert_eq!(shorter.on_expiry, retention.on_expiry);
    assert_eq!(
        retention.shortened(retention.retain_for).unwrap(),
        retention
    );
    let err = retention
        .shortened(Period::parse("4y").unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "retention may only be shortened: 4y is longer than the policy's 3y"
    );
}
