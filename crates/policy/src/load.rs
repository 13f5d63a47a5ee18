//! Reading the policy TOML into a [`Policy`], reporting every problem with its location.
//!
//! The document is parsed into toml's spanned tree ([`DeTable`]) and walked by hand rather
//! than deserialized with serde: serde stops at the first error, while an operator fixing a
//! policy wants every problem at once, each pointing at the key or value to change. The walk
//! never stops early; a section that fails still has its siblings checked.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::str::FromStr;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::anonymize::Anonymize;
use crate::collection::{
    Art9Condition, Collection, Field, LegalBasis, LegalHold, OnExpiry, Retention, RetentionStart,
};
use crate::error::{Diagnostic, PolicyError};
use crate::monitoring::{
    MAX_RULE_THRESHOLD, MAX_RULE_WINDOW_SECONDS, MonitoringSettings, RuleName, Severity,
};
use crate::names::{CollectionName, FieldName};
use crate::period::Period;
use crate::taxonomy::{DataCategory, DataSubject, Purpose};
use crate::types::FieldType;
use crate::{
    AuditSettings, Organization, Policy, Regions, SecuritySettings, Subprocessor, TenantSettings,
};

type Span = Range<usize>;
type Key<'i> = Spanned<DeString<'i>>;
type Val<'i> = Spanned<DeValue<'i>>;

const ROOT_KEYS: &[&str] = &[
    "organization",
    "collections",
    "audit",
    "tenants",
    "security",
    "subprocessors",
    "regions",
    "monitoring",
];
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
const COLLECTION_KEYS: &[&str] = &[
    "description",
    "purposes",
    "legal_basis",
    "retain_for",
    "retain_from",
    "on_expiry",
    "recipients",
    "legal_hold",
    "art9_condition",
    "data_subjects",
    "fields",
];
const LEGAL_HOLD_KEYS: &[&str] = &["retain_for", "reason"];
const FIELD_KEYS: &[&str] = &[
    "type",
    "category",
    "searchable",
    "required",
    "max_length",
    "anonymize",
    "description",
];

pub(crate) fn parse(source: &str, origin: &str) -> Result<Policy, PolicyError> {
    let mut loader = Loader {
        source,
        origin,
        errors: Vec::new(),
    };
    let (root, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        // The recovered tree of a broken document produces confusing follow-up errors, so
        // only the syntax errors are reported.
        for err in &syntax_errors {
            let at = err.span().map_or(0, |span| span.start);
            loader.error(at, err.message().to_owned());
        }
        return Err(loader.finish());
    }
    let root_table = Table {
        table: root.get_ref(),
        at: 0,
        path: "the policy".to_owned(),
    };
    loader.check_keys(root_table.table, &root_table.path, ROOT_KEYS);
    match loader.policy(&root_table) {
        Some(policy) if loader.errors.is_empty() => Ok(policy),
        _ => Err(loader.finish()),
    }
}

struct Loader<'s> {
    source: &'s str,
    origin: &'s str,
    /// Byte offset and message, turned into line and column at the end.
    errors: Vec<(usize, String)>,
}

/// A TOML table being read, with where to point when one of its keys is missing.
struct Table<'a, 'i> {
    table: &'a DeTable<'i>,
    at: usize,
    path: String,
}

impl<'a, 'i> Table<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Val<'i>> {
        self.table.get(key)
    }
}

impl Loader<'_> {
    fn error(&mut self, at: usize, message: impl Into<String>) {
        self.errors.push((at, message.into()));
    }

    fn finish(mut self) -> PolicyError {
        self.errors.sort_by_key(|(at, _)| *at);
        self.errors.dedup();
        let diagnostics = self
            .errors
            .iter()
            .map(|(at, message)| {
                let (line, column) = line_column(self.source, *at);
                Diagnostic {
                    file: self.origin.to_owned(),
                    line,
                    column,
                    message: message.clone(),
                }
            })
            .collect();
        PolicyError { diagnostics }
    }

    fn check_keys(&mut self, table: &DeTable<'_>, path: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                self.error(
                    key.span().start,
                    format!(
                        "unknown key `{}` in {path}; expected one of: {}",
                        key.get_ref(),
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// Opens a value as a table and reports its unknown keys.
    fn open<'a, 'i>(
        &mut self,
        value: &'a Val<'i>,
        path: String,
        allowed: &[&str],
    ) -> Option<Table<'a, 'i>> {
        match value.get_ref() {
            DeValue::Table(table) => {
                self.check_keys(table, &path, allowed);
                Some(Table {
                    table,
                    at: value.span().start,
                    path,
                })
            }
            other => {
                self.error(
                    value.span().start,
                    format!("{path} must be a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// Opens an optional section; a missing one reads as an empty table.
    fn section<'a, 'i>(
        &mut self,
        parent: &Table<'a, 'i>,
        key: &str,
        allowed: &[&str],
    ) -> Option<Option<Table<'a, 'i>>> {
        match parent.get(key) {
            None => Some(None),
            Some(value) => self.open(value, format!("[{key}]"), allowed).map(Some),
        }
    }

    fn required<'a, 'i>(&mut self, table: &Table<'a, 'i>, key: &str) -> Option<&'a Val<'i>> {
        let value = table.get(key);
        if value.is_none() {
            self.error(table.at, format!("missing key `{key}` in {}", table.path));
        }
        value
    }

    fn wrong_type(&mut self, value: &Val<'_>, key: &str, path: &str, expected: &str) {
        self.error(
            value.span().start,
            format!(
                "`{key}` in {path} must be {expected}, found {}",
                value.get_ref().type_str()
            ),
        );
    }

    fn str_of<'a>(&mut self, value: &'a Val<'_>, key: &str, path: &str) -> Option<&'a str> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(value, key, path, "a string");
                None
            }
        }
    }

    /// A required, non-empty string.
    fn text<'a>(&mut self, table: &Table<'a, '_>, key: &str) -> Option<&'a str> {
        let value = self.required(table, key)?;
        let s = self.str_of(value, key, &table.path)?;
        if s.trim().is_empty() {
            self.error(
                value.span().start,
                format!("`{key}` in {} must not be empty", table.path),
            );
            return None;
        }
        Some(s)
    }

    /// An optional string; `Some(None)` when absent, `None` on error.
    fn opt_str<'a>(&mut self, table: &Table<'a, '_>, key: &str) -> Option<Option<&'a str>> {
        match table.get(key) {
            None => Some(None),
            Some(value) => self.str_of(value, key, &table.path).map(Some),
        }
    }

    fn opt_bool(&mut self, table: &Table<'_, '_>, key: &str) -> Option<bool> {
        match table.get(key).map(|v| (v, v.get_ref())) {
            None => Some(false),
            Some((_, DeValue::Boolean(b))) => Some(*b),
            Some((value, _)) => {
                self.wrong_type(value, key, &table.path, "true or false");
                None
            }
        }
    }

    fn integer(&mut self, value: &Val<'_>, key: &str, path: &str) -> Option<i64> {
        match value.get_ref() {
            DeValue::Integer(int) => {
                let parsed = i64::from_str_radix(int.as_str(), int.radix()).ok();
                if parsed.is_none() {
                    self.error(
                        value.span().start,
                        format!("`{key}` in {path} is out of range"),
                    );
                }
                parsed
            }
            _ => {
                self.wrong_type(value, key, path, "an integer");
                None
            }
        }
    }

    fn period_of(&mut self, value: &Val<'_>, key: &str, path: &str) -> Option<Period> {
        let s = self.str_of(value, key, path)?;
        match Period::parse(s) {
            Ok(period) => Some(period),
            Err(err) => {
                self.error(value.span().start, format!("`{key}` in {path}: {err}"));
                None
            }
        }
    }

    /// An optional period; absent gives `default`.
    fn opt_period(
        &mut self,
        table: Option<&Table<'_, '_>>,
        key: &str,
        default: Period,
    ) -> Option<Period> {
        match table.and_then(|t| t.get(key).map(|v| (t, v))) {
            None => Some(default),
            Some((t, value)) => self.period_of(value, key, &t.path),
        }
    }

    /// An array of strings with the span of each item.
    fn str_list<'a>(
        &mut self,
        value: &'a Val<'_>,
        key: &str,
        path: &str,
    ) -> Option<Vec<(&'a str, Span)>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(value, key, path, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                other => {
                    self.error(
                        item.span().start,
                        format!(
                            "`{key}` in {path} must contain only strings, found {}",
                            other.type_str()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An optional array of strings, each parsed with `parse`; absent gives an empty list.
    fn parsed_list<T, E: std::fmt::Display>(
        &mut self,
        table: &Table<'_, '_>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<Vec<T>> {
        let Some(value) = table.get(key) else {
            return Some(Vec::new());
        };
        let items = self.str_list(value, key, &table.path)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (s, span) in items {
            match parse(s) {
                Ok(item) => out.push(item),
                Err(err) => {
                    self.error(span.start, format!("`{key}` in {}: {err}", table.path));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// Parses a string against a fixed set of spellings.
    fn choice<T: Copy>(
        &mut self,
        value: &Val<'_>,
        key: &str,
        path: &str,
        options: &[(T, &str)],
    ) -> Option<T> {
        let s = self.str_of(value, key, path)?;
        let found = options.iter().find(|(_, name)| *name == s).map(|(t, _)| *t);
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(_, name)| *name).collect();
            self.error(
                value.span().start,
                format!(
                    "`{s}` is not a valid `{key}` in {path}; expected one of: {}",
                    names.join(", ")
                ),
            );
        }
        found
    }

    fn policy(&mut self, root: &Table<'_, '_>) -> Option<Policy> {
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

    fn collections(
        &mut self,
        root: &Table<'_, '_>,
        recipients: &BTreeSet<String>,
    ) -> Option<BTreeMap<CollectionName, Collection>> {
        let value = self.required(root, "collections")?;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(value, "collections", "the policy", "a table");
            return None;
        };
        if table.is_empty() {
            self.error(
                value.span().start,
                "[collections] is empty: declare at least one collection",
            );
            return None;
        }
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            match self.collection(key, value, recipients) {
                Some(collection) => {
                    out.insert(collection.name.clone(), collection);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn collection(
        &mut self,
        key: &Key<'_>,
        value: &Val<'_>,
        known_recipients: &BTreeSet<String>,
    ) -> Option<Collection> {
        let raw_name: &str = key.get_ref();
        let name = CollectionName::parse(raw_name)
            .map_err(|err| self.error(key.span().start, format!("collection name: {err}")))
            .ok();
        let path = format!("[collections.{raw_name}]");
        let table = self.open(value, path, COLLECTION_KEYS)?;

        let description = self.opt_str(&table, "description");
        let purposes = self.purposes(&table, raw_name);
        let legal_basis = self.required(&table, "legal_basis").and_then(|v| {
            let options = LegalBasis::ALL.map(|b| (b, b.as_str()));
            self.choice(v, "legal_basis", &table.path, &options)
        });
        let art9_condition = match table.get("art9_condition") {
            None => Some(None),
            Some(v) => {
                let options = Art9Condition::ALL.map(|c| (c, c.as_str()));
                self.choice(v, "art9_condition", &table.path, &options)
                    .map(Some)
            }
        };
        let on_expiry = match table.get("on_expiry") {
            None => Some(None),
            Some(v) => {
                let options = [OnExpiry::Delete, OnExpiry::Anonymize].map(|o| (o, o.as_str()));
                self.choice(v, "on_expiry", &table.path, &options).map(Some)
            }
        };
        let retain_for = match table.get("retain_for") {
            None => Some(None),
            Some(v) => self.period_of(v, "retain_for", &table.path).map(Some),
        };
        let retain_from = self.opt_str(&table, "retain_from");
        if table.get("retain_for").is_none() {
            for dependent in ["retain_from", "on_expiry"] {
                if let Some(v) = table.get(dependent) {
                    self.error(
                        v.span().start,
                        format!(
                            "`{dependent}` in {} has no effect without `retain_for`",
                            table.path
                        ),
                    );
                }
            }
        }
        let recipients = self.parsed_list(&table, "recipients", |s: &str| {
            if known_recipients.contains(s) {
                Ok(s.to_owned())
            } else {
                Err(format!(
                    "`{s}` is not declared in [[subprocessors]]; recipients must name a \
                     declared subprocessor"
                ))
            }
        });
        let data_subjects = self.parsed_list(&table, "data_subjects", DataSubject::parse);
        let legal_hold = match table.get("legal_hold") {
            None => Some(None),
            Some(v) => self.legal_hold(v, raw_name).map(Some),
        };

        let context = FieldContext {
            collection: raw_name,
            // An invalid condition is reported on its own; the fields are not refused on top.
            has_art9_condition: table.get("art9_condition").is_some(),
            // Unknown while on_expiry is itself invalid; don't pile errors on top.
            anonymize_required: on_expiry == Some(Some(OnExpiry::Anonymize))
                && table.get("retain_for").is_some(),
        };
        let fields = self.fields(&table, &context);

        let retention_start = match (retain_from, &fields) {
            (Some(Some(from)), Some(fields)) => {
                self.retention_start(&table, from, fields).map(Some)
            }
            (Some(Some(_)), None) => None,
            (Some(None), _) => Some(None),
            (None, _) => None,
        };

        let retention = match (retain_for?, retention_start?) {
            (Some(retain_for), from) => Some(Retention {
                retain_for,
                from: from.unwrap_or(RetentionStart::Created),
                on_expiry: on_expiry?.unwrap_or(OnExpiry::Delete),
            }),
            (None, _) => None,
        };
        Some(Collection {
            name: name?,
            description: description?.unwrap_or_default().to_owned(),
            fields: fields?,
            purposes: purposes?,
            legal_basis: legal_basis?,
            retention,
            legal_hold: legal_hold?,
            art9_condition: art9_condition?,
            recipients: recipients?,
            data_subjects: data_subjects?,
        })
    }

    fn purposes(&mut self, table: &Table<'_, '_>, collection: &str) -> Option<BTreeSet<Purpose>> {
        let value = self.required(table, "purposes")?;
        let purposes = self.parsed_list(table, "purposes", Purpose::parse)?;
        if purposes.is_empty() {
            self.error(
                value.span().start,
                format!(
                    "collection `{collection}` declares no purposes; data without a purpose \
                     cannot be processed"
                ),
            );
            return None;
        }
        Some(purposes.into_iter().collect())
    }

    fn legal_hold(&mut self, value: &Val<'_>, collection: &str) -> Option<LegalHold> {
        let path = format!("[collections.{collection}.legal_hold]");
        let table = self.open(value, path, LEGAL_HOLD_KEYS)?;
        let retain_for = self
            .required(&table, "retain_for")
            .and_then(|v| self.period_of(v, "retain_for", &table.path));
        let reason = self.text(&table, "reason");
        Some(LegalHold {
            retain_for: retain_for?,
            reason: reason?.to_owned(),
        })
    }

    fn retention_start(
        &mut self,
        table: &Table<'_, '_>,
        from: &str,
        fields: &BTreeMap<FieldName, Field>,
    ) -> Option<RetentionStart> {
        if from == "created" {
            return Some(RetentionStart::Created);
        }
        let at = table
            .get("retain_from")
            .map_or(table.at, |v| v.span().start);
        match fields.get_key_value(from) {
            Some((name, field)) if field.ty.is_temporal() => {
                Some(RetentionStart::Field(name.clone()))
            }
            Some((_, field)) => {
                self.error(
                    at,
                    format!(
                        "`retain_from` in {} names field `{from}` of type {}; retention can only \
                         be counted from a date or datetime field (or \"created\")",
                        table.path, field.ty
                    ),
                );
                None
            }
            None => {
                self.error(
                    at,
                    format!(
                        "`retain_from` in {} names `{from}`, which is neither \"created\" nor a \
                         field of the collection",
                        table.path
                    ),
                );
                None
            }
        }
    }

    fn fields(
        &mut self,
        collection: &Table<'_, '_>,
        context: &FieldContext<'_>,
    ) -> Option<BTreeMap<FieldName, Field>> {
        let value = self.required(collection, "fields")?;
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(value, "fields", &collection.path, "a table");
            return None;
        };
        if table.is_empty() {
            self.error(
                value.span().start,
                format!(
                    "collection `{}` has no fields; declare at least one",
                    context.collection
                ),
            );
            return None;
        }
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in table.iter() {
            match self.field(key, value, context) {
                Some((name, field)) => {
                    out.insert(name, field);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn field(
        &mut self,
        key: &Key<'_>,
        value: &Val<'_>,
        context: &FieldContext<'_>,
    ) -> Option<(FieldName, Field)> {
        let raw_name: &str = key.get_ref();
        let collection = context.collection;
        let name = FieldName::parse(raw_name)
            .map_err(|err| self.error(key.span().start, format!("field name: {err}")))
            .ok();
        let path = format!("[collections.{collection}.fields.{raw_name}]");
        let table = self.open(value, path, FIELD_KEYS)?;

        let ty = self.required(&table, "type").and_then(|v| {
            let s = self.str_of(v, "type", &table.path)?;
            FieldType::from_str(s)
                .map_err(|err| self.error(v.span().start, err))
                .ok()
        });
        let category = self.required(&table, "category").and_then(|v| {
            let s = self.str_of(v, "category", &table.path)?;
            let category = DataCategory::parse(s)
                .map_err(|err| self.error(v.span().start, format!("`category`: {err}")))
                .ok()?;
            if let Some(special) = category.special_category()
                && !context.has_art9_condition
            {
                self.error(
                    v.span().start,
                    format!(
                        "`{category}` is {}; add art9_condition = \"explicit_consent\" (or \
                         another GDPR Art. 9(2) condition) to collection `{collection}`",
                        special.describe()
                    ),
                );
                return None;
            }
            if category.is_card_data() {
                self.error(
                    v.span().start,
                    format!(
                        "`{category}` is payment-card data, which Ward never stores; leave card \
                         details with a PCI-DSS payment processor"
                    ),
                );
                return None;
            }
            Some(category)
        });
        let searchable = self.opt_bool(&table, "searchable");
        if let (Some(true), Some(ty)) = (searchable, ty)
            && !ty.is_searchable_kind()
        {
            let at = table.get("searchable").map_or(table.at, |v| v.span().start);
            self.error(
                at,
                format!(
                    "field `{raw_name}` of type {ty} cannot be searchable: a blind index needs \
                     one exact value to hash"
                ),
            );
        }
        let required = self.opt_bool(&table, "required");
        let max_length = match table.get("max_length") {
            None => Some(None),
            Some(v) => {
                let n = self.integer(v, "max_length", &table.path);
                let n = n.and_then(|n| usize::try_from(n).ok().filter(|n| *n > 0));
                match (n, ty) {
                    (None, _) => {
                        self.error(
                            v.span().start,
                            "`max_length` must be a positive whole number",
                        );
                        None
                    }
                    (Some(_), Some(ty)) if ty != FieldType::String => {
                        self.error(
                            v.span().start,
                            format!(
                                "`max_length` only applies to string fields; field \
                                 `{raw_name}` is {ty}"
                            ),
                        );
                        None
                    }
                    (Some(n), _) => Some(Some(n)),
                }
            }
        };
        let anonymize = match table.get("anonymize") {
            None => {
                if context.anonymize_required {
                    self.error(
                        key.span().start,
                        format!(
                            "field `{raw_name}` needs an `anonymize` strategy because collection \
                             `{collection}` has on_expiry = \"anonymize\""
                        ),
                    );
                    None
                } else {
                    Some(None)
                }
            }
            Some(v) => self.anonymize(v, raw_name, ty, &table.path).map(Some),
        };
        let description = self.opt_str(&table, "description");

        let searchable = searchable?;
        let ty = ty?;
        if searchable && !ty.is_searchable_kind() {
            return None;
        }
        Some((
            name?,
            Field {
                ty,
                category: category?,
                searchable,
                required: required?,
                max_length: max_length?,
                anonymize: anonymize?,
                description: description?.unwrap_or_default().to_owned(),
            },
        ))
    }

    fn anonymize(
        &mut self,
        value: &Val<'_>,
        field: &str,
        ty: Option<FieldType>,
        path: &str,
    ) -> Option<Anonymize> {
        let s = self.str_of(value, "anonymize", path)?;
        let strategy = Anonymize::from_str(s)
            .map_err(|err| self.error(value.span().start, err))
            .ok()?;
        let ty = ty?;
        if !strategy.is_compatible_with(ty) {
            self.error(
                value.span().start,
                format!(
                    "`{strategy}` cannot anonymize field `{field}` of type {ty}; it applies to: {}",
                    strategy.compatible_types()
                ),
            );
            return None;
        }
        Some(strategy)
    }
}

/// What a field check needs to know about its collection.
struct FieldContext<'a> {
    collection: &'a str,
    has_art9_condition: bool,
    anonymize_required: bool,
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(source.len());
    while !source.is_char_boundary(at) {
        at -= 1;
    }
    let before = &source[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = source[line_start..at].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 6), (2, 1));
        // Byte 9 is the space after "bé" (é is two bytes): the third character.
        assert_eq!(line_column(src, 9), (2, 3));
        assert_eq!(line_column(src, 1000), (3, 1));
    }
}
