//! A bench-only commit hook that drops audit events from every commit, to measure what the
//! audit write costs the record API: the same vault calls run against the real store with
//! and without it. Ward itself has no switch that turns auditing off; this hook lives in the
//! bench and nowhere else.

use async_trait::async_trait;
use ward_store::hooked::CommitHook;
use ward_store::{Op, Result, Store};

/// Everything but audit events reaches the wrapped store; a commit of audit events alone
/// (a read's) does not reach it at all.
pub(crate) struct Unaudited;

#[async_trait]
impl CommitHook for Unaudited {
    async fn before_commit(&self, _: &dyn Store, mut ops: Vec<Op>) -> Result<Vec<Op>> {
        ops.retain(|op| !matches!(op, Op::Audit(_)));
        Ok(ops)
    }
}
