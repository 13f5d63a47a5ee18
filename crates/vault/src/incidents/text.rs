//! Sealing and opening an incident's title and notes, under the tenant's free-text key or a
//! root-derived platform key. Apart because it is the only code here that touches keys.

use uuid::Uuid;
use ward_crypto::aad;
use ward_store::IncidentRow;

use crate::{Result, Vault, VaultError, sealed_text};

impl Vault {
    pub(super) async fn seal_incident_text(
        &self,
        tenant: Option<Uuid>,
        incident: Uuid,
        column: &str,
        plain: &str,
    ) -> Result<Vec<u8>> {
        match tenant {
            None => self.inner.incident_keys.seal(plain.as_bytes(), |v| {
                aad::incident_text(incident.as_bytes(), column, v)
            }),
            Some(t) => {
                let trow = self.tenant_row(t).await?;
                let tk = self.inner.keys.tenant(&trow)?;
                Ok(sealed_text::seal(&tk, t, incident, column, plain)?.into_bytes())
            }
        }
    }

    /// What opens an incident's text: read once per incident (a tenant incident's key needs
    /// its tenant's row), then used for the title and every note.
    pub(super) async fn incident_text_keys(&self, incident: &IncidentRow) -> Result<TextKeys> {
        Ok(match incident.tenant {
            None => TextKeys::Operator,
            Some(t) => TextKeys::Tenant(self.inner.keys.tenant(&self.tenant_row(t).await?)?),
        })
    }

    pub(super) fn open_incident_text(
        &self,
        keys: &TextKeys,
        incident: &IncidentRow,
        column: &str,
        sealed: &[u8],
    ) -> Result<String> {
        match (keys, incident.tenant) {
            (TextKeys::Tenant(tk), Some(t)) => {
                let stored = std::str::from_utf8(sealed).map_err(|_| VaultError::Integrity)?;
                // Ward never wrote an incident's text in clear: a value without the prefix
                // was put there by someone else.
                if !stored.starts_with(sealed_text::PREFIX) {
                    return Err(VaultError::Integrity);
                }
                sealed_text::open(tk, t, incident.id, column, stored)
            }
            _ => self
                .inner
                .incident_keys
                .open_text(sealed, |v| {
                    aad::incident_text(incident.id.as_bytes(), column, v)
                })
                .map(|t| t.to_string()),
        }
    }
}

/// The column bound into a title's associated data.
pub(super) const TITLE_COLUMN: &str = "incidents.title";

/// The column bound into a note's associated data: the table, the column and its place.
pub(super) fn note_column(seq: i64) -> String {
    format!("incident_notes.text/{seq}")
}

/// The keys of one incident's text (see `Vault::incident_text_keys`).
pub(super) enum TextKeys {
    /// An operator incident: the root-derived platform keys.
    Operator,
    /// A tenant's incident: the tenant's keys.
    Tenant(std::sync::Arc<crate::keys::TenantKeys>),
}
