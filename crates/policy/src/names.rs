//! Validated identifiers for collections and fields.
//!
//! Names appear in API paths, storage keys and blind-index labels, so they are held to a
//! small portable alphabet once, here, and every other crate receives a type that cannot hold
//! anything else.

use crate::error::NameError;

/// Implements the string-newtype plumbing shared by every validated name in this crate:
/// `as_str`, `Display`, `AsRef<str>`, `Borrow<str>` (so maps keyed by the newtype can be
/// queried with a `&str`), `FromStr`, and serde as a plain string that is re-validated on
/// deserialization.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The validated name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // The derived `Ord`, `Eq` and `Hash` on the inner `String` agree with those of `str`,
        // which is what `Borrow` requires.
        impl ::std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(
                    deserializer,
                )?;
                Self::parse(&s).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

pub(crate) use string_newtype;

/// Name of a collection (`contact`, `browser_visit`): `^[a-z][a-z0-9_]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionName(String);

/// Name of a field inside a collection (`email`, `visited_at`): `^[a-z][a-z0-9_]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldName(String);

impl CollectionName {
    /// Validates a collection name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_identifier(s).map(|()| Self(s.to_owned()))
    }
}

impl FieldName {
    /// Validates a field name.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        check_identifier(s).map(|()| Self(s.to_owned()))
    }
}

string_newtype!(CollectionName);
string_newtype!(FieldName);

fn check_identifier(s: &str) -> Result<(), NameError> {
    let bytes = s.as_bytes();
    let valid = matches!(bytes.first(), Some(b'a'..=b'z'))
        && bytes.len() <= 64
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'));
    if valid {
        Ok(())
    } else {
        Err(NameError::InvalidIdentifier(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_rules() {
        for ok in ["a", "contact", "browser_visit", "x9_", &"a".repeat(64)] {
            assert!(CollectionName::parse(ok).is_ok(), "{ok}");
            assert!(FieldName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "_a",
            "Contact",
            "a-b",
            "a.b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(CollectionName::parse(bad).is_err(), "{bad}");
            assert!(FieldName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_revalidates() {
        let name: FieldName = serde_json::from_str("\"email\"").unwrap();
        assert_eq!(name.as_str(), "email");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"email\"");
        assert!(serde_json::from_str::<FieldName>("\"E-mail\"").is_err());
    }
}
