//! Reading the policy TOML into a [`Policy`], reporting every problem with its location.
//!
//! The document is parsed into toml's spanned tree ([`DeTable`]) and walked by hand rather
//! than deserialized with serde: serde stops at the first error, while an operator fixing a
//! policy wants every problem at once, each pointing at the key or value to change. The walk
//! never stops early; a section that fails still has its siblings checked.
//!
//! This file holds the entry point and the loader's state and error report; the typed value
//! readers, the top-level sections and the collections live in their own submodules.

mod collections;
mod sections;
mod values;

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use crate::Policy;
use crate::error::{Diagnostic, PolicyError};

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
