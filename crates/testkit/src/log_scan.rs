//! Every test server's logs are captured and scanned for what must never be in them: the
//! tokens, passwords, one-time codes and personal values the tests sent or were given.
//!
//! Each suite that starts a [`crate::TestServer`] is scanned, so "the full API suite" is
//! exactly what runs: the first server of a test binary installs a process-wide JSON
//! subscriber (the format `ward serve --log-format json` writes) at `debug` for Ward's own
//! crates into a buffer, the request helpers register what they send and receive, and every
//! server's drop scans the whole buffer against every secret registered so far, failing the
//! test that dropped it when one is found. Scanning everything every time (rather than only
//! what is new) catches a value logged before the test had it: a token logged by the
//! server on its way out.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// Shorter strings (`"Ada"`, a role name) could match by chance.
const MIN_SECRET_LEN: usize = 6;

/// Above this the scanned prefix is dropped, keeping the newest [`KEEP`] bytes.
const MAX_BUFFER: usize = 32 << 20;
const KEEP: usize = 1 << 20;

/// Keys of request and response bodies whose string values are secrets or personal data.
const SECRET_KEYS: &[&str] = &[
    "token",
    "secret",
    "password",
    "new_password",
    "current_password",
    "totp",
    "recovery_code",
    "recovery_codes",
    "csrf_token",
    "email",
    "external_ref",
    "otpauth_uri",
    "justification",
    "note",
];

/// Keys whose every string leaf is personal data (a record's fields).
const VALUE_KEYS: &[&str] = &["fields", "values"];

struct Capture {
    logs: Mutex<Vec<u8>>,
    secrets: Mutex<Secrets>,
    /// How far the logs, and which secrets, the last scan covered.
    scanned: Mutex<(usize, usize)>,
}

/// Registered secrets in registration order (a scan searches the new ones everywhere, the
/// old ones only in new logs), without repeats.
#[derive(Default)]
struct Secrets {
    seen: BTreeSet<String>,
    order: Vec<String>,
}

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<&'static Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static Capture = Box::leak(Box::new(Capture {
            logs: Mutex::new(Vec::new()),
            secrets: Mutex::new(Secrets::default()),
            scanned: Mutex::new((0, 0)),
        }));
        let filter = tracing_subscriber::EnvFilter::new(
            "info,ward=debug,ward_server=debug,ward_vault=debug,ward_store=debug,sqlx=warn",
        );
        // Fails only when the binary installed its own subscriber; then nothing is captured
        // and the scans find nothing, which is no worse than before.
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter)
            .with_writer(|| Sink)
            .try_init();
        capture
    })
}

/// Appends to the capture buffer.
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&capture().logs).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts capturing (once per process).
pub(crate) fn start() {
    capture();
}

/// Registers a string that must never appear in a log.
pub fn secret(s: &str) {
    if s.len() >= MIN_SECRET_LEN {
        let mut secrets = lock(&capture().secrets);
        if secrets.seen.insert(s.to_owned()) {
            secrets.order.push(s.to_owned());
        }
    }
}

/// Registers the secrets and personal values of a request or response body.
pub fn body(v: &Value) {
    walk(v, false);
}

fn walk(v: &Value, sensitive: bool) {
    match v {
        Value::String(s) if sensitive => secret(s),
        Value::Array(items) => items.iter().for_each(|i| walk(i, sensitive)),
        Value::Object(map) => {
            for (k, v) in map {
                let k = k.as_str();
                walk(
                    v,
                    sensitive || SECRET_KEYS.contains(&k) || VALUE_KEYS.contains(&k),
                );
            }
        }
        _ => {}
    }
}

/// Registers the values of a path's query string that carry data (`value=` of a lookup).
pub fn query(path: &str) {
    let Some((_, q)) = path.split_once('?') else {
        return;
    };
    for pair in q.split('&') {
        if let Some(("value" | "email" | "ref", v)) = pair.split_once('=') {
            secret(v);
        }
    }
}

/// The registered secrets found in the captured logs, with the line that holds each.
///
/// Incremental, so that a suite's cost stays linear: secrets registered since the last scan
/// are searched in everything captured, the others only in what was captured since (from a
/// little before, for a secret that straddles the boundary). Searching uses the standard
/// library's substring search, optimized even in a debug build.
pub fn leaks() -> Vec<(String, String)> {
    let secrets = lock(&capture().secrets);
    let mut logs = lock(&capture().logs);
    let mut scanned = lock(&capture().scanned);
    let (done_bytes, done_secrets) = *scanned;
    let text = String::from_utf8_lossy(&logs);
    let overlap = done_bytes.saturating_sub(1024);
    let fresh_start = (overlap..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    let mut found = Vec::new();
    for (n, secret) in secrets.order.iter().enumerate() {
        let from = if n < done_secrets { fresh_start } else { 0 };
        let hit = text[from..]
            .match_indices(secret.as_str())
            .map(|(at, _)| from + at)
            .find(|at| !by_chance(&text, *at, secret));
        if let Some(at) = hit {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            found.push((secret.clone(), text[start..end].to_owned()));
        }
    }
    let len = text.len();
    drop(text);
    *scanned = (len, secrets.order.len());
    if logs.len() > MAX_BUFFER {
        let cut = logs.len() - KEEP;
        logs.drain(..cut);
        scanned.0 -= cut;
    }
    found
}

/// Whether the match of `secret` at `at` is part of a longer id, time or number.
///
/// A short value made only of digits, hex letters and separators (a generated `-62972`) also
/// occurs inside request ids, timestamps and durations; it leaked only when it stands as a
/// token of its own.
fn by_chance(text: &str, at: usize, secret: &str) -> bool {
    fn id_like(c: char) -> bool {
        c.is_ascii_hexdigit() || matches!(c, '-' | '.' | ':' | '+')
    }
    if !secret.chars().all(id_like) {
        return false;
    }
    let before = text[..at].chars().next_back().is_some_and(id_like);
    let after = text[at + secret.len()..]
        .chars()
        .next()
        .is_some_and(id_like);
    before || after
}

/// Panics (failing the running test) when a registered secret is in the logs.
pub(crate) fn assert_clean() {
    if std::thread::panicking() {
        return;
    }
    let leaks = leaks();
    assert!(
        leaks.is_empty(),
        "secrets or personal values in the server's logs: {:#?}",
        leaks.iter().take(5).collect::<Vec<_>>()
    );
}

/// The captured log lines that contain `needle` (for tests of what a request logs).
pub fn lines_with(needle: &str) -> Vec<String> {
    String::from_utf8_lossy(&lock(&capture().logs))
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// How many bytes of logs the capture holds, so a test can check it captures at all.
pub fn captured_bytes() -> usize {
    lock(&capture().logs).len()
}

/// Writes a line into the capture as the server would, for the scanner's own test.
pub fn log_line(line: &str) {
    let _ = writeln!(Sink, "{line}");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_secret_in_the_logs_is_found_wherever_and_whenever_it_was_logged() {
        start();
        // Logged before it was registered (a token on its way out), then registered.
        log_line(r#"{"level":"INFO","message":"issued wardk_EarlyTokenValue123"}"#);
        body(&json!({"token": "wardk_EarlyTokenValue123", "role": "member"}));
        // Registered through a record's fields, logged after a scan that found nothing new.
        body(&json!({"fields": {"email": "leaky@example.com", "n": {"deep": "DeepValue99"}}}));
        query("/v1/tenants/t/lookup?field=email&value=looked-up@example.com");
        let first = leaks();
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(first[0].0, "wardk_EarlyTokenValue123");
        assert!(first[0].1.contains("issued"), "the whole line: {first:?}");
        log_line(r#"{"message":"read","value":"DeepValue99"}"#);
        log_line(r#"{"message":"lookup looked-up@example.com"}"#);
        let later: Vec<String> = leaks().into_iter().map(|(s, _)| s).collect();
        for s in ["DeepValue99", "looked-up@example.com"] {
            assert!(later.iter().any(|l| l == s), "{s} in {later:?}");
        }
        // Short strings and plain keys are not secrets.
        log_line(r#"{"message":"member Ada"}"#);
        body(&json!({"fields": {"name": "Ada"}, "role": "member"}));
        let last: Vec<String> = leaks().into_iter().map(|(s, _)| s).collect();
        assert!(
            !last.iter().any(|s| s == "Ada" || s == "member"),
            "{last:?}"
        );
        // A short numeric value inside a request id or a duration is chance; standing alone
        // it is a leak.
        body(&json!({"fields": {"n": "-62972", "m": "574312"}}));
        log_line(r#"{"request_id":"01a24776-70fa-74c9-9b9f-62972dbb0c22","elapsed_ms":7.574312}"#);
        let numeric = |found: Vec<(String, String)>| -> Vec<String> {
            found
                .into_iter()
                .map(|(s, _)| s)
                .filter(|s| s == "-62972" || s == "574312")
                .collect()
        };
        assert_eq!(numeric(leaks()), Vec::<String>::new(), "ids and times");
        log_line(r#"{"message":"bad value","value":"-62972"}"#);
        assert_eq!(numeric(leaks()), ["-62972"]);
    }
}
