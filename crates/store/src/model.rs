//! Rows as the store keeps them and the operations that change them.
//!
//! These types carry ciphertext and keyed hashes only. Times are `OffsetDateTime` here and
//! microseconds on disk.

use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::AuditEvent;

mod audit;
mod keys;
mod op;
mod rights;
mod subjects;
mod tenants;

pub use self::audit::*;
pub use self::keys::*;
pub use self::op::*;
pub use self::rights::*;
pub use self::subjects::*;
pub use self::tenants::*;
