//! Error types: policy-load diagnostics, name and value errors, and record violations.
//!
//! Load errors carry file, line and column because the people reading them are editing a TOML
//! file; record violations carry a stable machine code because the people reading them are
//! API clients.

use std::fmt;

use serde::Serialize;

use crate::period::Period;

/// One problem found while loading a policy, pointing at the offending key or value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    /// The file name given as `origin` (or the path passed to [`crate::Policy::load`]).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters so editors land on the right spot.
    pub column: usize,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A policy that could not be loaded, with every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// All diagnostics; never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// Why a string is not a valid name, purpose, data category or data subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Collection and field names become API paths and storage keys, so they are restricted to
    /// a portable identifier syntax.
    #[error(
        "`{0}` is not a valid name: use 1 to 64 characters, a lower-case ASCII letter first, \
         then lower-case letters, digits or `_`"
    )]
    InvalidIdentifier(String),
    /// Purposes must be fideslang data-use keys so other privacy tools understand them.
    #[error("`{key}` is not a fideslang data-use key{}", hint(.suggestion))]
    UnknownPurpose {
        /// The rejected key.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// Data categories must be fideslang data-category keys.
    #[error("`{key}` is not a fideslang data-category key{}", hint(.suggestion))]
    UnknownCategory {
        /// The rejected key.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// Data subjects must be fideslang data-subject keys.
    #[error("`{key}` is not a fideslang data-subject key{}", hint(.suggestion))]
    UnknownDataSubject {
        /// The rejected key.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<&'static str>,
    },
}

fn hint(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// A value that does not fit its field type.
///
/// `code` is stable and machine-readable (API clients branch on it); `message` is for humans
/// and never repeats the rejected value, which may be personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ValueError {
    /// Stable code such as `invalid_email`, `wrong_type` or `too_long`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ValueError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Why a record was refused; API clients branch on [`ViolationCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ViolationCode {
    /// Something in the request looks like a payment card number; Ward never stores those.
    CardDataRefused,
    /// The field is not declared in the collection; undeclared data has no purpose or
    /// retention, so it cannot be stored.
    UnknownField,
    /// A required field is absent on create.
    MissingField,
    /// The value does not fit the field's type.
    InvalidValue,
    /// Special-category data refused at run time. Policy load already refuses Art. 9/10
    /// categories without a condition, so [`crate::Collection::validate`] never returns this;
    /// it exists for callers that restrict special categories further (for example per tenant).
    SpecialCategoryRefused,
}

impl ViolationCode {
    /// The stable wire name of the code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CardDataRefused => "card_data_refused",
            Self::UnknownField => "unknown_field",
            Self::MissingField => "missing_field",
            Self::InvalidValue => "invalid_value",
            Self::SpecialCategoryRefused => "special_category_refused",
        }
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first reason a record was refused, naming the field so the client can fix it.
///
/// The message never contains the offending value: a refused card number must not end up in
/// logs or error responses either.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {code}: {message}")]
pub struct FieldViolation {
    /// The field (or input key) concerned, as sent by the client.
    pub field: String,
    /// Machine-readable reason.
    pub code: ViolationCode,
    /// Human-readable explanation; for `invalid_value` it starts with the [`ValueError`] code.
    pub message: String,
    /// For `invalid_value`: the type-specific code (`invalid_email`, `invalid_date`, …), so
    /// callers can report the precise reason without parsing the message.
    pub value_code: Option<&'static str>,
}

/// Why a per-tenant retention override was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// The policy's retention is a promise to data subjects; a tenant may keep data for less
    /// time, never for more.
    #[error("retention may only be shortened: {requested} is longer than the policy's {policy}")]
    Lengthened {
        /// The override asked for.
        requested: Period,
        /// The policy's retention.
        policy: Period,
    },
}
