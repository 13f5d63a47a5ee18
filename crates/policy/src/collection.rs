//! Collections: typed groups of fields with their purposes, legal basis and retention.
//!
//! A collection is the unit the rest of Ward reasons about: an access names a collection and a
//! purpose, a record belongs to one collection, and retention runs per collection. Validation
//! of incoming records lives here so that no code path can write a record the policy does not
//! describe.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::anonymize::Anonymize;
use crate::card::{contains_card_number, json_contains_card_number};
use crate::error::{FieldViolation, RetentionError, ValueError, ViolationCode};
use crate::names::{CollectionName, FieldName};
use crate::period::Period;
use crate::taxonomy::{DataCategory, DataSubject, Purpose};
use crate::types::{DEFAULT_MAX_LENGTH, FieldType};

/// One kind of record, as declared under `[collections.<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Collection {
    /// The collection's name.
    pub name: CollectionName,
    /// What the collection holds, in words for the notice.
    pub description: String,
    /// Declared fields; nothing else can be stored.
    pub fields: BTreeMap<FieldName, Field>,
    /// Purposes for which records may be read or written.
    pub purposes: BTreeSet<Purpose>,
    /// The GDPR Art. 6 basis for processing.
    pub legal_basis: LegalBasis,
    /// When records expire; `None` means kept until erasure.
    pub retention: Option<Retention>,
    /// Records outlive erasure and retention until `created_at + retain_for`.
    pub legal_hold: Option<LegalHold>,
    /// The Art. 9(2) condition that makes special-category fields lawful.
    pub art9_condition: Option<Art9Condition>,
    /// Names of subprocessors that receive this collection.
    pub recipients: Vec<String>,
    /// Whose data this is, for the Art. 30 record (fideslang data-subject keys).
    pub data_subjects: Vec<DataSubject>,
}

/// One declared field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// The value type, which fixes validation and normalization.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// The fideslang category, which drives Art. 9 checks and the notice.
    pub category: DataCategory,
    /// Whether a blind index is kept so the field can be searched by exact value.
    pub searchable: bool,
    /// Whether the field must be present on create and may not be removed by a patch.
    pub required: bool,
    /// Longest `string` value in characters; [`DEFAULT_MAX_LENGTH`] when unset.
    pub max_length: Option<usize>,
    /// What happens to the field when its record is anonymized on expiry.
    pub anonymize: Option<Anonymize>,
    /// What the field holds, in words.
    pub description: String,
}

/// The GDPR Art. 6(1) basis for processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// Art. 6(1)(a).
    Consent,
    /// Art. 6(1)(b).
    Contract,
    /// Art. 6(1)(c).
    LegalObligation,
    /// Art. 6(1)(d).
    VitalInterests,
    /// Art. 6(1)(e).
    PublicInterest,
    /// Art. 6(1)(f).
    LegitimateInterests,
}

/// The GDPR Art. 9(2) conditions; naming one is required before special-category data can be
/// stored, because Art. 9(1) prohibits processing it otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Art9Condition {
    /// Art. 9(2)(a).
    ExplicitConsent,
    /// Art. 9(2)(b).
    EmploymentSocialSecurity,
    /// Art. 9(2)(c).
    VitalInterests,
    /// Art. 9(2)(d).
    NonprofitMembers,
    /// Art. 9(2)(e).
    MadePublic,
    /// Art. 9(2)(f).
    LegalClaims,
    /// Art. 9(2)(g).
    SubstantialPublicInterest,
    /// Art. 9(2)(h).
    HealthCare,
    /// Art. 9(2)(i).
    PublicHealth,
    /// Art. 9(2)(j).
    ArchivingResearch,
}

/// When records of a collection expire and what happens then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// How long after `from` a record is kept.
    pub retain_for: Period,
    /// What the period is counted from.
    pub from: RetentionStart,
    /// Delete or anonymize on expiry.
    pub on_expiry: OnExpiry,
}

/// What a retention period is counted from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionStart {
    /// The record's creation time.
    Created,
    /// A date or datetime field of the record (e.g. `contract_end`), checked at load.
    Field(FieldName),
}

/// What happens to an expired record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// The record is deleted.
    Delete,
    /// Each field is anonymized with its declared strategy; the record stays for statistics.
    Anonymize,
}

/// A legal obligation to keep records (tax, accounting) that overrides erasure and retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegalHold {
    /// Records are kept until `created_at + retain_for`, even after an erasure request.
    pub retain_for: Period,
    /// The law or reason, shown to the data subject when erasure is deferred.
    pub reason: String,
}

/// Whether a record is being created or partially updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationMode {
    /// A new record: required fields must be present; `null` means "not given".
    Create,
    /// An update of some fields: absent fields are untouched, `null` removes a field.
    Patch,
}

impl Collection {
    /// Checks an incoming record (or patch) and returns the normalized values.
    ///
    /// Checks run in a fixed order over the whole input, so a client always learns about the
    /// most serious problem first: (1) a card-like number anywhere, including unknown keys and
    /// nested JSON (`card_data_refused`); (2) undeclared fields (`unknown_field`); (3) types
    /// (`invalid_value`); (4) on create, missing required fields (`missing_field`).
    ///
    /// `null` on an optional field is kept in the result in [`ValidationMode::Patch`] (the
    /// caller removes the field) and left out in [`ValidationMode::Create`]; `null` on a
    /// required field is an `invalid_value` in both modes.
    pub fn validate(
        &self,
        fields: &Map<String, Value>,
        mode: ValidationMode,
    ) -> Result<BTreeMap<FieldName, Value>, FieldViolation> {
        if let Some(key) = fields
            .iter()
            .find(|(key, value)| contains_card_number(key) || json_contains_card_number(value))
            .map(|(key, _)| key)
        {
            return Err(FieldViolation {
                field: key.clone(),
                code: ViolationCode::CardDataRefused,
                message: "looks like a payment card number; Ward never stores card data".to_owned(),
                value_code: None,
            });
        }

        let mut declared = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            match self.fields.get_key_value(key.as_str()) {
                Some((name, field)) => declared.push((name, field, value)),
                None => {
                    return Err(FieldViolation {
                        field: key.clone(),
                        code: ViolationCode::UnknownField,
                        message: format!("collection `{}` has no field `{key}`", self.name),
                        value_code: None,
                    });
                }
            }
        }

        let mut normalized = BTreeMap::new();
        for (name, field, value) in declared {
            if value.is_null() {
                if field.required {
                    return Err(invalid(
                        name,
                        "null_required",
                        "a required field cannot be null",
                    ));
                }
                if mode == ValidationMode::Patch {
                    normalized.insert(name.clone(), Value::Null);
                }
                continue;
            }
            let value = field
                .validate(value)
                .map_err(|err| invalid(name, err.code, &err.message))?;
            normalized.insert(name.clone(), value);
        }

        if mode == ValidationMode::Create
            && let Some((name, _)) = self
                .fields
                .iter()
                .find(|(name, field)| field.required && !fields.contains_key(name.as_str()))
        {
            return Err(FieldViolation {
                field: name.to_string(),
                code: ViolationCode::MissingField,
                message: "this field is required".to_owned(),
                value_code: None,
            });
        }
        Ok(normalized)
    }

    /// Whether records may be used for `p`: it or one of its ancestors is declared, so a
    /// collection allowing `marketing` allows `marketing.communications.email`.
    pub fn allows_purpose(&self, p: &Purpose) -> bool {
        self.purposes
            .iter()
            .any(|allowed| p.is_within(allowed.as_str()))
    }

    /// Fields that get a blind index.
    pub fn searchable_fields(&self) -> impl Iterator<Item = (&FieldName, &Field)> {
        self.fields.iter().filter(|(_, field)| field.searchable)
    }
}

fn invalid(name: &FieldName, code: &'static str, message: &str) -> FieldViolation {
    FieldViolation {
        field: name.to_string(),
        code: ViolationCode::InvalidValue,
        message: format!("{code}: {message}"),
        value_code: Some(code),
    }
}

impl Field {
    /// Checks one non-null value against the field's type and `max_length`, returning the
    /// canonical form.
    pub fn validate(&self, value: &Value) -> Result<Value, ValueError> {
        self.ty
            .validate_with_limit(value, self.max_length.unwrap_or(DEFAULT_MAX_LENGTH))
    }
}

impl Retention {
    /// The retention with a per-tenant override applied.
    ///
    /// The policy's period is what the operator promised data subjects, so a tenant may keep
    /// data for less time but never longer; an equal period is accepted as a no-op.
    pub fn shortened(&self, to: Period) -> Result<Self, RetentionError> {
        if to > self.retain_for {
            return Err(RetentionError::Lengthened {
                requested: to,
                policy: self.retain_for,
            });
        }
        Ok(Self {
            retain_for: to,
            ..self.clone()
        })
    }
}

impl LegalBasis {
    /// The policy-file spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Contract => "contract",
            Self::LegalObligation => "legal_obligation",
            Self::VitalInterests => "vital_interests",
            Self::PublicInterest => "public_interest",
            Self::LegitimateInterests => "legitimate_interests",
        }
    }

    /// Every basis, in Art. 6(1) order.
    pub const ALL: [Self; 6] = [
        Self::Consent,
        Self::Contract,
        Self::LegalObligation,
        Self::VitalInterests,
        Self::PublicInterest,
        Self::LegitimateInterests,
    ];

    /// How the notice explains the basis, with its article.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Consent => "your consent (GDPR Art. 6(1)(a))",
            Self::Contract => "performance of a contract with you (GDPR Art. 6(1)(b))",
            Self::LegalObligation => "a legal obligation (GDPR Art. 6(1)(c))",
            Self::VitalInterests => "protection of vital interests (GDPR Art. 6(1)(d))",
            Self::PublicInterest => "a task in the public interest (GDPR Art. 6(1)(e))",
            Self::LegitimateInterests => "our legitimate interests (GDPR Art. 6(1)(f))",
        }
    }
}

impl Art9Condition {
    /// The policy-file spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ExplicitConsent => "explicit_consent",
            Self::EmploymentSocialSecurity => "employment_social_security",
            Self::VitalInterests => "vital_interests",
            Self::NonprofitMembers => "nonprofit_members",
            Self::MadePublic => "made_public",
            Self::LegalClaims => "legal_claims",
            Self::SubstantialPublicInterest => "substantial_public_interest",
            Self::HealthCare => "health_care",
            Self::PublicHealth => "public_health",
            Self::ArchivingResearch => "archiving_research",
        }
    }

    /// Every condition, in Art. 9(2) order.
    pub const ALL: [Self; 10] = [
        Self::ExplicitConsent,
        Self::EmploymentSocialSecurity,
        Self::VitalInterests,
        Self::NonprofitMembers,
        Self::MadePublic,
        Self::LegalClaims,
        Self::SubstantialPublicInterest,
        Self::HealthCare,
        Self::PublicHealth,
        Self::ArchivingResearch,
    ];

    /// How the notice names the condition, with its article.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::ExplicitConsent => "your explicit consent (GDPR Art. 9(2)(a))",
            Self::EmploymentSocialSecurity => {
                "obligations in employment and social security law (GDPR Art. 9(2)(b))"
            }
            Self::VitalInterests => "protection of vital interests (GDPR Art. 9(2)(c))",
            Self::NonprofitMembers => {
                "activities of a not-for-profit body with its members (GDPR Art. 9(2)(d))"
            }
            Self::MadePublic => "data you have made public (GDPR Art. 9(2)(e))",
            Self::LegalClaims => "legal claims (GDPR Art. 9(2)(f))",
            Self::SubstantialPublicInterest => "substantial public interest (GDPR Art. 9(2)(g))",
            Self::HealthCare => "health or social care (GDPR Art. 9(2)(h))",
            Self::PublicHealth => "public health (GDPR Art. 9(2)(i))",
            Self::ArchivingResearch => "archiving, research or statistics (GDPR Art. 9(2)(j))",
        }
    }
}

impl OnExpiry {
    /// The policy-file spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::Anonymize => "anonymize",
        }
    }
}

impl fmt::Display for LegalBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Art9Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for OnExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
