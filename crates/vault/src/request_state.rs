//! What a data-subject request asks for and where it stands, as types.
//!
//! The store keeps both as text (they are columns of the request row); the vault parses them
//! once, so that every decision on them is an exhaustive `match` and a new kind cannot fall
//! silently into another kind's handling.

use std::fmt;

/// What a data-subject request asks for (GDPR Arts. 15–18 and 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A copy of everything held (Art. 15).
    Access,
    /// The same, in a portable form (Art. 20).
    Portability,
    /// Erasure of the subject (Art. 17).
    Erasure,
    /// Correction of one record (Art. 16).
    Rectification,
    /// Processing restricted to some purposes (Art. 18).
    Restriction,
}

impl RequestKind {
    /// Every kind, in the order error messages list them.
    pub(crate) const ALL: [Self; 5] = [
        Self::Access,
        Self::Portability,
        Self::Erasure,
        Self::Rectification,
        Self::Restriction,
    ];

    /// The name used in the API and the store.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Portability => "portability",
            Self::Erasure => "erasure",
            Self::Rectification => "rectification",
            Self::Restriction => "restriction",
        }
    }

    /// The kind named `s`, if any.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// `access, portability, …` for error messages.
    pub(crate) fn listed() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// Where a data-subject request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestStatus {
    /// Waiting to be completed or rejected, due one month after it was made.
    Open,
    /// Performed.
    Completed,
    /// Refused, with a reason (identity not verified, …).
    Rejected,
}

impl RequestStatus {
    /// Every status.
    pub(crate) const ALL: [Self; 3] = [Self::Open, Self::Completed, Self::Rejected];

    /// The name used in the API and the store.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
        }
    }

    /// The status named `s`, if any.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for k in RequestKind::ALL {
            assert_eq!(RequestKind::parse(k.as_str()), Some(k));
        }
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        }
        for bad in ["", "Access", "erase", "rectify ", "closed"] {
            assert_eq!(RequestKind::parse(bad), None);
            assert_eq!(RequestStatus::parse(bad), None);
        }
        assert_eq!(
            RequestKind::listed(),
            "access, portability, erasure, rectification, restriction"
        );
    }
}
