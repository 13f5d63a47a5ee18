//! Field validators: types and normalization, card-number detection, taxonomy names.

use serde_json::Value;
use ward_policy::{
    DataCategory, FieldType, Purpose, contains_card_number, index_form, json_contains_card_number,
};

/// The first byte picks a field type, the rest is the value: as JSON when it parses, else as
/// a string. Checks that a value accepted once stays accepted in its normalized form (blind
/// indexes hash that form, so a value that normalizes differently the second time would no
/// longer be found), and that card detection and the taxonomy parsers never panic.
pub fn field_value(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let ty = FieldType::ALL[usize::from(selector) % FieldType::ALL.len()];
    let text = String::from_utf8_lossy(rest);
    let value = serde_json::from_slice::<Value>(rest).unwrap_or(Value::String(text.to_string()));

    if let Ok(normalized) = ty.validate(&value) {
        let again = ty
            .validate(&normalized)
            .unwrap_or_else(|e| panic!("{ty:?}: normalized {normalized} is refused: {e}"));
        assert_eq!(again, normalized, "{ty:?}: normalization is not idempotent");
        if ty.is_searchable_kind() {
            let _ = index_form(ty, &normalized);
        }
    }
    let _ = contains_card_number(&text);
    let _ = json_contains_card_number(&value);
    if let Ok(category) = DataCategory::parse(&text) {
        let _ = category.special_category();
        assert!(category.is_within(&text), "a category is within itself");
    }
    if let Ok(purpose) = Purpose::parse(&text) {
        assert!(purpose.is_within(&text), "a purpose is within itself");
    }
}
