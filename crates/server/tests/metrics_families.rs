//! `/metrics` is valid Prometheus text, carries every family docs/operations.md documents,
//! documents every family it carries, and the Grafana dashboard (docs/grafana/ward.json)
//! asks only for families that exist. (Its own test binary: the recorder is process-wide, and
//! another binary's test counts series.)

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::TestServer;

/// Families only `ward serve`'s backup schedule sets (crates/cli, whose tests run it): a test
/// server has no schedule.
const SET_BY_THE_BACKUP_SCHEDULE: &[&str] = &[
    "ward_backup_last_outcome",
    "ward_backup_last_success_timestamp_seconds",
    "ward_backup_location_bytes",
    "ward_backup_location_up",
];

/// A token no key has.
const BAD_KEY: &str = "ward_op_NotAKeyAtAllNotAKeyAtAllNotAKeyAtAll0";

/// One parsed family: its declared type, and its samples (name with suffix, labels, value).
#[derive(Debug, Default)]
struct Family {
    kind: Option<String>,
    help: Option<String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// `{a="x",b="y\"z"}` → labels; the escapes of the text format (`\\`, `\"`, `\n`) only.
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or(format!("label in {s:?}"))?;
        if !is_name(name) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {s:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated label value in {s:?}")),
            }
        };
        if out.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice in {s:?}"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(out)
}

/// The family a sample belongs to: histogram and summary samples carry a suffix.
fn family_of<'a>(name: &'a str, families: &BTreeMap<String, Family>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && families
                .get(base)
                .and_then(|f| f.kind.as_deref())
                .is_some_and(|k| k == "histogram" || k == "summary")
        {
            return base;
        }
    }
    name
}

/// Parses the text exposition format (version 0.0.4) strictly: every line a comment, a
/// `# HELP`/`# TYPE` line or a sample; a family's `TYPE` before its samples, at most once.
fn parse(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_name(name) {
                        return Err(format!("bad family name {name:?}"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(format!("bad type {kind:?} of {name}"));
                    }
                    let f = families.entry(name.to_owned()).or_default();
                    if f.kind.is_some() || !f.samples.is_empty() {
                        return Err(format!("TYPE of {name} twice or after its samples"));
                    }
                    f.kind = Some(kind.to_owned());
                }
                (Some("HELP"), Some(name), help) => {
                    let f = families.entry(name.to_owned()).or_default();
                    if f.help.replace(help.unwrap_or("").to_owned()).is_some() {
                        return Err(format!("HELP of {name} twice"));
                    }
                }
                _ => {} // A plain comment.
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or(format!("no value: {line:?}"))?;
        let value = parse_value(value)?;
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (
                name,
                parse_labels(
                    labels
                        .strip_suffix('}')
                        .ok_or(format!("unclosed labels: {line:?}"))?,
                )?,
            ),
            None => (series, BTreeMap::new()),
        };
        if !is_name(name) {
            return Err(format!("bad sample name {name:?}"));
        }
        let family = family_of(name, &families).to_owned();
        families
            .entry(family)
            .or_default()
            .samples
            .push((name.to_owned(), labels, value));
    }
    for (name, f) in &families {
        if f.kind.is_none() {
            return Err(format!("{name} has samples but no TYPE"));
        }
        if f.kind.as_deref() == Some("histogram") {
            check_histogram(name, f)?;
        }
    }
    Ok(families)
}

/// One histogram series: its buckets (`le`, cumulative count) and its `_count`.
type Buckets = (Vec<(f64, f64)>, Option<f64>);

/// Per series: buckets cumulative in `le` order, ending at `+Inf`, which equals `_count`.
fn check_histogram(name: &str, f: &Family) -> Result<(), String> {
    let mut series: BTreeMap<String, Buckets> = BTreeMap::new();
    for (sample, labels, value) in &f.samples {
        let mut key = labels.clone();
        let le = key.remove("le");
        let entry = series.entry(format!("{key:?}")).or_default();
        if sample.ends_with("_bucket") {
            let le = parse_value(&le.ok_or(format!("{name} bucket without le"))?)?;
            entry.0.push((le, *value));
        } else if sample.ends_with("_count") {
            entry.1 = Some(*value);
        }
    }
    for (labels, (buckets, count)) in series {
        let ordered = buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        let last = buckets.last().copied();
        if !ordered || last.map(|b| b.0) != Some(f64::INFINITY) || last.map(|b| b.1) != count {
            return Err(format!(
                "{name}{labels}: buckets {buckets:?}, count {count:?}"
            ));
        }
    }
    Ok(())
}

/// The families docs/operations.md's metrics table lists.
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operations.md"
    ))
    .expect("docs/operations.md");
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .filter(|n| n.starts_with("ward_"))
        .collect()
}

/// Every `ward_…` family the Grafana dashboard's queries name (suffixes stripped).
fn dashboard_families() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana/ward.json"
    ))
    .expect("docs/grafana/ward.json");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "the dashboard has queries: {exprs:?}");
    let mut out = BTreeSet::new();
    for e in exprs {
        for (i, _) in e.match_indices("ward_") {
            let name: String = e[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            out.insert(base.to_owned());
        }
    }
    out
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "query", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Drives every code path that sets a family: data, a denial, failed and throttled
/// authentication, a checkpoint, a retention sweep, key rotations and a record rotation job.
async fn exercise(srv: &TestServer) {
    let (t, s) = srv.tenant_and_subject("Metrics").await;
    srv.contact(&t, &s, "Ada", "ada@example.com").await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let (status, body) = srv
        .post(
            &format!("/v1/tenants/{}/keys", t.id),
            &member,
            json!({"name": "second", "role": "member", "purposes": ["essential.service"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for (path, expected) in [
        ("/v1/audit/checkpoint", StatusCode::OK),
        ("/v1/retention/run", StatusCode::OK),
    ] {
        let (status, body) = srv.post(path, &srv.operator, json!({})).await;
        assert_eq!(status, expected, "{path}: {body}");
    }
    let (status, body) = srv
        .post("/v1/keys/rotate", &srv.operator, json!({"tenant": t.id}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    srv.rotate_records(&t.id).await;
    srv.wait_for_record_job(&t.id).await;
    // A webhook delivery attempt (to a closed port: a retry).
    let (status, hook) = srv
        .post(
            "/v1/webhooks",
            &srv.operator,
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    ward_testkit::log_scan::secret(hook["secret"].as_str().unwrap_or_default());
    let id = hook["id"].as_str().unwrap_or_default();
    let (status, _) = srv
        .post(&format!("/v1/webhooks/{id}/test"), &srv.operator, json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut attempted = false;
    for _ in 0..200 {
        let (_, log) = srv
            .get(&format!("/v1/webhooks/{id}/deliveries"), &srv.operator)
            .await;
        if log[0]["attempts"] == 1 {
            attempted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(attempted, "the webhook delivery was attempted");
    // Last: once this address is throttled, its uncached keys are refused too.
    let mut throttled = false;
    for _ in 0..100 {
        let (status, _) = srv.get(&format!("/v1/tenants/{}", t.id), BAD_KEY).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(throttled, "bad keys are throttled");
}

#[tokio::test]
async fn metrics_are_valid_documented_and_what_the_dashboard_reads() {
    let srv = TestServer::start().await;
    exercise(&srv).await;
    let resp = srv
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    let text = resp.text().await.expect("text");
    let families = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let served: BTreeSet<String> = families
        .keys()
        .filter(|n| n.starts_with("ward_"))
        .cloned()
        .collect();
    let documented = documented();
    assert!(documented.len() >= 20, "{documented:?}");

    let missing: Vec<_> = documented
        .iter()
        .filter(|n| !served.contains(*n) && !SET_BY_THE_BACKUP_SCHEDULE.contains(&n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "documented but not served: {missing:?}\n{text}"
    );
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    for name in &served {
        assert!(
            families[name]
                .help
                .as_deref()
                .is_some_and(|h| !h.is_empty()),
            "{name} has no HELP"
        );
    }
    let unknown: Vec<_> = dashboard_families()
        .difference(&documented)
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard asks for unknown families: {unknown:?}"
    );

    // What the exercise did shows in the values, with bounded labels.
    let value = |family: &str, want: &[(&str, &str)]| -> f64 {
        families[family]
            .samples
            .iter()
            .filter(|(_, labels, _)| {
                want.iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    };
    assert_eq!(value("ward_tenant_subjects", &[]), 1.0);
    assert!(value("ward_tenant_records", &[]) >= 1.0);
    assert!(value("ward_access_denials_total", &[]) >= 1.0);
    assert!(value("ward_auth_failures_total", &[]) >= 1.0);
    assert!(value("ward_auth_throttled_total", &[]) >= 1.0);
    assert!(value("ward_audit_tree_size", &[]) >= 5.0);
    assert_eq!(value("ward_retention_last_outcome", &[]), 1.0);
    assert_eq!(
        value("ward_key_rotations_total", &[("scope", "tenant")]),
        1.0
    );
    assert!(
        value(
            "ward_http_requests_total",
            &[("route", "/v1/tenants/{tenant}"), ("status", "401")]
        ) >= 1.0
    );
    for (_, labels, _) in &families["ward_auth_failures_total"].samples {
        assert!(
            !labels["reason"].contains(BAD_KEY),
            "no token in a label: {labels:?}"
        );
    }
}

#[test]
fn the_parser_refuses_what_prometheus_refuses() {
    for bad in [
        "ward_x 1",                                   // no TYPE
        "# TYPE ward_x counter\nward_x{a=\"1} 1",     // unterminated label
        "# TYPE ward_x counter\nward_x{__a=\"1\"} 1", // reserved label name
        "# TYPE ward_x counter\nward_x one",          // not a number
        "# TYPE ward_x counter\n# TYPE ward_x counter\nward_x 1",
        "# TYPE ward_h histogram\nward_h_bucket{le=\"1\"} 2\nward_h_bucket{le=\"+Inf\"} 1\nward_h_count 1",
    ] {
        assert!(parse(bad).is_err(), "accepted: {bad}");
    }
    let good = "# HELP ward_h Time.\n# TYPE ward_h histogram\nward_h_bucket{r=\"a\\\"b\",le=\"1\"} 1\n\
                ward_h_bucket{r=\"a\\\"b\",le=\"+Inf\"} 2\nward_h_sum{r=\"a\\\"b\"} 3.5\nward_h_count{r=\"a\\\"b\"} 2\n";
    let families = parse(good).expect("valid");
    assert_eq!(families["ward_h"].samples.len(), 4);
    assert_eq!(families["ward_h"].samples[0].1["r"], "a\"b");
}
