//! Subjects a new record was written for lately, so that the next record for the same subject
//! skips the read (on PostgreSQL a round trip per put, the largest part of a put's cost).
//!
//! What a new record needs of its subject is its key and its tenant's status, and the store
//! checks both again as it commits: the record's subject key version must still be current
//! (an erasure or record rotation makes the write lose), and the tenant must still be active
//! (`Conflict::TenantInactive`). So a remembered subject can be out of date only in ways the
//! commit refuses; the write is then prepared again from a fresh read, which decides (and
//! audits) what a write without the cache would have. Restrictions are not checked at commit,
//! so a write that states a purpose (decided like a read, where restrictions count) never
//! uses a remembered subject.
//!
//! One difference is visible, and only across servers: for up to 2 seconds after another
//! server erased a subject or cancelled its tenant, a body that fails validation is answered
//! `422` here rather than `404`/`403` (the commit, which would find the change, is never
//! reached). A valid write finds the change and gets the uncached answer. This server's own
//! erasures and tenant changes forget what they change, so it never answers differently.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;
use ward_store::{SubjectRow, TenantStatus};

/// How long a subject is remembered. Bounds the work a stale entry costs (one lost commit),
/// not correctness, which the commit's checks keep.
const TTL: Duration = Duration::from_secs(2);

/// Most subjects remembered at once: a few hundred kilobytes, and a steady memory size under
/// any number of subjects.
const CAPACITY: usize = 4096;

/// A subject and its tenant's status as a read found them.
#[derive(Clone)]
pub(crate) struct RememberedSubject {
    pub(crate) subject: SubjectRow,
    pub(crate) status: TenantStatus,
}

/// The vault's remembered subjects, by (tenant, subject).
#[derive(Default)]
pub(crate) struct RememberedSubjects {
    entries: Mutex<HashMap<(Uuid, Uuid), (RememberedSubject, Instant)>>,
}

impl RememberedSubjects {
    /// The subject, if read less than [`TTL`] ago.
    pub(crate) fn get(&self, tenant: Uuid, subject: Uuid) -> Option<RememberedSubject> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&(tenant, subject))
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(s, _)| s.clone())
    }

    /// Remembers what a read just found. When full, expired entries go first, and everything
    /// if none has expired (the next writes read again).
    pub(crate) fn put(&self, remembered: RememberedSubject) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, at)| at.elapsed() < TTL);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        let key = (remembered.subject.tenant, remembered.subject.id);
        entries.insert(key, (remembered, Instant::now()));
    }

    /// Forgets one subject: this process erased it or replaced its key.
    pub(crate) fn forget(&self, tenant: Uuid, subject: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&(tenant, subject));
    }

    /// Forgets every subject of `tenant`: a commit refused a write prepared from one of them,
    /// or this process changed the tenant.
    pub(crate) fn forget_tenant(&self, tenant: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(t, _), _| *t != tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn subject(tenant: Uuid) -> RememberedSubject {
        RememberedSubject {
            subject: SubjectRow {
                tenant,
                id: Uuid::now_v7(),
                external_ref: None,
                wrapped_key: Some(vec![1; 8]),
                key_version: 1,
                record_key_version: 1,
                restrictions: "[]".into(),
                hold_until: None,
                created_at: OffsetDateTime::UNIX_EPOCH,
            },
            status: TenantStatus::Active,
        }
    }

    #[test]
    fn remembers_and_forgets_by_subject_and_by_tenant() {
        let cache = RememberedSubjects::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (sa, sb) = (subject(a), subject(b));
        cache.put(sa.clone());
        cache.put(sb.clone());
        assert!(cache.get(a, sa.subject.id).is_some());
        assert!(cache.get(a, sb.subject.id).is_none(), "keyed by tenant too");
        cache.forget_tenant(a);
        assert!(cache.get(a, sa.subject.id).is_none());
        assert!(cache.get(b, sb.subject.id).is_some());
        cache.forget(b, sb.subject.id);
        assert!(cache.get(b, sb.subject.id).is_none());
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let cache = RememberedSubjects::default();
        let tenant = Uuid::now_v7();
        let mut last = None;
        for _ in 0..CAPACITY + 10 {
            let s = subject(tenant);
            last = Some(s.subject.id);
            cache.put(s);
        }
        let len = cache.entries.lock().unwrap().len();
        assert!(len <= CAPACITY, "{len} entries");
        assert!(
            cache.get(tenant, last.unwrap()).is_some(),
            "the newest stays"
        );
    }
}
