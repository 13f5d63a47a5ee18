//! Collections and their fields: purposes, legal basis, retention, legal holds, field types,
//! categories and anonymization. Apart because they carry most of the cross-checks between
//! keys of one table.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use toml::de::DeValue;

use crate::anonymize::Anonymize;
use crate::collection::{
    Art9Condition, Collection, Field, LegalBasis, LegalHold, OnExpiry, Retention, RetentionStart,
};
use crate::names::{CollectionName, FieldName};
use crate::taxonomy::{DataCategory, DataSubject, Purpose};
use crate::types::FieldType;

use super::{Key, Loader, Table, Val};

impl Loader<'_> {
    pub(super) fn collections(
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
        let category = self
            .required(&table, "category")
            .and_then(|v| self.field_category(v, &table.path, context));
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
        let max_length = self.max_length(&table, raw_name, ty);
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

    /// A field's `category`: a known data category, never card data, and a special category
    /// only in a collection with an Art. 9(2) condition.
    fn field_category(
        &mut self,
        v: &Val<'_>,
        path: &str,
        context: &FieldContext<'_>,
    ) -> Option<DataCategory> {
        let collection = context.collection;
        let s = self.str_of(v, "category", path)?;
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
    }

    /// A field's `max_length`: absent, or a positive whole number on a string field.
    fn max_length(
        &mut self,
        table: &Table<'_, '_>,
        raw_name: &str,
        ty: Option<FieldType>,
    ) -> Option<Option<usize>> {
        match table.get("max_length") {
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
        }
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

/// What a field check needs to know about its collection.
struct FieldContext<'a> {
    collection: &'a str,
    has_art9_condition: bool,
    anonymize_required: bool,
}
