//! Rendering the policy as the documents a company publishes or keeps.
//!
//! Each document is generated from the same [`Policy`] value Ward enforces, so the notice can
//! only promise what the system does. The output is Markdown, which renders on a website, in a
//! repository and in most ticketing tools, and stays readable as plain text.

use std::fmt::Write as _;

use crate::collection::{Collection, OnExpiry, RetentionStart};
use crate::{BackupFacts, Policy, Subprocessor};

// Long on purpose: the notice top to bottom, one section after another in reading order;
// split into functions, the document's shape would no longer be visible in one place.
pub(crate) fn notice(policy: &Policy, backups: Option<&BackupFacts>) -> String {
    let org = &policy.organization;
    let mut out = String::new();
    line(&mut out, format!("# Privacy notice — {}", org.name));
    line(&mut out, "");
    line(
        &mut out,
        format!(
            "{} decides why and how the personal data described here is processed. This notice \
             is generated from the policy that our data vault enforces, so it describes what \
             the system actually does.",
            org.name
        ),
    );
    line(&mut out, "");
    line(
        &mut out,
        format!("- **Privacy contact:** <{}>", org.contact),
    );
    if let Some(dpo) = &org.dpo {
        line(&mut out, format!("- **Data protection officer:** {dpo}"));
    }
    line(&mut out, "");
    line(&mut out, "## What we collect and why");
    for collection in policy.collections.values() {
        line(&mut out, "");
        notice_collection(&mut out, collection, policy);
    }

    line(&mut out, "");
    line(&mut out, "## Payment cards");
    line(&mut out, "");
    line(
        &mut out,
        "We never record or store payment card numbers. Any value that looks like a card number \
         is refused before it is written; card payments are handled by PCI-DSS compliant payment \
         processors.",
    );

    line(&mut out, "");
    line(&mut out, "## Who receives your data");
    line(&mut out, "");
    if policy.subprocessors.is_empty() {
        line(
            &mut out,
            "We do not share personal data with third parties.",
        );
    } else {
        line(
            &mut out,
            "We share personal data only with the service providers below, each bound by a data \
             processing agreement and limited to the purpose stated. We do not sell personal \
             data.",
        );
        line(&mut out, "");
        subprocessor_table(&mut out, policy);
    }

    line(&mut out, "");
    line(&mut out, "## Where your data is stored");
    line(&mut out, "");
    line(
        &mut out,
        format!(
            "- **Hosting:** {}",
            list_or(&policy.regions.hosting, "not declared")
        ),
    );
    line(&mut out, backups_line(policy, backups));

    line(&mut out, "");
    line(&mut out, "## Security and logs");
    line(&mut out, "");
    line(
        &mut out,
        "- Personal data is encrypted with keys specific to each organization and to each person; \
         erasing a person destroys their key.",
    );
    line(
        &mut out,
        format!(
            "- Every access to personal data is recorded in a tamper-evident audit log, kept for \
             {}. Audit entries never contain the data itself.",
            policy.audit.retain_for.humanize()
        ),
    );
    line(
        &mut out,
        format!(
            "- Server logs are kept for {}.",
            policy.security.server_log_retain_for.humanize()
        ),
    );
    line(
        &mut out,
        format!(
            "- IP addresses are never stored. To stop password-guessing attacks and to show \
             which accesses came from the same place, the audit log keeps a keyed hash of \
             the address; the key exists only in the server's memory and is replaced every \
             {}, after which no stored hash can be traced back to an address.",
            policy.security.ip_hash_window.humanize()
        ),
    );
    line(
        &mut out,
        format!(
            "- When an organization cancels, its data is kept deactivated for {} so the \
             decision can be reversed, then destroyed.",
            policy.tenants.grace_period.humanize()
        ),
    );

    line(&mut out, "");
    line(&mut out, "## Your rights");
    line(&mut out, "");
    line(
        &mut out,
        "You may access your data and receive a copy in a portable format, have it corrected, \
         have it erased, and restrict or object to its use for any purpose that is not \
         essential. Requests are answered within one month. Data under a legal hold is kept \
         until the hold ends, and we tell you which data and until when. You may also lodge a \
         complaint with a data protection supervisory authority.",
    );
    line(&mut out, "");
    line(
        &mut out,
        format!("Write to <{}> to exercise these rights.", org.contact),
    );
    out
}

fn notice_collection(out: &mut String, collection: &Collection, policy: &Policy) {
    let title = if collection.description.is_empty() {
        collection.name.to_string()
    } else {
        collection.description.clone()
    };
    line(out, format!("### {title} (`{}`)", collection.name));
    line(out, "");
    let anonymized = collection
        .retention
        .as_ref()
        .is_some_and(|r| r.on_expiry == OnExpiry::Anonymize);
    if anonymized {
        line(out, "| Data | Category | When it expires |");
        line(out, "|---|---|---|");
    } else {
        line(out, "| Data | Category |");
        line(out, "|---|---|");
    }
    for (name, field) in &collection.fields {
        let data = if field.description.is_empty() {
            format!("`{name}`")
        } else {
            format!("`{name}`: {}", cell(&field.description))
        };
        let category = format!("{} (`{}`)", field.category.label(), field.category);
        if anonymized {
            let strategy = field
                .anonymize
                .map_or_else(|| "removed".to_owned(), |a| anonymization_words(&a));
            line(out, format!("| {data} | {category} | {strategy} |"));
        } else {
            line(out, format!("| {data} | {category} |"));
        }
    }
    line(out, "");
    let purposes: Vec<String> = collection
        .purposes
        .iter()
        .map(|p| format!("{} (`{p}`)", p.label()))
        .collect();
    line(out, format!("- **Why:** {}", purposes.join("; ")));
    line(
        out,
        format!("- **Legal basis:** {}", collection.legal_basis.describe()),
    );
    if let Some(condition) = collection.art9_condition {
        line(
            out,
            format!(
                "- **Special categories of data:** processed on the basis of {}",
                condition.describe()
            ),
        );
    }
    line(
        out,
        format!("- **How long:** {}", retention_words(collection)),
    );
    if let Some(hold) = &collection.legal_hold {
        line(
            out,
            format!(
                "- **Legal hold:** kept for {} after creation, even after an erasure request, \
                 because of {}",
                hold.retain_for.humanize(),
                hold.reason
            ),
        );
    }
    let recipients: Vec<String> = collection
        .recipients
        .iter()
        .map(|name| match policy.subprocessor(name) {
            Some(s) => format!("{} ({})", s.name, s.location),
            None => name.clone(),
        })
        .collect();
    line(
        out,
        format!(
            "- **Shared with:** {}",
            list_or(&recipients, "no third party")
        ),
    );
}

fn retention_words(collection: &Collection) -> String {
    match &collection.retention {
        None => "kept until you ask us to delete it, or until the account it belongs to is closed"
            .to_owned(),
        Some(retention) => {
            let action = match retention.on_expiry {
                OnExpiry::Delete => "deleted",
                OnExpiry::Anonymize => "anonymized",
            };
            let from = match &retention.from {
                RetentionStart::Created => "it is collected".to_owned(),
                RetentionStart::Field(field) => match collection.fields.get(field) {
                    Some(f) if !f.description.is_empty() => {
                        format!("the `{field}` date ({})", f.description)
                    }
                    _ => format!("the `{field}` date"),
                },
            };
            format!("{action} {} after {from}", retention.retain_for.humanize())
        }
    }
}

fn anonymization_words(strategy: &crate::Anonymize) -> String {
    use crate::{Anonymize, DateGranularity};
    match strategy {
        Anonymize::Drop => "removed".to_owned(),
        Anonymize::Null => "erased".to_owned(),
        Anonymize::Hmac => "replaced by a keyed hash".to_owned(),
        Anonymize::IpMask => "last part of the address removed".to_owned(),
        Anonymize::GeneralizeDate(DateGranularity::Month) => "only the month kept".to_owned(),
        Anonymize::GeneralizeDate(DateGranularity::Year) => "only the year kept".to_owned(),
        Anonymize::CoarseGeo => "reduced to an approximate area".to_owned(),
        Anonymize::Bucket { width } => format!("rounded to a range of {width}"),
    }
}

// Long on purpose: the record of processing top to bottom, one section after another in
// reading order; split into functions, the document's shape would be scattered.
pub(crate) fn ropa(policy: &Policy) -> String {
    let org = &policy.organization;
    let mut out = String::new();
    line(
        &mut out,
        format!("# Record of processing activities — {}", org.name),
    );
    line(&mut out, "");
    line(
        &mut out,
        "Kept under GDPR Art. 30(1); generated from the enforced Ward policy.",
    );
    line(&mut out, "");
    line(
        &mut out,
        format!("- **(a) Controller:** {} — <{}>", org.name, org.contact),
    );
    line(
        &mut out,
        format!(
            "- **(a) Data protection officer:** {}",
            org.dpo.as_deref().unwrap_or("none appointed")
        ),
    );

    for (i, collection) in policy.collections.values().enumerate() {
        line(&mut out, "");
        let title = if collection.description.is_empty() {
            String::new()
        } else {
            format!(": {}", collection.description)
        };
        line(
            &mut out,
            format!("## {}. `{}`{title}", i + 1, collection.name),
        );
        line(&mut out, "");
        line(&mut out, "| Art. 30(1) | |");
        line(&mut out, "|---|---|");
        let purposes: Vec<String> = collection
            .purposes
            .iter()
            .map(|p| format!("`{p}` ({})", p.label()))
            .collect();
        row(&mut out, "(b) Purposes", &purposes.join(", "));
        row(&mut out, "Legal basis", collection.legal_basis.describe());
        let subjects: Vec<String> = collection
            .data_subjects
            .iter()
            .map(|s| s.label().to_owned())
            .collect();
        row(
            &mut out,
            "(c) Categories of data subjects",
            &list_or(&subjects, "not declared"),
        );
        let categories: Vec<String> = collection
            .fields
            .iter()
            .map(|(name, field)| format!("`{}` ({name})", field.category))
            .collect();
        row(
            &mut out,
            "(c) Categories of personal data",
            &categories.join(", "),
        );
        let special: Vec<String> = collection
            .fields
            .iter()
            .filter_map(|(name, field)| {
                field
                    .category
                    .special_category()
                    .map(|s| format!("{name}: {}", s.describe()))
            })
            .collect();
        if !special.is_empty() {
            let condition = collection
                .art9_condition
                .map_or("", |condition| condition.describe());
            row(
                &mut out,
                "Special categories (Art. 9/10)",
                &format!("{}; condition: {condition}", special.join(", ")),
            );
        }
        let recipients: Vec<&Subprocessor> = collection
            .recipients
            .iter()
            .filter_map(|name| policy.subprocessor(name))
            .collect();
        let names: Vec<String> = recipients
            .iter()
            .map(|s| format!("{} ({})", s.name, s.purpose))
            .collect();
        row(&mut out, "(d) Recipients", &list_or(&names, "none"));
        let transfers: Vec<String> = recipients
            .iter()
            .map(|s| format!("{}: {}", s.name, s.location))
            .collect();
        row(
            &mut out,
            "(e) Transfers and locations",
            &format!(
                "hosting: {}; backups: {}{}",
                list_or(&policy.regions.hosting, "not declared"),
                list_or(&policy.regions.backups, "not declared"),
                if transfers.is_empty() {
                    String::new()
                } else {
                    format!("; recipients: {}", transfers.join(", "))
                }
            ),
        );
        let mut limits = retention_words(collection);
        if let Some(hold) = &collection.legal_hold {
            let _ = write!(
                limits,
                "; legal hold of {} from creation ({})",
                hold.retain_for.humanize(),
                hold.reason
            );
        }
        row(&mut out, "(f) Time limits for erasure", &limits);
        row(&mut out, "(g) Security measures", "see below");
    }

    line(&mut out, "");
    line(
        &mut out,
        "## (g) Technical and organisational security measures (Art. 32)",
    );
    line(&mut out, "");
    for measure in [
        "Per-tenant and per-subject encryption keys (AES-256-GCM); erasure by key destruction \
         (NIST SP 800-88 cryptographic erase).",
        "Every read states a purpose and is checked against this policy; every access, allowed \
         or denied, is written to a tamper-evident Merkle-tree audit log with signed checkpoints.",
        "Typed validation of every value before storage; payment card numbers are refused.",
        "Expiry, anonymization and legal holds applied automatically on schedule.",
        "Encrypted, deduplicated backups with key backups kept apart; restores are tested \
         automatically.",
        "Staff access to tenant data only under a time-limited, audited support grant.",
    ] {
        line(&mut out, format!("- {measure}"));
    }
    line(
        &mut out,
        format!(
            "- Audit log retained {}; server logs {}; client IPs only as keyed hashes whose \
             in-memory key is replaced every {}; cancelled organizations destroyed after {}.",
            policy.audit.retain_for.humanize(),
            policy.security.server_log_retain_for.humanize(),
            policy.security.ip_hash_window.humanize(),
            policy.tenants.grace_period.humanize()
        ),
    );
    out
}

pub(crate) fn subprocessors(policy: &Policy) -> String {
    let mut out = String::new();
    line(
        &mut out,
        format!("# Subprocessors — {}", policy.organization.name),
    );
    line(&mut out, "");
    if policy.subprocessors.is_empty() {
        line(
            &mut out,
            "We do not share personal data with third parties.",
        );
    } else {
        subprocessor_table(&mut out, policy);
    }
    out
}

fn subprocessor_table(out: &mut String, policy: &Policy) {
    line(
        out,
        "| Subprocessor | Purpose | Data shared | Location | Collections |",
    );
    line(out, "|---|---|---|---|---|");
    for s in &policy.subprocessors {
        let shared: Vec<String> = s
            .data_shared
            .iter()
            .map(|c| format!("{} (`{c}`)", c.label()))
            .collect();
        let collections: Vec<String> = policy
            .collections
            .values()
            .filter(|c| c.recipients.contains(&s.name))
            .map(|c| format!("`{}`", c.name))
            .collect();
        line(
            out,
            format!(
                "| {} | {} | {} | {} | {} |",
                cell(&s.name),
                cell(&s.purpose),
                cell(&list_or(&shared, "—")),
                cell(&s.location),
                cell(&list_or(&collections, "—"))
            ),
        );
    }
}

fn row(out: &mut String, label: &str, value: &str) {
    line(out, format!("| {label} | {} |", cell(value)));
}

/// Escapes text for a Markdown table cell: a `|` would end the cell, a newline the row.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn list_or(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_owned()
    } else {
        items.join(", ")
    }
}

fn line(out: &mut String, text: impl AsRef<str>) {
    out.push_str(text.as_ref());
    out.push('\n');
}

/// The notice's backup line: the policy's declared regions, and with a deployment's backup
/// configuration, what actually happens (schedule, copies, regions, how long).
fn backups_line(policy: &Policy, backups: Option<&BackupFacts>) -> String {
    let declared = list_or(&policy.regions.backups, "not declared");
    let Some(b) = backups else {
        return format!("- **Backups:** {declared}");
    };
    let regions = if b.regions.is_empty() {
        declared
    } else {
        b.regions.join(", ")
    };
    let schedule = b.every.as_ref().map_or_else(
        || "taken on demand".to_owned(),
        |e| format!("taken every {e}"),
    );
    format!(
        "- **Backups:** encrypted, {schedule}, written to {} separate location{} ({regions}), \
         restored and verified automatically every {}. Backups of the data are kept at most {}; \
         backups of the encryption keys only {}, so data erased from the vault cannot be \
         recovered from any backup once {} have passed.",
        b.locations,
        if b.locations == 1 { "" } else { "s" },
        b.verify_every,
        b.max_age,
        b.key_window,
        b.key_window,
    )
}
