//! Canonical associated data for every sealed value.
//!
//! AES-GCM authenticates the associated data along with the ciphertext, so encoding a
//! value's *place* (tenant, subject, record, collection, key version) there means a
//! ciphertext copied to another place fails to open instead of decrypting as someone
//! else's data.
//!
//! Encoding: a domain label, then each part, every one of them prefixed with its length as
//! a 4-byte big-endian integer. Length prefixes make the encoding self-delimiting, and the
//! label differs per kind of value, so no two different places (of the same or different
//! kinds) encode to the same bytes. The `/v1` in the labels lets the layout evolve.

const RECORD: &str = "ward/aad/v1/record";
const RECORD_REVISION: &str = "ward/aad/v2/record";
const SUBJECT_KEY: &str = "ward/aad/v1/subject-key";
const TENANT_KEY: &str = "ward/aad/v1/tenant-key";
const HOLD_KEY: &str = "ward/aad/v1/hold-key";
const FREE_TEXT: &str = "ward/aad/v1/free-text";
const BACKUP_OBJECT: &str = "ward/aad/v1/backup-object";
const BACKUP_REPOSITORY_KEY: &str = "ward/aad/v1/backup-repository-key";
const USER_SECRET: &str = "ward/aad/v1/user-secret";
const WEBHOOK_SECRET: &str = "ward/aad/v1/webhook-secret";
const INCIDENT_TEXT: &str = "ward/aad/v1/incident-text";

/// Associated data for a live record's payload at `revision`, sealed under its subject key
/// `key_version`.
///
/// Binding the revision means a ciphertext of an earlier revision, copied back into the row
/// by someone with write access to the database (a rollback of a rectification), fails to
/// open: the row's revision has moved on.
#[must_use]
pub fn record_revision(
    tenant: &[u8; 16],
    subject: &[u8; 16],
    record: &[u8; 16],
    collection: &str,
    key_version: u32,
    revision: i64,
) -> Vec<u8> {
    encode(
        RECORD_REVISION,
        &[
            tenant,
            subject,
            record,
            collection.as_bytes(),
            &key_version.to_be_bytes(),
            &revision.to_be_bytes(),
        ],
    )
}

/// Associated data for an immutable copy of a record (a record kept under a legal hold, an
/// anonymized record), and for live records sealed before revisions were bound
/// ([`record_revision`]), sealed under key `key_version`.
#[must_use]
pub fn record(
    tenant: &[u8; 16],
    subject: &[u8; 16],
    record: &[u8; 16],
    collection: &str,
    key_version: u32,
) -> Vec<u8> {
    encode(
        RECORD,
        &[
            tenant,
            subject,
            record,
            collection.as_bytes(),
            &key_version.to_be_bytes(),
        ],
    )
}

/// Associated data for a subject key wrapped by tenant key `tenant_key_version`.
#[must_use]
pub fn subject_key(tenant: &[u8; 16], subject: &[u8; 16], tenant_key_version: u32) -> Vec<u8> {
    encode(
        SUBJECT_KEY,
        &[tenant, subject, &tenant_key_version.to_be_bytes()],
    )
}

/// Associated data for a tenant key wrapped by root key `root_key_version`.
#[must_use]
pub fn tenant_key(tenant: &[u8; 16], root_key_version: u32) -> Vec<u8> {
    encode(TENANT_KEY, &[tenant, &root_key_version.to_be_bytes()])
}

/// Associated data for a legal-hold key wrapped by tenant key `tenant_key_version`.
#[must_use]
pub fn hold_key(tenant: &[u8; 16], hold: &[u8; 16], tenant_key_version: u32) -> Vec<u8> {
    encode(HOLD_KEY, &[tenant, hold, &tenant_key_version.to_be_bytes()])
}

/// Associated data for free text a tenant typed into a row outside any subject's records (a
/// data-subject request's `verified_by`, its notes and rejection reason): binds the tenant,
/// the row and the column, so a sealed value copied into another tenant, row or column fails
/// to open instead of being shown there.
#[must_use]
pub fn free_text(tenant: &[u8; 16], row: &[u8; 16], column: &str) -> Vec<u8> {
    encode(FREE_TEXT, &[tenant, row, column.as_bytes()])
}

/// Associated data for a backup object (a chunk, a manifest) of backup repository
/// `repository`, stored at `path`: an object moved to another path or repository fails to
/// open.
#[must_use]
pub fn backup_object(repository: &str, path: &str) -> Vec<u8> {
    encode(BACKUP_OBJECT, &[repository.as_bytes(), path.as_bytes()])
}

/// Associated data for a backup repository's key wrapped under root key `root_key_version`.
#[must_use]
pub fn backup_repository_key(repository: &str, root_key_version: u32) -> Vec<u8> {
    encode(
        BACKUP_REPOSITORY_KEY,
        &[repository.as_bytes(), &root_key_version.to_be_bytes()],
    )
}

/// Associated data for a value sealed in a user's row (its e-mail address, its TOTP secret):
/// binds the user, the column and the root key version, so a sealed TOTP secret copied into
/// another user's row (to log in as them with one's own authenticator) fails to open.
#[must_use]
pub fn user_secret(user: &[u8; 16], column: &str, root_key_version: u32) -> Vec<u8> {
    encode(
        USER_SECRET,
        &[user, column.as_bytes(), &root_key_version.to_be_bytes()],
    )
}

/// Associated data for an operator webhook's signing secret sealed under the platform key of
/// root key `root_key_version`: binds the webhook row, so a sealed secret copied into another
/// row fails to open.
#[must_use]
pub fn webhook_secret(webhook: &[u8; 16], root_key_version: u32) -> Vec<u8> {
    encode(WEBHOOK_SECRET, &[webhook, &root_key_version.to_be_bytes()])
}

/// Associated data for the free text of an operator incident (its title, a note) sealed under
/// the platform key of root key `root_key_version`: binds the incident, the column (table,
/// column and, for a note, its place in the timeline) and the version, so a sealed value
/// copied into another incident or line fails to open.
#[must_use]
pub fn incident_text(incident: &[u8; 16], column: &str, root_key_version: u32) -> Vec<u8> {
    encode(
        INCIDENT_TEXT,
        &[incident, column.as_bytes(), &root_key_version.to_be_bytes()],
    )
}

fn encode(domain: &str, parts: &[&[u8]]) -> Vec<u8> {
    let len = 4 + domain.len() + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    push_part(&mut out, domain.as_bytes());
    for part in parts {
        push_part(&mut out, part);
    }
    out
}

fn push_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&part_len(part));
    out.extend_from_slice(part);
}

/// The 4-byte big-endian length prefix of one part; shared with the keyed hashes so both
/// use the same unambiguous framing.
pub(crate) fn part_len(part: &[u8]) -> [u8; 4] {
    // Parts are ids, names and field values; anything near 4 GiB is a bug upstream. Panic
    // rather than silently wrap, which would reintroduce ambiguity.
    u32::try_from(part.len())
        .expect("associated-data part longer than 4 GiB")
        .to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_length_prefixed() {
        let a = tenant_key(&[0xAA; 16], 7);
        let mut expected = Vec::new();
        expected.extend_from_slice(&(TENANT_KEY.len() as u32).to_be_bytes());
        expected.extend_from_slice(TENANT_KEY.as_bytes());
        expected.extend_from_slice(&16u32.to_be_bytes());
        expected.extend_from_slice(&[0xAA; 16]);
        expected.extend_from_slice(&4u32.to_be_bytes());
        expected.extend_from_slice(&7u32.to_be_bytes());
        assert_eq!(a, expected);
    }

    #[test]
    fn free_text_binds_tenant_row_and_column() {
        let base = free_text(&[1; 16], &[2; 16], "verified_by");
        assert_ne!(base, free_text(&[3; 16], &[2; 16], "verified_by"));
        assert_ne!(base, free_text(&[1; 16], &[3; 16], "verified_by"));
        assert_ne!(base, free_text(&[1; 16], &[2; 16], "detail"));
        assert_ne!(base, hold_key(&[1; 16], &[2; 16], 0));
    }
}
