//! Integration tests of ward-policy's public API, one module per area.

mod cards;
mod diagnostics;
mod example;
mod monitoring;
mod properties;
mod records;
mod render;
mod values;

use ward_policy::{Diagnostic, Policy};

/// The smallest policy that loads: one collection with one field. Line numbers in tests that
/// build on it refer to this layout.
const BASE: &str = r#"[organization]
name = "Acme"
contact = "privacy@acme.example"
[collections.contact]
purposes = ["essential.service"]
legal_basis = "contract"
[collections.contact.fields.email]
type = "email"
category = "user.contact.email"
"#;

/// Loads `source`, which must fail, and returns its diagnostics.
fn diagnostics(source: &str) -> Vec<Diagnostic> {
    match Policy::parse(source, "policy.toml") {
        Ok(_) => panic!("policy unexpectedly loaded:\n{source}"),
        Err(err) => err.diagnostics,
    }
}

/// Loads `source`, which must fail with exactly one diagnostic, and returns it.
fn single(source: &str) -> Diagnostic {
    let mut all = diagnostics(source);
    assert_eq!(all.len(), 1, "expected one diagnostic, got:\n{all:#?}");
    all.remove(0)
}

/// Loads `source`, which must succeed.
fn load(source: &str) -> Policy {
    Policy::parse(source, "policy.toml").unwrap_or_else(|err| panic!("{err}\n---\n{source}"))
}
