//! The TLS certificate's validity period, read from its DER encoding.
//!
//! Only the path to `validity` in an X.509 certificate (RFC 5280 §4.1) is walked:
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//! serialNumber INTEGER, signature SEQUENCE, issuer SEQUENCE, validity SEQUENCE {
//! notBefore Time, notAfter Time }, … } … }`. Nothing is verified here: the TLS stack checks
//! the certificate when it is loaded; this only reads two dates from it.

use std::path::Path;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::stored::rfc3339;
use crate::{Context, Finding};

/// Warn when the certificate expires sooner than this.
const RENEW_WITHIN: time::Duration = time::Duration::days(14);

/// A certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before.
    pub not_before: OffsetDateTime,
    /// Not valid after.
    pub not_after: OffsetDateTime,
}

/// The validity period of the first certificate of a PEM file.
///
/// # Errors
/// The file cannot be read, holds no certificate, or the certificate is malformed.
pub fn validity_of_pem(path: &Path) -> Result<Validity, String> {
    let first = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?
        .next()
        .ok_or_else(|| format!("{} holds no certificate", path.display()))?
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    validity(&first).ok_or_else(|| format!("{} is not an X.509 certificate", path.display()))
}

/// The validity period of a DER certificate (`None` when it does not parse).
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (mut tbs, _) = expect(cert, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs)?.2;
    }
    let (_serial, rest) = expect(tbs, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (validity, _) = expect(rest, SEQUENCE)?;
    let (tag, not_before, rest) = element(validity)?;
    let not_before = time_value(tag, not_before)?;
    let (tag, not_after, _) = element(rest)?;
    Some(Validity {
        not_before,
        not_after: time_value(tag, not_after)?,
    })
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element: its tag, its contents and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, contents, rest) = element(input)?;
    (t == tag).then_some((contents, rest))
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049) or `GeneralizedTime` (`YYYYMMDDHHMMSSZ`),
/// the only forms RFC 5280 allows.
fn time_value(tag: u8, v: &[u8]) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(v).ok()?;
    let digits = text.strip_suffix('Z')?;
    let (year, rest) = match tag {
        UTC_TIME if digits.len() == 12 => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        GENERALIZED_TIME if digits.len() == 14 => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let n = |i: usize| rest.get(i..i + 2)?.parse::<u8>().ok();
    let date = Date::from_calendar_date(year, Month::try_from(n(0)?).ok()?, n(2)?).ok()?;
    let time = Time::from_hms(n(4)?, n(6)?, n(8)?).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// The configured certificate is valid now and for two more weeks.
pub(crate) fn check(ctx: &Context) -> Finding {
    const NAME: &str = "tls_certificate";
    let Some(path) = &ctx.setup.tls_cert else {
        return Finding::ok(
            NAME,
            "no TLS certificate is configured: Ward serves plain HTTP, so HTTPS must end in front \
             of it (a reverse proxy on the same host)",
        );
    };
    let v = match validity_of_pem(path) {
        Ok(v) => v,
        Err(e) => {
            return Finding::fail(
                NAME,
                e,
                "point tls_cert (--tls-cert) at the PEM certificate chain, leaf first",
            );
        }
    };
    let shown = path.display();
    let renew = format!("renew {shown} and restart `ward serve`");
    if ctx.now > v.not_after {
        Finding::fail(
            NAME,
            format!(
                "{shown} expired at {}: clients refuse it",
                rfc3339(v.not_after)
            ),
            renew,
        )
    } else if ctx.now < v.not_before {
        Finding::fail(
            NAME,
            format!("{shown} is not valid before {}", rfc3339(v.not_before)),
            "check the system clock, or the certificate's dates",
        )
    } else if v.not_after - ctx.now < RENEW_WITHIN {
        Finding::warn(
            NAME,
            format!(
                "{shown} expires at {}, in {} days",
                rfc3339(v.not_after),
                (v.not_after - ctx.now).whole_days()
            ),
            renew,
        )
    } else {
        Finding::ok(
            NAME,
            format!(
                "{shown} is valid until {} ({} days)",
                rfc3339(v.not_after),
                (v.not_after - ctx.now).whole_days()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../server/tests/fixtures")
            .join(name)
    }

    #[test]
    fn reads_the_validity_of_a_real_certificate() {
        let v = validity_of_pem(&fixture("localhost.cert.pem")).unwrap();
        assert!(v.not_before < v.not_after, "{v:?}");
        assert!(v.not_before.year() >= 2020, "{v:?}");
    }

    #[test]
    fn both_time_forms_parse_and_garbage_does_not() {
        let utc = time_value(UTC_TIME, b"491231235959Z").unwrap();
        assert_eq!((utc.year(), utc.month() as u8, utc.day()), (2049, 12, 31));
        assert_eq!(time_value(UTC_TIME, b"500101000000Z").unwrap().year(), 1950);
        let generalized = time_value(GENERALIZED_TIME, b"20500101120000Z").unwrap();
        assert_eq!((generalized.year(), generalized.hour()), (2050, 12));
        assert_eq!(time_value(UTC_TIME, b"20500101120000Z"), None);
        assert_eq!(time_value(UTC_TIME, b"491331235959Z"), None);
        assert_eq!(validity(b"\x30\x03\x02\x01\x00"), None);
        assert_eq!(validity(b""), None);
        assert!(validity_of_pem(&fixture("localhost.key.pem")).is_err());
    }
}
