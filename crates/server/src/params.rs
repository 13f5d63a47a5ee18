//! Bounded integer query parameters: a value out of range is a 400 naming the parameter,
//! never a number that wraps when it is later cast between `u64`, `i64` and `usize`.

use crate::ApiError;

/// Parses an optional decimal parameter within `min..=max`. Anything else — a sign, a
/// fraction, spaces, a number past `max` however long — is refused with `code` and `field`,
/// so no caller ever sees a value it would have to cast with care.
pub(crate) fn bounded(
    value: Option<&str>,
    field: &'static str,
    code: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ApiError> {
    let Some(s) = value else { return Ok(None) };
    let refuse = || {
        ApiError::bad_request(
            code,
            format!("{field} must be an integer from {min} to {max}"),
        )
        .with_field(field)
    };
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refuse());
    }
    // All digits: the only failure left is a number past u64, which is past `max` too.
    let n: u64 = s.parse().map_err(|_| refuse())?;
    if n < min || n > max {
        return Err(refuse());
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::bounded;
    use proptest::prelude::*;

    proptest! {
        /// Whatever integer arrives, the answer is either the same integer within bounds or a
        /// refusal naming the field: never a wrapped value.
        #[test]
        fn any_integer_is_kept_exactly_or_refused(n in any::<i128>()) {
            let s = n.to_string();
            let r = bounded(Some(&s), "limit", "invalid_limit", 1, 1000);
            if (1..=1000).contains(&n) {
                prop_assert_eq!(r.ok().flatten().map(i128::from), Some(n));
            } else {
                let e = r.err().unwrap();
                prop_assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            }
            let max = i64::MAX as u64;
            let r = bounded(Some(&s), "cursor", "invalid_cursor", 0, max);
            if (0..=i128::from(max)).contains(&n) {
                prop_assert_eq!(r.ok().flatten().map(i128::from), Some(n));
            } else {
                prop_assert!(r.is_err());
            }
        }
    }
}
