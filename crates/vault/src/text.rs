//! Free-text request fields: every one is parsed into a [`FreeText`] here, so a control
//! character is refused the same way (400 `control_character` naming the field) wherever a
//! person types text into Ward.

use ward_policy::FreeText;

use crate::{Result, VaultError};

/// Parses the free-text field `field`: no control character, 1 to `max_chars` characters once
/// trimmed. Empty or too long values keep the field's own error `code`.
pub(crate) fn parse(
    raw: &str,
    field: &'static str,
    code: &'static str,
    max_chars: usize,
) -> Result<FreeText> {
    FreeText::parse(raw, max_chars)
        .map_err(|e| VaultError::invalid(e.code_or(code), format!("{field} {e}"), Some(field)))
}

/// Like [`parse`], for a paragraph (an incident note): line breaks are kept, every other
/// control character is refused.
pub(crate) fn parse_multiline(
    raw: &str,
    field: &'static str,
    code: &'static str,
    max_chars: usize,
) -> Result<FreeText> {
    FreeText::parse_multiline(raw, max_chars)
        .map_err(|e| VaultError::invalid(e.code_or(code), format!("{field} {e}"), Some(field)))
}
