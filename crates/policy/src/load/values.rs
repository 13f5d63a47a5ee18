//! The typed readers of the spanned tree: keys, tables, strings, numbers, periods, lists and
//! choices, each recording an error and answering `None` instead of stopping. Apart because
//! every section is read through them.

use toml::de::{DeTable, DeValue};

use crate::period::Period;

use super::{Loader, Span, Table, Val};

impl Loader<'_> {
    pub(super) fn check_keys(&mut self, table: &DeTable<'_>, path: &str, allowed: &[&str]) {
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
    pub(super) fn open<'a, 'i>(
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
    pub(super) fn section<'a, 'i>(
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

    pub(super) fn required<'a, 'i>(
        &mut self,
        table: &Table<'a, 'i>,
        key: &str,
    ) -> Option<&'a Val<'i>> {
        let value = table.get(key);
        if value.is_none() {
            self.error(table.at, format!("missing key `{key}` in {}", table.path));
        }
        value
    }

    pub(super) fn wrong_type(&mut self, value: &Val<'_>, key: &str, path: &str, expected: &str) {
        self.error(
            value.span().start,
            format!(
                "`{key}` in {path} must be {expected}, found {}",
                value.get_ref().type_str()
            ),
        );
    }

    pub(super) fn str_of<'a>(
        &mut self,
        value: &'a Val<'_>,
        key: &str,
        path: &str,
    ) -> Option<&'a str> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(value, key, path, "a string");
                None
            }
        }
    }

    /// A required, non-empty string.
    pub(super) fn text<'a>(&mut self, table: &Table<'a, '_>, key: &str) -> Option<&'a str> {
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
    pub(super) fn opt_str<'a>(
        &mut self,
        table: &Table<'a, '_>,
        key: &str,
    ) -> Option<Option<&'a str>> {
        match table.get(key) {
            None => Some(None),
            Some(value) => self.str_of(value, key, &table.path).map(Some),
        }
    }

    pub(super) fn opt_bool(&mut self, table: &Table<'_, '_>, key: &str) -> Option<bool> {
        match table.get(key).map(|v| (v, v.get_ref())) {
            None => Some(false),
            Some((_, DeValue::Boolean(b))) => Some(*b),
            Some((value, _)) => {
                self.wrong_type(value, key, &table.path, "true or false");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, value: &Val<'_>, key: &str, path: &str) -> Option<i64> {
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

    pub(super) fn period_of(&mut self, value: &Val<'_>, key: &str, path: &str) -> Option<Period> {
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
    pub(super) fn opt_period(
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
    pub(super) fn parsed_list<T, E: std::fmt::Display>(
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
    pub(super) fn choice<T: Copy>(
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
}
