//! Properties: card detection is complete for Luhn-valid numbers, and normalization is
//! idempotent for every field type.

use proptest::prelude::*;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use ward_policy::{FieldType, contains_card_number};

fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 0 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    u8::try_from((10 - sum % 10) % 10).unwrap()
}

/// A Luhn-valid number of 13 to 19 digits. The first digit is 1-9: no card scheme is issued
/// numbers starting with 0, and Ward deliberately ignores such runs (see `card.rs`).
fn card_digits() -> impl Strategy<Value = Vec<u8>> {
    (1u8..=9, prop::collection::vec(0u8..=9, 11..=17)).prop_map(|(first, rest)| {
        let mut digits = vec![first];
        digits.extend(rest);
        let check = luhn_check_digit(&digits);
        digits.push(check);
        digits
    })
}

fn spell(digits: &[u8], separators: &[u8]) -> String {
    let mut s = String::new();
    for (i, d) in digits.iter().enumerate() {
        if i > 0 {
            match separators[i % separators.len()] {
                0 => s.push(' '),
                1 => s.push('-'),
                _ => {}
            }
        }
        s.push(char::from(b'0' + d));
    }
    s
}

proptest! {
    #[test]
    fn luhn_valid_numbers_with_single_separators_are_detected(
        digits in card_digits(),
        separators in prop::collection::vec(0u8..=4, 1..20),
        prefix in "[a-zA-Z:(]{0,8}[ ]?",
        suffix in "[ ]?[a-zA-Z.,)]{0,8}",
    ) {
        let number = spell(&digits, &separators);
        let text = format!("{prefix}{number}{suffix}");
        prop_assert!(contains_card_number(&text), "{}", text);
    }

    #[test]
    fn unseparated_runs_are_cards_exactly_when_luhn_passes(
        digits in card_digits(),
        delta in 0u8..=9,
    ) {
        let mut digits = digits;
        let last = digits.len() - 1;
        digits[last] = (digits[last] + delta) % 10;
        let number = spell(&digits, &[2]);
        prop_assert_eq!(contains_card_number(&number), delta == 0, "{}", number);
    }
}

fn datetime_value() -> impl Strategy<Value = Value> {
    (
        1_000_000i64..253_000_000_000,
        0u32..1_000_000_000,
        -(23 * 60 + 59)..=(23 * 60 + 59i32),
    )
        .prop_map(|(secs, nanos, offset_minutes)| {
            let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            let t = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .replace_nanosecond(nanos)
                .unwrap()
                .to_offset(offset);
            json!(t.format(&Rfc3339).unwrap())
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid (not necessarily canonical) value of each type.
fn valid_value() -> impl Strategy<Value = (FieldType, Value)> {
    prop_oneof![
        prop::collection::vec(
            any::<char>().prop_filter("no control characters", |c| !c.is_control() || *c == '\n' || *c == '\t'),
            0..40
        )
        .prop_map(|chars| (FieldType::String, json!(chars.into_iter().collect::<String>()))),
        "[ ]?[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-zA-Z0-9_-]{1,8}){0,2}@[a-zA-Z0-9]{1,10}(-[a-zA-Z0-9]{1,5})?\\.[a-zA-Z]{2,6}[ ]?"
            .prop_map(|s| (FieldType::Email, json!(s))),
        "(\\+|00)[1-9][0-9]{2}[ ]?[0-9]{2,4}([ .-]?[0-9]{2,4}){1,2}"
            .prop_map(|s| (FieldType::Phone, json!(s))),
        (1i32..=9999, 1u16..=365).prop_map(|(y, d)| {
            let date = time::Date::from_ordinal_date(y, d).unwrap();
            (FieldType::Date, json!(format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())))
        }),
        datetime_value().prop_map(|v| (FieldType::Datetime, v)),
        any::<std::net::IpAddr>().prop_map(|ip| (FieldType::Ip, json!(ip.to_string()))),
        prop::sample::select(vec!["fr", "DE", "us", "Gb", "JP", "br", "za", "NZ"])
            .prop_map(|c| (FieldType::Country, json!(c))),
        "[a-zA-Z]{2,3}([-_][a-zA-Z]{4})?([-_]([a-zA-Z]{2}|[0-9]{3}))?"
            .prop_map(|s| (FieldType::Language, json!(s))),
        (-90.0f64..=90.0, -180.0f64..=180.0)
            .prop_map(|(lat, lon)| (FieldType::Geo, json!({"lat": lat, "lon": lon}))),
        any::<i64>().prop_map(|n| (FieldType::Integer, json!(n))),
        prop_oneof![
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| json!(x)),
            "[+-]?[0-9]{1,20}(\\.[0-9]{1,10})?".prop_map(|s| json!(s)),
        ]
        .prop_map(|v| (FieldType::Decimal, v)),
        any::<bool>().prop_map(|b| (FieldType::Bool, json!(b))),
        json_value().prop_map(|v| (FieldType::Json, v)),
    ]
}

proptest! {
    #[test]
    fn valid_values_validate_and_normalization_is_idempotent((ty, value) in valid_value()) {
        let once = ty.validate(&value);
        prop_assert!(once.is_ok(), "{} refused {}: {:?}", ty, value, once);
        let once = once.unwrap();
        let twice = ty.validate(&once);
        prop_assert_eq!(twice.as_ref(), Ok(&once), "{} {}", ty, value);
        // The blind-index form is a function of the canonical value.
        prop_assert_eq!(
            ward_policy::index_form(ty, &once),
            ward_policy::index_form(ty, &twice.unwrap())
        );
    }
}
