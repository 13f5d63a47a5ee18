//! Restrictions (objections) to a subject's processing: adding and lifting purposes. Apart
//! because they change only the subject's restriction list, never its records.

use serde_json::json;
use uuid::Uuid;
use ward_audit::Action;
use ward_policy::Purpose;
use ward_store::{Op, RecordFilter};

use crate::access::ALL_NON_ESSENTIAL;
use crate::{RequestContext, Result, Vault, VaultError, parse_list};

use super::RestrictionIn;

impl Vault {
    /// Adds restrictions (objections) to a subject's processing.
    pub async fn restrict(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        r: RestrictionIn,
    ) -> Result<Vec<String>> {
        let mut add = Vec::new();
        for p in &r.purposes {
            let purpose = Purpose::parse(p).map_err(|e| {
                VaultError::invalid("invalid_purpose", format!("{p:?}: {e}"), Some("purposes"))
            })?;
            if purpose.is_essential() {
                return Err(VaultError::invalid(
                    "essential_purpose",
                    format!(
                        "{p} is essential (service delivery or a legal obligation) and cannot be restricted; erase the subject instead"
                    ),
                    Some("purposes"),
                ));
            }
            add.push(p.clone());
        }
        if r.all_non_essential {
            add.push(ALL_NON_ESSENTIAL.to_owned());
        }
        if add.is_empty() {
            return Err(VaultError::invalid(
                "empty_restriction",
                "name purposes or set all_non_essential",
                Some("purposes"),
            ));
        }
        self.change_restrictions(ctx, tenant, subject, Action::SubjectRestrict, |current| {
            for a in add {
                if !current.contains(&a) {
                    current.push(a);
                }
            }
        })
        .await
    }

    /// Lifts one restriction, or all when `purpose` is `None`.
    pub async fn lift_restriction(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        purpose: Option<String>,
    ) -> Result<Vec<String>> {
        self.change_restrictions(ctx, tenant, subject, Action::SubjectUnrestrict, |current| {
            match &purpose {
                Some(p) => current.retain(|c| c != p),
                None => current.clear(),
            }
        })
        .await
    }

    async fn change_restrictions(
        &self,
        ctx: &RequestContext,
        tenant: Uuid,
        subject: Uuid,
        action: Action,
        change: impl FnOnce(&mut Vec<String>),
    ) -> Result<Vec<String>> {
        let (mut event, _) = self.rights_gate(ctx, tenant, subject, action).await?;
        let view = self
            .subject_view(tenant, subject, RecordFilter::None)
            .await?;
        let mut current = parse_list(&view.subject.restrictions);
        change(&mut current);
        current.sort();
        event.detail = Some(json!({ "restrictions": current }));
        let restrictions = serde_json::to_string(&current).unwrap_or_else(|_| "[]".into());
        self.commit(vec![
            Op::SetRestrictions {
                tenant,
                subject,
                restrictions,
            },
            Op::Audit(Box::new(event)),
        ])
        .await?;
        Ok(current)
    }
}
