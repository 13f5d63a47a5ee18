//! Payment-card detection.
//!
//! Ward promises never to store card numbers (the policies it models say so in bold), and the
//! only way to keep that promise for free-text and JSON fields is to look at every value.
//!
//! # What counts as a card number
//!
//! Digits are read in *groups*: maximal runs of ASCII digits, where two groups belong to the
//! same sequence when exactly one space or one dash separates them (`4111 1111 1111 1111`,
//! `4111-1111-1111-1111`). A candidate is any run of consecutive whole groups of a sequence
//! holding 13 to 19 digits in total. It is a card number when it passes the Luhn check and
//! neither
//! - starts with `0` (major industry identifier 0 is not issued to card schemes), nor
//! - is preceded by `+` (that is how phone numbers are written, never card numbers).
//!
//! Those two exclusions keep international phone numbers (`+4915112345678`,
//! `0049 151 1234 5678`), which are 13-15 digits and would pass Luhn one time in ten, out of
//! the refusals.
//!
//! Only whole groups are considered, never arbitrary windows inside a longer unbroken run of
//! digits: every 40-digit identifier contains some Luhn-valid 16-digit window, so windowing
//! would refuse ordinary IDs, while a card number glued to other digits is no longer
//! recognisable as one by a human either.

use serde_json::Value;

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;

/// Whether `s` contains something that looks like a payment card number anywhere in it (see
/// the module documentation for the exact rule).
pub fn contains_card_number(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let preceded_by_plus = i > 0 && bytes[i - 1] == b'+';
        let (groups, end) = read_sequence(bytes, i);
        if !preceded_by_plus && sequence_has_card(&groups) {
            return true;
        }
        // A `+` only shields the group it touches; later groups of the same sequence are still
        // checked on their own.
        if preceded_by_plus && sequence_has_card(&groups[1..]) {
            return true;
        }
        i = end;
    }
    false
}

/// Whether any string, object key or number anywhere in `v` contains a card number.
///
/// Numbers are checked in their JSON spelling, so an integer `4111111111111111` is caught the
/// same as the string.
pub fn json_contains_card_number(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(_) => false,
        Value::Number(n) => contains_card_number(&n.to_string()),
        Value::String(s) => contains_card_number(s),
        Value::Array(items) => items.iter().any(json_contains_card_number),
        Value::Object(map) => map
            .iter()
            .any(|(key, value)| contains_card_number(key) || json_contains_card_number(value)),
    }
}

/// Reads the digit groups of the sequence starting at `start`; returns them and the index
/// just past the sequence.
fn read_sequence(bytes: &[u8], start: usize) -> (Vec<&[u8]>, usize) {
    let mut groups = Vec::new();
    let mut i = start;
    loop {
        let group_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        groups.push(&bytes[group_start..i]);
        let joined =
            i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-') && bytes[i + 1].is_ascii_digit();
        if !joined {
            return (groups, i);
        }
        i += 1;
    }
}

fn sequence_has_card(groups: &[&[u8]]) -> bool {
    (0..groups.len()).any(|first| {
        let mut digits: Vec<u8> = Vec::with_capacity(MAX_DIGITS);
        for group in &groups[first..] {
            if digits.len() + group.len() > MAX_DIGITS {
                break;
            }
            digits.extend_from_slice(group);
            if digits.len() >= MIN_DIGITS && digits[0] != b'0' && luhn(&digits) {
                return true;
            }
        }
        false
    })
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_reference_values() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"79927398713"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn phone_numbers_are_not_cards() {
        // Both are Luhn-valid 13- and 15-digit runs; the first is an ordinary E.164 phone
        // number.
        assert!(luhn(b"4915112345678"));
        assert!(!contains_card_number("+4915112345678"));
        assert!(contains_card_number("4915112345678"));
        assert!(luhn(b"004915112345678"));
        assert!(!contains_card_number("0049 151 1234 5678"));
    }

    #[test]
    fn long_unbroken_runs_are_not_windowed() {
        assert!(!contains_card_number("x41111111111111110000000000y"));
    }

    #[test]
    fn a_card_after_another_number_is_found() {
        assert!(contains_card_number("order 12345 4111 1111 1111 1111"));
        assert!(contains_card_number("+33 4111 1111 1111 1111"));
    }
}
