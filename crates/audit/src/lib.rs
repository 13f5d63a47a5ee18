//! Ward's tamper-evident audit log, independent of where the rows are stored.
//!
//! Every access to personal data becomes an audit event. To let a tenant (or a regulator)
//! trust the log without trusting Ward's operator, the events form an RFC 9162 Merkle tree
//! ([`merkle`]) whose heads are signed ([`checkpoint`]); a per-event hash chain lets the
//! verifier ([`verify`]) name the first event that was edited, deleted, inserted or
//! reordered. Storage crates persist leaves, chain values, checkpoints and frontiers; this
//! crate only computes and checks.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod event;
pub mod merkle;
pub mod tree;
pub mod verify;

pub use checkpoint::*;
pub use event::*;
pub use merkle::*;
pub use tree::*;
pub use verify::*;
