//! The policy's top-level sections: organization, audit, tenants, security, monitoring,
//! regions and subprocessors. Apart from collections, which are most of a policy's text.

use std::collections::BTreeSet;

use toml::de::DeValue;

use crate::monitoring::{
    MAX_RULE_THRESHOLD, MAX_RULE_WINDOW_SECONDS, MonitoringSettings, RuleName, Severity,
};
use crate::taxonomy::DataCategory;
use crate::types::FieldType;
use crate::{
    AuditSettings, Organization, Policy, Regions, SecuritySettings, Subprocessor, TenantSettings,
};

use super::{Loader, Table};

impl Loader<'_> {
    pub(super) fn policy(&mut self, root: &Table<'_, '_>) -> Option<Policy> {
        let organization = self.organization(root);
        let audit = self.audit(root);
        let tenants = self.tenants(root);
        let security = self.security(root);
        let monitoring = self.monitoring(root);
        let regions = self.regions(root);
        let subprocessors = self.subprocessors(root);
        let known_recipients: BTreeSet<String> = subprocessors
            .iter()
            .flatten()
            .map(|s| s.name.clone())
            .collect();
        let collections = self.collections(root, &known_recipients);
        Some(Policy {
            organization: organization?,
            collections: collections?,
            audit: audit?,
            tenants: tenants?,
            security: security?,
            monitoring: monitoring?,
            subprocessors: subprocessors?,
            regions: regions?,
        })
    }

    fn organization(&mut self, root: &Table<'_, '_>) -> Option<Organization> {
        let value = self.required(root, "organization")?;
        let table = self.open(value, "[organization]".to_owned(), ORGANIZATION_KEYS)?;
        let name = self.text(&table, "name");
        let contact = self.text(&table, "contact").and_then(|contact| {
            match FieldType::Email.validate(&serde_json::Value::from(contact)) {
                Ok(serde_json::Value::String(email)) => Some(email),
                _ => {
                    let at = table.get("contact").map_or(table.at, |v| v.span().start);
                    self.error(
                        at,
                        "`contact` in [organization] must be an e-mail address data subjects can \
                         write to",
                    );
                    None
                }
            }
        });
        let dpo = self.opt_str(&table, "dpo");
        Some(Organization {
            name: name?.to_owned(),
            contact: contact?,
            dpo: dpo?.map(str::to_owned),
        })
    }

    fn audit(&mut self, root: &Table<'_, '_>) -> Option<AuditSettings> {
        let table = self.section(root, "audit", AUDIT_KEYS)?;
        let defaults = AuditSettings::default();
        let retain_for = self.opt_period(table.as_ref(), "retain_for", defaults.retain_for);
        let checkpoint_interval = self.opt_period(
            table.as_ref(),
            "checkpoint_interval",
            defaults.checkpoint_interval,
        );
        Some(AuditSettings {
            retain_for: retain_for?,
            checkpoint_interval: checkpoint_interval?,
        })
    }

    fn tenants(&mut self, root: &Table<'_, '_>) -> Option<TenantSettings> {
        let table = self.section(root, "tenants", TENANT_KEYS)?;
        let grace_period = self.opt_period(
            table.as_ref(),
            "grace_period",
            TenantSettings::default().grace_period,
        );
        Some(TenantSettings {
            grace_period: grace_period?,
        })
    }

    fn security(&mut self, root: &Table<'_, '_>) -> Option<SecuritySettings> {
        let table = self.section(root, "security", SECURITY_KEYS)?;
        let d = SecuritySettings::default();
        let t = table.as_ref();
        let ip_hash_window = self.opt_period(t, "ip_hash_window", d.ip_hash_window);
        let server_log_retain_for =
            self.opt_period(t, "server_log_retain_for", d.server_log_retain_for);
        let session_idle_timeout =
            self.opt_period(t, "session_idle_timeout", d.session_idle_timeout);
        let session_max_age = self.opt_period(t, "session_max_age", d.session_max_age);
        let lockout_window = self.opt_period(t, "lockout_window", d.lockout_window);
        let lockout_threshold = match t.and_then(|t| t.get("lockout_threshold").map(|v| (t, v))) {
            None => Some(d.lockout_threshold),
            Some((t, value)) => {
                let n = self.integer(value, "lockout_threshold", &t.path)?;
                let n = u32::try_from(n).ok().filter(|n| *n > 0);
                if n.is_none() {
                    self.error(
                        value.span().start,
                        "`lockout_threshold` in [security] must be a positive whole number",
                    );
                }
                n
            }
        };
        Some(SecuritySettings {
            ip_hash_window: ip_hash_window?,
            server_log_retain_for: server_log_retain_for?,
            session_idle_timeout: session_idle_timeout?,
            session_max_age: session_max_age?,
            lockout_threshold: lockout_threshold?,
            lockout_window: lockout_window?,
        })
    }

    fn monitoring(&mut self, root: &Table<'_, '_>) -> Option<MonitoringSettings> {
        let mut settings = MonitoringSettings::default();
        let Some(table) = self.section(root, "monitoring", MONITORING_KEYS)? else {
            return Some(settings);
        };
        let mut ok = true;
        match table.get("enabled").map(|v| (v, v.get_ref())) {
            None => {}
            Some((_, DeValue::Boolean(b))) => settings.enabled = *b,
            Some((value, _)) => {
                self.wrong_type(value, "enabled", &table.path, "true or false");
                ok = false;
            }
        }
        let Some(rules) = table.get("rules") else {
            return ok.then_some(settings);
        };
        let DeValue::Table(rules_table) = rules.get_ref() else {
            self.wrong_type(rules, "rules", &table.path, "a table of rules");
            return None;
        };
        for (key, value) in rules_table.iter() {
            let name = key.get_ref().as_ref();
            let Some(rule) = RuleName::parse(name) else {
                let known: Vec<&str> = RuleName::ALL.iter().map(|r| r.as_str()).collect();
                self.error(
                    key.span().start,
                    format!(
                        "unknown rule `{name}` in [monitoring.rules]; expected one of: {}",
                        known.join(", ")
                    ),
                );
                ok = false;
                continue;
            };
            let path = format!("[monitoring.rules.{name}]");
            let Some(t) = self.open(value, path.clone(), RULE_KEYS) else {
                ok = false;
                continue;
            };
            let mut rs = rule.default_settings();
            if t.get("enabled").is_some() {
                match self.opt_bool(&t, "enabled") {
                    Some(b) => rs.enabled = b,
                    None => ok = false,
                }
            }
            if rule.is_clock() {
                for key in ["threshold", "window"] {
                    if let Some(value) = t.get(key) {
                        self.error(
                            value.span().start,
                            format!(
                                "`{key}` does not apply to {path}: the incident clock raises \
                                 it once per incident (only `enabled` and `severity` may be set)"
                            ),
                        );
                        ok = false;
                    }
                }
            } else if let Some(value) = t.get("threshold") {
                let n = self
                    .integer(value, "threshold", &path)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| (1..=MAX_RULE_THRESHOLD).contains(n));
                match n {
                    Some(n) => rs.threshold = n,
                    None => {
                        self.error(
                            value.span().start,
                            format!(
                                "`threshold` in {path} must be a whole number from 1 to \
                                 {MAX_RULE_THRESHOLD}"
                            ),
                        );
                        ok = false;
                    }
                }
            }
            if let Some(value) = t.get("window").filter(|_| !rule.is_clock()) {
                match self.period_of(value, "window", &path) {
                    Some(p) if p.seconds() <= MAX_RULE_WINDOW_SECONDS => rs.window = p,
                    Some(_) => {
                        self.error(
                            value.span().start,
                            format!("`window` in {path} must be at most 24h"),
                        );
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            if let Some(value) = t.get("severity") {
                match self.str_of(value, "severity", &path).map(Severity::parse) {
                    Some(Some(s)) => rs.severity = s,
                    Some(None) => {
                        self.error(
                            value.span().start,
                            format!(
                                "`severity` in {path} must be one of: low, medium, high, critical"
                            ),
                        );
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            settings.rules.insert(rule, rs);
        }
        ok.then_some(settings)
    }

    fn regions(&mut self, root: &Table<'_, '_>) -> Option<Regions> {
        let Some(table) = self.section(root, "regions", REGION_KEYS)? else {
            return Some(Regions::default());
        };
        let mut list = |key: &str| {
            self.parsed_list(&table, key, |s: &str| {
                if s.trim().is_empty() {
                    Err("a region must not be empty")
                } else {
                    Ok(s.to_owned())
                }
            })
        };
        let hosting = list("hosting");
        let backups = list("backups");
        Some(Regions {
            hosting: hosting?,
            backups: backups?,
        })
    }

    fn subprocessors(&mut self, root: &Table<'_, '_>) -> Option<Vec<Subprocessor>> {
        let Some(value) = root.get("subprocessors") else {
            return Some(Vec::new());
        };
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, "subprocessors", "the policy", "an array of tables");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        let mut seen = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("[[subprocessors]] #{}", i + 1);
            let Some(table) = self.open(item, path, SUBPROCESSOR_KEYS) else {
                ok = false;
                continue;
            };
            let name = self.text(&table, "name");
            if let Some(name) = name
                && !seen.insert(name)
            {
                let at = table.get("name").map_or(table.at, |v| v.span().start);
                self.error(at, format!("subprocessor `{name}` is declared twice"));
                ok = false;
            }
            let purpose = self.text(&table, "purpose");
            let location = self.text(&table, "location");
            let data_shared = self.parsed_list(&table, "data_shared", DataCategory::parse);
            match (name, purpose, location, data_shared) {
                (Some(name), Some(purpose), Some(location), Some(data_shared)) => {
                    out.push(Subprocessor {
                        name: name.to_owned(),
                        purpose: purpose.to_owned(),
                        data_shared,
                        location: location.to_owned(),
                    });
                }
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }
}

const ORGANIZATION_KEYS: &[&str] = &["name", "contact", "dpo"];

const AUDIT_KEYS: &[&str] = &["retain_for", "checkpoint_interval"];

const TENANT_KEYS: &[&str] = &["grace_period"];

const SECURITY_KEYS: &[&str] = &[
    "ip_hash_window",
    "server_log_retain_for",
    "session_idle_timeout",
    "session_max_age",
    "lockout_threshold",
    "lockout_window",
];

const MONITORING_KEYS: &[&str] = &["enabled", "rules"];

const RULE_KEYS: &[&str] = &["enabled", "threshold", "window", "severity"];

const REGION_KEYS: &[&str] = &["hosting", "backups"];

const SUBPROCESSOR_KEYS: &[&str] = &["name", "purpose", "data_shared", "location"];
