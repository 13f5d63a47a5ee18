//! `ward audit verify` on a real data directory: clean logs pass, and every kind of tampering
//! done directly in SQLite (edit, delete, insert, reorder, truncate, rewritten chain, forged
//! checkpoint, altered Merkle tree node, edited subject index) fails with exit code 1 naming the first bad index (or
//! the node). Also `--checkpoint`, `ward policy check` and usage errors.
//!
//! The cases live in `audit_verify/`, one module per area, all in this one test binary.

#[path = "audit_verify/checkpoints.rs"]
mod checkpoints;
#[path = "audit_verify/common.rs"]
mod common;
#[path = "audit_verify/pruned.rs"]
mod pruned;
#[path = "audit_verify/subject_index.rs"]
mod subject_index;
#[path = "audit_verify/tamper.rs"]
mod tamper;
#[path = "audit_verify/tree.rs"]
mod tree;
#[path = "audit_verify/usage.rs"]
mod usage;
