//! Payment-card numbers are refused wherever they appear; Luhn near-misses are not.

use serde_json::json;
use ward_policy::{contains_card_number, json_contains_card_number};

#[test]
fn card_numbers_in_common_formats() {
    for s in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "my card is 4111 1111 1111 1111, expires 12/27",
        "card:4111111111111111.",
        "378282246310005",     // Amex, 15 digits
        "3782 822463 10005",   // Amex grouping
        "6011111111111117",    // Discover
        "5555555555554444",    // Mastercard
        "4222222222222",       // 13-digit Visa
        "6250941006528599",    // UnionPay
        "4111-1111 1111-1111", // mixed separators
    ] {
        assert!(contains_card_number(s), "{s}");
    }
}

#[test]
fn near_misses_and_ordinary_numbers_pass() {
    for s in [
        "4111111111111112", // fails Luhn
        "4111 1111 1111 1112",
        "411111111111",           // 12 digits
        "41111111111111111111",   // 20 digits, no separators
        "4111  1111  1111  1111", // double spaces break the number up
        "4111.1111.1111.1111",    // dots are not card separators
        "+4915112345678",         // a Luhn-valid phone number
        "invoice 2024-000123",
        "",
    ] {
        assert!(!contains_card_number(s), "{s}");
    }
}

#[test]
fn json_values_at_any_depth() {
    assert!(json_contains_card_number(&json!(4111111111111111_u64)));
    assert!(json_contains_card_number(
        &json!({"a": [{"b": "x 4111-1111-1111-1111"}]})
    ));
    assert!(json_contains_card_number(
        &json!({"4111111111111111": true})
    ));
    assert!(json_contains_card_number(&json!([
        1,
        2,
        ["5555 5555 5555 4444"]
    ])));
    assert!(!json_contains_card_number(&json!(4111111111111112_u64)));
    assert!(!json_contains_card_number(
        &json!({"a": [1, 2, 3], "b": null, "c": 12.5})
    ));
}
