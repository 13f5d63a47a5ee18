//! The bodies of Ward's fuzz targets.
//!
//! Each function takes arbitrary bytes and either returns or panics; a panic is a bug. They
//! live in a normal workspace crate, not in `fuzz/`, so that the same code runs in two
//! places: under libFuzzer (`cargo +nightly fuzz run TARGET`, see `fuzz/`), and on stable in
//! `cargo test`, where `tests/corpora.rs` replays every committed corpus entry and every
//! crash reproducer. A target therefore never depends on nightly features.
//!
//! Besides "does not panic", every target checks an invariant of what it feeds:
//! normalized field values re-validate to themselves, proofs built by the log verify and
//! altered ones do not, a parsed policy renders, a request body never gets a 5xx, a backup
//! object opens only to what was sealed under its name, a store dump that decodes re-checks.
#![forbid(unsafe_code)]

mod audit;
mod backup;
mod fields;
mod http;
mod policy;

pub use audit::{audit_proof, checkpoint};
pub use backup::{backup_manifest, backup_object, snapshot_dump};
pub use fields::field_value;
pub use http::request_body;
pub use policy::policy_text;

/// A target's body: arbitrary bytes in, a panic on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and its cargo-fuzz binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("policy_text", policy_text),
    ("field_value", field_value),
    ("audit_proof", audit_proof),
    ("checkpoint", checkpoint),
    ("request_body", request_body),
    ("backup_object", backup_object),
    ("backup_manifest", backup_manifest),
    ("snapshot_dump", snapshot_dump),
];
