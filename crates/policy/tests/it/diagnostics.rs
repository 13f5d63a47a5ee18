//! Every kind of load error produces a diagnostic pointing at the offending key or value.
//!
//! Fixtures are small edits of `BASE` (see `main.rs`); the comment on each test names the line
//! and the text the expected column points at.

use ward_policy::{FieldType, SpecialCategory};

use super::{BASE, diagnostics, load, single};

fn at(d: &ward_policy::Diagnostic) -> (usize, usize) {
    (d.line, d.column)
}

#[test]
fn base_fixture_loads() {
    let policy = load(BASE);
    assert_eq!(
        policy.collection("contact").unwrap().fields["email"].ty,
        FieldType::Email
    );
}

#[test]
fn toml_syntax_error() {
    // Line 10: a string that never ends; the parser points just past `"oops`.
    let d = single(&format!("{BASE}description = \"oops\n"));
    assert_eq!(at(&d), (10, 20), "{d}");
    assert!(d.message.contains("string"), "{d}");
    // A duplicate key is a syntax error too, pointing at the second occurrence.
    let d = single(&format!("{BASE}type = \"string\"\n"));
    assert_eq!(at(&d), (10, 1), "{d}");
    assert!(d.message.contains("duplicate key"), "{d}");
}

#[test]
fn display_names_file_line_and_column() {
    let d = single(&format!("{BASE}serchable = true\n"));
    assert_eq!(
        d.to_string(),
        "policy.toml:10:1: error: unknown key `serchable` in \
         [collections.contact.fields.email]; expected one of: type, category, searchable, \
         required, max_length, anonymize, description"
    );
}

#[test]
fn unknown_keys_anywhere() {
    // Line 11: `retain` in [audit].
    let d = single(&format!("{BASE}[audit]\nretain = \"60d\"\n"));
    assert_eq!(at(&d), (11, 1));
    assert!(d.message.contains("unknown key `retain` in [audit]"), "{d}");

    // Line 1: an unknown top-level table.
    let d = single(&format!("[policy]\nversion = 1\n{BASE}"));
    assert_eq!(at(&d), (1, 2));
    assert!(d.message.contains("unknown key `policy`"), "{d}");

    // Line 6: an unknown collection key, e.g. a misspelt `retain_for`.
    let d = single(&BASE.replace("legal_basis", "retain_fro = \"1y\"\nlegal_basis"));
    assert_eq!(at(&d), (6, 1));
}

#[test]
fn invalid_period() {
    // Line 6 `retain_for = "3m"`: the value starts at column 14.
    let d = single(&BASE.replace("legal_basis", "retain_for = \"3m\"\nlegal_basis"));
    assert_eq!(at(&d), (6, 14));
    assert!(
        d.message.contains("`3m`") && d.message.contains("months"),
        "{d}"
    );
}

#[test]
fn invalid_purpose() {
    // Line 5: the second array item starts at column 34.
    let d = single(&BASE.replace(
        r#"["essential.service"]"#,
        r#"["essential.service", "marketing.emails"]"#,
    ));
    assert_eq!(at(&d), (5, 34));
    assert!(
        d.message
            .contains("`marketing.emails` is not a fideslang data-use key"),
        "{d}"
    );
}

#[test]
fn invalid_category_suggests_the_closest_key() {
    // Line 9 `category = "user.contact.mail"`: the value starts at column 12.
    let d = single(&BASE.replace("user.contact.email", "user.contact.mail"));
    assert_eq!(at(&d), (9, 12));
    assert!(
        d.message.contains("did you mean `user.contact.email`"),
        "{d}"
    );
}

#[test]
fn invalid_type() {
    // Line 8 `type = "text"`: column 8.
    let d = single(&BASE.replace(r#"type = "email""#, r#"type = "text""#));
    assert_eq!(at(&d), (8, 8));
    assert!(d.message.contains("unknown field type `text`"), "{d}");
}

#[test]
fn invalid_strategy() {
    let d = single(&format!("{BASE}anonymize = \"scramble\"\n"));
    assert_eq!(at(&d), (10, 13));
    assert!(
        d.message
            .contains("unknown anonymization strategy `scramble`"),
        "{d}"
    );
    let d = single(&format!("{BASE}anonymize = \"generalize_date\"\n"));
    assert_eq!(at(&d), (10, 13));
}

#[test]
fn invalid_names() {
    // Line 4 `[collections.Contact]`: the name starts at column 14.
    let d = single(&BASE.replace("collections.contact", "collections.Contact"));
    assert_eq!(at(&d), (4, 14));
    assert!(d.message.contains("`Contact` is not a valid name"), "{d}");
    // Line 7 `[collections.contact.fields.e-mail]`: column 29.
    let d = single(&BASE.replace("fields.email", "fields.e-mail"));
    assert_eq!(at(&d), (7, 29));
}

#[test]
fn wrong_value_type() {
    let d = single(&format!("{BASE}searchable = \"yes\"\n"));
    assert_eq!(at(&d), (10, 14));
    assert!(
        d.message.contains("must be true or false, found string"),
        "{d}"
    );
}

#[test]
fn art9_category_refused_without_condition() {
    let d = single(&BASE.replace("user.contact.email", "user.health"));
    assert_eq!(at(&d), (9, 12));
    assert_eq!(
        d.message,
        "`user.health` is a GDPR Art. 9 special category; add art9_condition = \
         \"explicit_consent\" (or another GDPR Art. 9(2) condition) to collection `contact`"
    );
    for key in [
        "user.health.genetic",
        "user.biometrics.fingerprint",
        "user.biometric",
        "user.demographic.religious_belief",
        "user.demographic.union_membership",
    ] {
        let d = single(&BASE.replace("user.contact.email", key));
        assert!(
            d.message.contains("GDPR Art. 9 special category"),
            "{key}: {d}"
        );
    }
    let d = single(&BASE.replace("user.contact.email", "user.criminal_history"));
    assert!(d.message.contains("GDPR Art. 10"), "{d}");
}

#[test]
fn art9_category_accepted_with_condition() {
    let source = BASE.replace("user.contact.email", "user.health").replace(
        "legal_basis",
        "art9_condition = \"explicit_consent\"\nlegal_basis",
    );
    let policy = load(&source);
    let field = &policy.collection("contact").unwrap().fields["email"];
    assert_eq!(
        field.category.special_category(),
        Some(SpecialCategory::Art9)
    );
    // An unknown condition is itself an error, at the value.
    let d = single(&source.replace("explicit_consent", "because"));
    assert_eq!(at(&d), (6, 18));
}

#[test]
fn card_data_category_refused() {
    let d = single(&BASE.replace("user.contact.email", "user.financial.credit_card"));
    assert_eq!(at(&d), (9, 12));
    assert!(d.message.contains("never stores"), "{d}");
}

#[test]
fn searchable_json_or_geo_refused() {
    for ty in ["json", "geo"] {
        let source = format!(
            "{}searchable = true\n",
            BASE.replace("\"email\"", &format!("\"{ty}\""))
        );
        let d = single(&source);
        assert_eq!(at(&d), (10, 14), "{ty}");
        assert!(d.message.contains("cannot be searchable"), "{d}");
    }
}

#[test]
fn retention_from_must_be_a_date_field() {
    // Line 7 `retain_from = "email"`: the value starts at column 15.
    let source = BASE.replace(
        "legal_basis",
        "retain_for = \"1y\"\nretain_from = \"email\"\nlegal_basis",
    );
    let d = single(&source);
    assert_eq!(at(&d), (7, 15));
    assert!(d.message.contains("of type email"), "{d}");

    let d = single(&source.replace("\"email\"\nlegal", "\"born_on\"\nlegal"));
    assert_eq!(at(&d), (7, 15));
    assert!(d.message.contains("neither \"created\" nor a field"), "{d}");

    let with_date = format!(
        "{}[collections.contact.fields.born_on]\ntype = \"date\"\ncategory = \"user.demographic.date_of_birth\"\n",
        source.replace("\"email\"\nlegal", "\"born_on\"\nlegal")
    );
    load(&with_date);
}

#[test]
fn retention_keys_need_retain_for() {
    let d = single(&BASE.replace("legal_basis", "on_expiry = \"delete\"\nlegal_basis"));
    assert_eq!(at(&d), (6, 13));
    assert!(d.message.contains("no effect without `retain_for`"), "{d}");
}

#[test]
fn incompatible_anonymization() {
    let d = single(&format!("{BASE}anonymize = \"ip_mask\"\n"));
    assert_eq!(at(&d), (10, 13));
    assert_eq!(
        d.message,
        "`ip_mask` cannot anonymize field `email` of type email; it applies to: ip"
    );
    for (ty, strategy) in [
        ("email", "generalize_date:year"),
        ("email", "coarse_geo"),
        ("email", "bucket:10"),
        ("json", "hmac"),
        ("bool", "hmac"),
    ] {
        let source = format!(
            "{}anonymize = \"{strategy}\"\n",
            BASE.replace("\"email\"", &format!("\"{ty}\""))
        );
        let d = single(&source);
        assert_eq!(at(&d), (10, 13), "{ty} {strategy}");
    }
}

#[test]
fn missing_anonymization_under_on_expiry_anonymize() {
    // The field key `email` in the header on line 9 starts at column 29.
    let source = BASE.replace(
        "legal_basis",
        "retain_for = \"1y\"\non_expiry = \"anonymize\"\nlegal_basis",
    );
    let d = single(&source);
    assert_eq!(at(&d), (9, 29));
    assert!(d.message.contains("needs an `anonymize` strategy"), "{d}");
    load(&format!("{source}anonymize = \"hmac\"\n"));
}

#[test]
fn recipients_must_be_declared_subprocessors() {
    // Line 6 `recipients = ["Stripe"]`: the item starts at column 15.
    let source = BASE.replace("legal_basis", "recipients = [\"Stripe\"]\nlegal_basis");
    let d = single(&source);
    assert_eq!(at(&d), (6, 15));
    assert!(
        d.message
            .contains("`Stripe` is not declared in [[subprocessors]]"),
        "{d}"
    );
    let declared = format!(
        "[[subprocessors]]\nname = \"Stripe\"\npurpose = \"Payments\"\nlocation = \"US\"\n\
         data_shared = [\"user.contact.email\"]\n{source}"
    );
    let policy = load(&declared);
    assert_eq!(policy.collection("contact").unwrap().recipients, ["Stripe"]);
}

#[test]
fn duplicate_subprocessor() {
    let sub = "[[subprocessors]]\nname = \"Stripe\"\npurpose = \"Payments\"\nlocation = \"US\"\n";
    let d = single(&format!("{sub}{sub}{BASE}"));
    assert_eq!(at(&d), (6, 8));
}

#[test]
fn collection_without_fields_or_purposes() {
    // Line 7: an empty fields table.
    let empty_fields = BASE.replace(
        "[collections.contact.fields.email]\ntype = \"email\"\ncategory = \"user.contact.email\"\n",
        "[collections.contact.fields]\n",
    );
    let d = single(&empty_fields);
    assert_eq!(at(&d), (7, 1));
    assert!(d.message.contains("has no fields"), "{d}");

    // No fields at all: reported at the collection header on line 4.
    let no_fields = BASE.replace(
        "[collections.contact.fields.email]\ntype = \"email\"\ncategory = \"user.contact.email\"\n",
        "",
    );
    let d = single(&no_fields);
    assert_eq!(at(&d), (4, 1));
    assert!(
        d.message
            .contains("missing key `fields` in [collections.contact]"),
        "{d}"
    );

    // Line 5 `purposes = []`: column 12.
    let d = single(&BASE.replace(r#"["essential.service"]"#, "[]"));
    assert_eq!(at(&d), (5, 12));
    assert!(d.message.contains("declares no purposes"), "{d}");
}

#[test]
fn max_length_only_on_strings() {
    let d = single(&format!("{BASE}max_length = 10\n"));
    assert_eq!(at(&d), (10, 14));
    let d = single(&format!(
        "{}max_length = 0\n",
        BASE.replace("\"email\"", "\"string\"")
    ));
    assert_eq!(at(&d), (10, 14));
}

#[test]
fn organization_checks() {
    let d = single(&BASE.replace("privacy@acme.example", "the privacy team"));
    assert_eq!(at(&d), (3, 11));
    let d = single(&BASE.replace(
        "[organization]\nname = \"Acme\"\ncontact = \"privacy@acme.example\"\n",
        "",
    ));
    assert_eq!(at(&d), (1, 1));
    assert!(d.message.contains("missing key `organization`"), "{d}");
}

#[test]
fn all_errors_are_reported_in_file_order() {
    let source = BASE
        .replace(r#"["essential.service"]"#, r#"["essential.servce"]"#)
        .replace(r#"legal_basis = "contract""#, r#"legal_basis = "contrat""#)
        .replace(r#"type = "email""#, r#"type = "mail""#)
        .replace("user.contact.email", "user.contact.emali");
    let found: Vec<(usize, usize)> = diagnostics(&source).iter().map(at).collect();
    assert_eq!(found, [(5, 13), (6, 15), (8, 8), (9, 12)]);
}
