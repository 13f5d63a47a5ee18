//! The `Ward-Signature` header of webhook deliveries.
//!
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the webhook's secret: the
//! time is inside the MAC, so a receiver that checks it against its clock (the replay window)
//! rejects a captured delivery replayed later, and the body cannot be swapped.

use aws_lc_rs::hmac;

/// How far a signature's time may be from the receiver's clock, in seconds, in either
/// direction, before the delivery is refused as a replay.
pub const WEBHOOK_REPLAY_WINDOW_SECS: i64 = 300;

/// The key-derivation label of the platform key that seals operator webhooks' secrets (a
/// tenant webhook's secret is sealed under the tenant's keys instead).
pub const WEBHOOK_SECRET_KEY_LABEL: &str = "ward/webhook-secret/v1";

/// The `Ward-Signature` header value for `body` sent at unix time `t`.
#[must_use]
pub fn webhook_signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), &signed(t, body));
    format!("t={t},v1={}", hex::encode(tag.as_ref()))
}

/// Whether `header` is a valid signature of `body` at a time within
/// [`WEBHOOK_REPLAY_WINDOW_SECS`] of `now` (what a receiver checks; Ward uses it in tests and
/// documents the same steps). The MAC comparison is constant-time.
#[must_use]
pub fn verify_webhook_signature(secret: &[u8], header: &str, body: &[u8], now: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(mac)) = (t, v1) else {
        return false;
    };
    if now.abs_diff(t) > WEBHOOK_REPLAY_WINDOW_SECS.unsigned_abs() {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, &signed(t, body), &mac).is_ok()
}

fn signed(t: i64, body: &[u8]) -> Vec<u8> {
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret_0123456789";
    const BODY: &[u8] = br#"{"event":"webhook.test"}"#;

    #[test]
    fn matches_a_plain_hmac_sha256_of_time_dot_body() {
        // Computed independently: Python hmac.new(SECRET, b"1767225600." + BODY, sha256).
        assert_eq!(
            webhook_signature(SECRET, 1_767_225_600, BODY),
            "t=1767225600,v1=18c6a05037cb2ee0c6f71095b0f7f1cbed47680df1ba4d464d91491c43554feb"
        );
    }

    #[test]
    fn verifies_within_the_window_only() {
        let header = webhook_signature(SECRET, 1_000, BODY);
        assert!(verify_webhook_signature(SECRET, &header, BODY, 1_000));
        assert!(verify_webhook_signature(SECRET, &header, BODY, 1_300));
        assert!(!verify_webhook_signature(SECRET, &header, BODY, 1_301));
        assert!(!verify_webhook_signature(SECRET, &header, BODY, 699));
    }

    #[test]
    fn refuses_another_body_secret_or_a_mangled_header() {
        let header = webhook_signature(SECRET, 1_000, BODY);
        assert!(!verify_webhook_signature(SECRET, &header, b"{}", 1_000));
        assert!(!verify_webhook_signature(
            b"another secret!!",
            &header,
            BODY,
            1_000
        ));
        let moved = header.replace("t=1000", "t=1001");
        assert!(!verify_webhook_signature(SECRET, &moved, BODY, 1_000));
        assert!(!verify_webhook_signature(SECRET, "t=1000", BODY, 1_000));
        assert!(!verify_webhook_signature(
            SECRET,
            "v1=zz,t=1000",
            BODY,
            1_000
        ));
    }
}
