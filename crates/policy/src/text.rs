//! Free text a person types into a request (names, references, reasons): the one parser every
//! such field goes through, so that none of them can carry a control character into the
//! database, a log line, a terminal or a rendered export.

use std::fmt;

/// Whether `c` is a control character: C0 (U+0000–U+001F), DEL (U+007F) or C1
/// (U+0080–U+009F). NUL truncates strings in C tools, ESC drives terminals, and C1 includes
/// the single-character CSI; none of them belongs in a name or a sentence.
#[must_use]
pub fn is_control_char(c: char) -> bool {
    c.is_control()
}

/// One line of free text: trimmed, 1 to a field's limit of characters, no control characters
/// (not even tab or newline). Holding a `FreeText` proves all of that.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FreeText(String);

/// Why text was refused; the value itself is never repeated (it may be personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// Nothing but whitespace.
    #[error("must not be empty")]
    Empty,
    /// More characters than the field allows.
    #[error("is limited to {max} characters")]
    TooLong {
        /// The field's limit.
        max: usize,
    },
    /// A control character, at this character position (0-based, in the text as sent).
    #[error(
        "contains a control character (U+{code:04X} at position {position}); control characters are refused"
    )]
    Control {
        /// The code point.
        code: u32,
        /// Its position in characters.
        position: usize,
    },
}

impl TextError {
    /// The stable API error code: `control_character` for controls, `default` otherwise (each
    /// field keeps its historical code for empty and too long values).
    #[must_use]
    pub fn code_or(&self, default: &'static str) -> &'static str {
        match self {
            Self::Control { .. } => "control_character",
            _ => default,
        }
    }
}

impl FreeText {
    /// Parses `raw`: it must not contain any control character (checked before trimming, so
    /// a trailing newline or NEL is refused rather than silently dropped), then surrounding
    /// whitespace is trimmed and 1 to `max_chars` characters must remain.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, TextError> {
        // Controls first: a refused value should name the worst problem.
        if let Some((position, c)) = raw.chars().enumerate().find(|(_, c)| is_control_char(*c)) {
            return Err(TextError::Control {
                code: u32::from(c),
                position,
            });
        }
        let s = raw.trim();
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if s.chars().count() > max_chars {
            return Err(TextError::TooLong { max: max_chars });
        }
        Ok(Self(s.to_owned()))
    }

    /// Like [`Self::parse`], for a paragraph a person writes (an incident note): line breaks
    /// are kept (`\r\n` becomes `\n`), every other control character, tab included, is
    /// refused, and at most two line breaks follow each other.
    pub fn parse_multiline(raw: &str, max_chars: usize) -> Result<Self, TextError> {
        let unified = raw.replace("\r\n", "\n");
        if let Some((position, c)) = unified
            .chars()
            .enumerate()
            .find(|(_, c)| *c != '\n' && is_control_char(*c))
        {
            return Err(TextError::Control {
                code: u32::from(c),
                position,
            });
        }
        let mut lines: Vec<&str> = unified.trim().lines().map(str::trim_end).collect();
        lines.dedup_by(|a, b| a.is_empty() && b.is_empty());
        let s = lines.join("\n");
        if s.is_empty() {
            return Err(TextError::Empty);
        }
        if s.chars().count() > max_chars {
            return Err(TextError::TooLong { max: max_chars });
        }
        Ok(Self(s))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for FreeText {
    /// Redacted: free text may be personal data and must not reach logs through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FreeText({} chars)", self.0.chars().count())
    }
}

impl AsRef<str> for FreeText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn control() -> impl Strategy<Value = char> {
        prop_oneof![
            (0u32..=0x1f).prop_map(|c| char::from_u32(c).unwrap()),
            Just('\u{7f}'),
            (0x80u32..=0x9f).prop_map(|c| char::from_u32(c).unwrap()),
        ]
    }

    proptest! {
        #[test]
        fn any_control_anywhere_is_refused(
            before in "[a-zA-Z \u{e9}\u{4e2d}]{0,20}",
            c in control(),
            after in "[a-zA-Z \u{e9}\u{4e2d}]{0,20}",
        ) {
            let s = format!("x{before}{c}{after}x");
            let e = FreeText::parse(&s, 1000).unwrap_err();
            prop_assert_eq!(e.code_or("other"), "control_character");
        }

        #[test]
        fn text_without_controls_is_kept_trimmed(s in "[a-zA-Z0-9 .,'\u{e9}\u{4e2d}\u{1f600}-]{1,40}") {
            match FreeText::parse(&s, 40) {
                Ok(t) => prop_assert_eq!(t.as_str(), s.trim()),
                Err(e) => {
                    prop_assert_eq!(e, TextError::Empty);
                    prop_assert!(s.trim().is_empty());
                }
            }
        }
    }

    #[test]
    fn the_edges() {
        assert!(
            FreeText::parse("\u{a0}Ann\u{a0}", 10).is_ok(),
            "NBSP is not a control"
        );
        assert!(FreeText::parse("Ann\u{a0}", 10).is_ok());
        assert_eq!(
            FreeText::parse("\u{9f}", 10).unwrap_err().code_or("x"),
            "control_character"
        );
        assert_eq!(FreeText::parse("  ", 10).unwrap_err(), TextError::Empty);
        assert_eq!(
            FreeText::parse("Ann\n", 10).unwrap_err().code_or("x"),
            "control_character",
            "trailing whitespace controls are refused, not trimmed"
        );
        assert_eq!(
            FreeText::parse("Ann\u{85}", 10).unwrap_err().code_or("x"),
            "control_character"
        );
        assert_eq!(
            FreeText::parse("abc", 2).unwrap_err(),
            TextError::TooLong { max: 2 }
        );
        assert_eq!(
            format!("{:?}", FreeText::parse("secret", 10).unwrap()),
            "FreeText(6 chars)"
        );
    }

    #[test]
    fn a_paragraph_keeps_its_line_breaks_and_nothing_else() {
        let t = FreeText::parse_multiline("  Laptop stolen.\r\n\n\n\nDisk encrypted.  \n", 100)
            .unwrap();
        assert_eq!(t.as_str(), "Laptop stolen.\n\nDisk encrypted.");
        for bad in ["a\tb", "a\rb", "a\u{1b}[2Jb", "a\u{85}b", "a\0b"] {
            assert!(
                matches!(
                    FreeText::parse_multiline(bad, 100),
                    Err(TextError::Control { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            FreeText::parse_multiline("\n \n", 100),
            Err(TextError::Empty)
        );
        assert_eq!(
            FreeText::parse_multiline("abc\ndef", 6),
            Err(TextError::TooLong { max: 6 })
        );
        // One-line text stays refused a line break.
        assert!(FreeText::parse("a\nb", 100).is_err());
    }
}
