//! The Art. 33(3) draft notification and its Markdown form. Apart because it only reads an
//! incident and the policy, to gather what an authority's form asks for.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;
use ward_audit::Action;
use ward_store::{Op, RecordFilter};

use crate::{RequestContext, Result, Vault};

use super::text::{TITLE_COLUMN, note_column};
use super::{NOTIFICATION_DEADLINE, Want, invalid};

impl Vault {
    /// The draft notification of one affected tenant: on a tenant's route the tenant's own;
    /// on the operator's, `target`'s (required).
    ///
    /// # Errors
    /// `Invalid` (`tenant`) when the operator names no tenant or one the incident does not
    /// affect; `NotFound` for an incident the caller does not see; the access decision's
    /// errors.
    pub async fn incident_notification(
        &self,
        ctx: &RequestContext,
        tenant: Option<Uuid>,
        id: Uuid,
        target: Option<Uuid>,
    ) -> Result<NotificationDraft> {
        let (caller, view) = self
            .authorized_incident(
                ctx,
                tenant,
                id,
                Action::IncidentNotificationRead,
                Want::Read,
            )
            .await?;
        let for_tenant = match (tenant, target) {
            (Some(own), _) => own,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(invalid(
                    "tenant_required",
                    "name the affected tenant the draft is for: ?tenant=<id>",
                    "tenant",
                ));
            }
        };
        let Some(row) = view.tenants.iter().find(|t| t.tenant == for_tenant) else {
            return Err(invalid(
                "tenant_not_affected",
                format!("the incident does not affect tenant {for_tenant}"),
                "tenant",
            ));
        };
        let subjects: Vec<Uuid> = view
            .subjects
            .iter()
            .filter(|(t, _)| *t == for_tenant)
            .map(|(_, s)| *s)
            .collect();
        let mut collections = BTreeSet::new();
        for s in &subjects {
            if let Some(v) = self
                .inner
                .store
                .subject_view(for_tenant, *s, RecordFilter::All(None))
                .await?
            {
                collections.extend(v.records.into_iter().map(|r| r.collection));
            }
        }
        let policy = self.policy();
        let basis = if collections.is_empty() {
            collections.extend(policy.collections.keys().map(|c| c.as_str().to_owned()));
            "all_collections"
        } else {
            "records"
        };
        let mut categories = BTreeSet::new();
        for c in &collections {
            if let Some(col) = policy.collection(c) {
                for field in col.fields.values() {
                    categories.insert(CategoryOut {
                        category: field.category.to_string(),
                        label: field.category.label().to_owned(),
                    });
                }
            }
        }
        let keys = self.incident_text_keys(&view.incident).await?;
        let (mut what, mut measures) = (Vec::new(), Vec::new());
        for n in &view.notes {
            let text =
                self.open_incident_text(&keys, &view.incident, &note_column(n.seq), &n.text)?;
            if n.kind == "measure" {
                measures.push(text);
            } else {
                what.push(text);
            }
        }
        let org = &policy.organization;
        let draft = NotificationDraft {
            incident: id,
            tenant: for_tenant,
            title: self.open_incident_text(
                &keys,
                &view.incident,
                TITLE_COLUMN,
                &view.incident.title,
            )?,
            what_happened: what,
            collections: collections.into_iter().collect(),
            data_categories: categories.into_iter().collect(),
            categories_basis: basis.to_owned(),
            subjects_affected: subjects.len() as u64,
            measures,
            contact: ContactOut {
                organization: org.name.clone(),
                contact: org.contact.clone(),
                dpo: org.dpo.clone(),
            },
            opened_at: view.incident.opened_at,
            deadline: view.incident.opened_at + NOTIFICATION_DEADLINE,
            notified_at: row.notified_at,
        };
        let mut event = caller.event;
        event.tenant = Some(for_tenant);
        event.detail = Some(serde_json::json!({ "incident": id }));
        self.commit(vec![Op::Audit(Box::new(event))]).await?;
        Ok(draft)
    }
}

/// A data category concerned by an incident, as the policy names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct CategoryOut {
    /// The fideslang key (`user.contact.email`).
    pub category: String,
    /// Its label.
    pub label: String,
}

/// Who the authority and the data subjects may contact (GDPR Art. 33(3)(b)).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContactOut {
    /// The organization (the policy's `organization.name`).
    pub organization: String,
    /// Its privacy contact.
    pub contact: String,
    /// Its data protection officer, when one is appointed.
    pub dpo: Option<String>,
}

/// The draft of one affected tenant's notification to its supervisory authority.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationDraft {
    /// The incident.
    pub incident: Uuid,
    /// The tenant (controller) the draft is for.
    pub tenant: Uuid,
    /// The incident's title.
    pub title: String,
    /// What happened: the timeline's notes of kind `note`, oldest first.
    pub what_happened: Vec<String>,
    /// The collections concerned.
    pub collections: Vec<String>,
    /// The data categories of those collections.
    pub data_categories: Vec<CategoryOut>,
    /// `records` when the collections are those the affected subjects have records in;
    /// `all_collections` when no subject (or no record of one) is known, so every collection
    /// of the policy is listed.
    pub categories_basis: String,
    /// How many of the tenant's subjects are known to be affected.
    pub subjects_affected: u64,
    /// The measures taken: the timeline's notes of kind `measure`, oldest first.
    pub measures: Vec<String>,
    /// Who to contact.
    pub contact: ContactOut,
    /// When the incident was opened (the controller became aware of it).
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// `opened_at` + 72 hours.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// When the tenant was marked notified; null until then.
    #[serde(with = "time::serde::rfc3339::option")]
    pub notified_at: Option<OffsetDateTime>,
}

impl NotificationDraft {
    /// The draft as Markdown, for pasting into an authority's form.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let list = |out: &mut String, items: &[String], none: &str| {
            if items.is_empty() {
                let _ = writeln!(out, "_{none}_");
            }
            // A note may span lines: its further lines are indented to stay in its item.
            for i in items {
                let _ = writeln!(out, "- {}", i.replace('\n', "\n  "));
            }
        };
        let _ = writeln!(out, "# Personal data breach notification (draft)\n");
        let _ = writeln!(out, "**Incident:** {}  ", self.incident);
        let _ = writeln!(out, "**Controller (tenant):** {}  ", self.tenant);
        let _ = writeln!(out, "**Became aware:** {}  ", rfc3339(self.opened_at));
        let _ = writeln!(
            out,
            "**Notification deadline (72 hours):** {}\n",
            rfc3339(self.deadline)
        );
        let _ = writeln!(out, "## What happened\n\n{}\n", self.title);
        list(&mut out, &self.what_happened, "No notes yet.");
        let _ = writeln!(out, "\n## Data concerned\n");
        let _ = writeln!(
            out,
            "Collections: {}",
            if self.collections.is_empty() {
                "none".to_owned()
            } else {
                self.collections.join(", ")
            }
        );
        if self.categories_basis == "all_collections" {
            let _ = writeln!(
                out,
                "(no affected subject's records are known: every collection is listed)"
            );
        }
        let _ = writeln!(out);
        let cats: Vec<String> = self
            .data_categories
            .iter()
            .map(|c| format!("{} (`{}`)", c.label, c.category))
            .collect();
        list(&mut out, &cats, "No categories.");
        let _ = writeln!(
            out,
            "\n## Data subjects affected\n\n{} known",
            self.subjects_affected
        );
        let _ = writeln!(out, "\n## Measures taken\n");
        list(&mut out, &self.measures, "No measures recorded yet.");
        let _ = writeln!(out, "\n## Contact\n");
        let _ = writeln!(out, "- Organization: {}", self.contact.organization);
        let _ = writeln!(out, "- Contact: {}", self.contact.contact);
        if let Some(dpo) = &self.contact.dpo {
            let _ = writeln!(out, "- Data protection officer: {dpo}");
        }
        out
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
