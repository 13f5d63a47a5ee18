//! Properties over generated values: any valid record round-trips exactly (read equals the
//! normalized write), and any invalid value is refused with 422 and writes nothing.
//!
//! Each property starts one server and runs its cases against it from a small runtime.

use proptest::prelude::*;
use proptest::test_runner::Config;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

const CASES: u32 = 32;

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A runtime, a server on it, and a tenant with a subject.
struct Fixture {
    srv: TestServer,
    t: TenantFixture,
    s: String,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let rt = property_runtime();
        let (srv, t, s) = rt.block_on(async {
            let srv = crate::start().await;
            let (t, s) = srv.tenant_and_subject("Props").await;
            (srv, t, s)
        });
        Self { srv, t, s, rt }
    }
}

// ---- generators ---------------------------------------------------------------------------

/// Free text: printable characters, never ASCII digits (so no value can look like a card).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[a-zA-Z \u{e9}\u{df}\u{4e2d}\u{1f600}.,'!?-]{{1,{max}}}"
    ))
    .expect("regex")
}

/// (as sent, as stored): surrounding spaces trimmed, domain lower-cased, local part kept.
fn email() -> impl Strategy<Value = (String, String)> {
    (
        "[a-zA-Z][a-zA-Z0-9_+-]{0,10}(\\.[a-zA-Z0-9]{1,6})?",
        "[a-zA-Z][a-zA-Z-]{0,8}[a-zA-Z]",
        "(com|ORG|Fr|co\\.UK|io)",
        " {0,2}",
        " {0,2}",
    )
        .prop_map(|(local, domain, tld, pre, post)| {
            let sent = format!("{pre}{local}@{domain}.{tld}{post}");
            let stored = format!("{local}@{}.{}", domain.to_lowercase(), tld.to_lowercase());
            (sent, stored)
        })
}

/// (as sent, as stored): at most 12 digits so no formatting can make it look like a card.
fn phone() -> impl Strategy<Value = (String, String)> {
    (
        "[1-9][0-9]{6,11}",
        proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-"), Just(".")], 12),
        any::<bool>(),
    )
        .prop_map(|(digits, seps, double_zero)| {
            let mut sent = String::from(if double_zero { "00" } else { "+" });
            for (i, d) in digits.chars().enumerate() {
                if i > 0 {
                    sent.push_str(seps[i % seps.len()]);
                }
                sent.push(d);
            }
            (sent, format!("+{digits}"))
        })
}

fn date() -> impl Strategy<Value = String> {
    (1900_i32..2100, 1_u8..=12, 1_u8..=28).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}"))
}

/// Loyalty points: any integer with at most 12 digits.
fn points() -> impl Strategy<Value = i64> {
    -999_999_999_999_i64..=999_999_999_999
}

fn country() -> impl Strategy<Value = (String, String)> {
    (
        prop::sample::select(vec!["FR", "DE", "GB", "US", "JP", "BR", "FI", "IE"]),
        any::<bool>(),
    )
        .prop_map(|(c, lower)| {
            (
                if lower {
                    c.to_lowercase()
                } else {
                    c.to_owned()
                },
                c.to_owned(),
            )
        })
}

/// Arbitrary JSON notes without numbers that could be card-like.
fn notes() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-999_999_i64..999_999).prop_map(Value::from),
        text(20).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid customer_record: (fields as sent, fields as stored).
fn customer_record() -> impl Strategy<Value = (Value, Value)> {
    (
        text(60),
        proptest::option::of(email()),
        proptest::option::of(phone()),
        proptest::option::of(date()),
        proptest::option::of(points()),
        proptest::option::of(notes()),
        proptest::option::of(text(40)),
        proptest::option::of(date()),
    )
        .prop_map(|(name, email, phone, birth, points, notes, city, end)| {
            let mut sent = Map::new();
            let mut stored = Map::new();
            let mut put = |k: &str, a: Value, b: Value| {
                sent.insert(k.to_owned(), a);
                stored.insert(k.to_owned(), b);
            };
            put("name", json!(name), json!(name));
            if let Some((a, b)) = email {
                put("email", json!(a), json!(b));
            }
            if let Some((a, b)) = phone {
                put("phone", json!(a), json!(b));
            }
            if let Some(d) = birth {
                put("birth_date", json!(d), json!(d));
            }
            if let Some(p) = points {
                put("loyalty_points", json!(p), json!(p));
            }
            let null_notes = matches!(notes, Some(Value::Null));
            if let Some(n) = notes.filter(|n| !n.is_null()) {
                put("notes", n.clone(), n);
            }
            if let Some(c) = city {
                put("city", json!(c), json!(c));
            }
            if let Some(d) = end {
                // Late enough that the record has not expired at the test clock's time.
                let d = format!("2027{}", &d[4..]);
                put("contract_end", json!(d), json!(d));
            }
            if null_notes {
                // null for an optional field on create: the field is simply absent.
                sent.insert("notes".to_owned(), Value::Null);
            }
            (Value::Object(sent), Value::Object(stored))
        })
}

/// A valid contact: (fields as sent, fields as stored).
fn contact_record() -> impl Strategy<Value = (Value, Value)> {
    (
        text(60),
        email(),
        proptest::option::of(text(40)),
        proptest::option::of(phone()),
        proptest::option::of(country()),
    )
        .prop_map(|(name, (email_in, email_out), company, phone, country)| {
            let mut sent = json!({ "name": name, "email": email_in });
            let mut stored = json!({ "name": name, "email": email_out });
            if let Some(c) = company {
                sent["company"] = json!(c);
                stored["company"] = json!(c);
            }
            if let Some((a, b)) = phone {
                sent["phone"] = json!(a);
                stored["phone"] = json!(b);
            }
            if let Some((a, b)) = country {
                sent["country"] = json!(a);
                stored["country"] = json!(b);
            }
            (sent, stored)
        })
}

/// An invalid customer_record field: (field, value, type code).
fn invalid_field() -> impl Strategy<Value = (String, Value, &'static str)> {
    prop_oneof![
        // E-mails without `@`, with an empty or dotless domain, or with empty atoms.
        "[a-z]{1,10}".prop_map(|s| ("email".to_owned(), json!(s), "invalid_email")),
        "[a-z]{1,8}@[a-z]{1,8}".prop_map(|s| ("email".to_owned(), json!(s), "invalid_email")),
        "[a-z]{1,8}\\.\\.[a-z]{1,4}@example\\.com".prop_map(|s| (
            "email".to_owned(),
            json!(s),
            "invalid_email"
        )),
        "@[a-z]{1,8}\\.com".prop_map(|s| ("email".to_owned(), json!(s), "invalid_email")),
        // Dates that do not exist or are not YYYY-MM-DD.
        (1900_i32..2100, 13_u8..=99, 1_u8..=28).prop_map(|(y, m, d)| (
            "birth_date".to_owned(),
            json!(format!("{y}-{m}-{d:02}")),
            "invalid_date"
        )),
        (1900_i32..2100, 1_u8..=12, 32_u8..=99).prop_map(|(y, m, d)| (
            "birth_date".to_owned(),
            json!(format!("{y}-{m:02}-{d}")),
            "invalid_date"
        )),
        (1901_i32..2100)
            .prop_filter("not a leap year", |y| y % 4 != 0)
            .prop_map(|y| (
                "contract_end".to_owned(),
                json!(format!("{y}-02-29")),
                "invalid_date"
            )),
        (1_u8..=28, 1_u8..=12, 1900_i32..2100).prop_map(|(d, m, y)| (
            "birth_date".to_owned(),
            json!(format!("{d:02}/{m:02}/{y}")),
            "invalid_date"
        )),
        // Integers: beyond 64 bits (20 digits, never card-like), fractions, strings, booleans.
        (10_000_000_000_000_000_000_u64..=u64::MAX).prop_map(|n| (
            "loyalty_points".to_owned(),
            json!(n),
            "invalid_integer"
        )),
        (-99_999_i64..99_999).prop_map(|n| (
            "loyalty_points".to_owned(),
            json!(n as f64 + 0.5),
            "invalid_integer"
        )),
        (-99_999_i64..99_999).prop_map(|n| (
            "loyalty_points".to_owned(),
            json!(n.to_string()),
            "wrong_type"
        )),
        any::<bool>().prop_map(|b| ("loyalty_points".to_owned(), json!(b), "wrong_type")),
        // Fields the collection does not declare.
        "[a-z][a-z_]{2,15}"
            .prop_filter("undeclared", |f| {
                ![
                    "name",
                    "email",
                    "phone",
                    "birth_date",
                    "loyalty_points",
                    "notes",
                    "city",
                    "delivery_location",
                    "last_seen_ip",
                    "contract_end",
                ]
                .contains(&f.as_str())
            })
            .prop_map(|f| (f, json!("value"), "unknown_field")),
    ]
}

// ---- properties ---------------------------------------------------------------------------

async fn create(fx: &Fixture, collection: &str, fields: &Value) -> (StatusCode, Value) {
    fx.srv
        .post(
            &records_path(&fx.t.id, &fx.s),
            &fx.t.owner,
            json!({ "collection": collection, "fields": fields }),
        )
        .await
}

#[test]
fn any_valid_customer_record_round_trips_exactly() {
    let fx = Fixture::new();
    proptest!(config(), |((sent, stored) in customer_record())| {
        fx.rt.block_on(async {
            let (st, created) = create(&fx, "customer_record", &sent).await;
            assert_eq!(st, StatusCode::CREATED, "{sent}: {created}");
            let id = created["id"].as_str().expect("id");
            let got = read(&fx.srv, &fx.t, &fx.s, id, ESSENTIAL).await;
            assert_eq!(got["fields"], stored, "normalized on write: {sent}");
            assert_eq!(got["revision"], created["revision"]);
        });
    });
}

#[test]
fn any_valid_contact_round_trips_and_is_found_by_email() {
    let fx = Fixture::new();
    proptest!(config(), |((sent, stored) in contact_record())| {
        fx.rt.block_on(async {
            let (st, created) = create(&fx, "contact", &sent).await;
            assert_eq!(st, StatusCode::CREATED, "{sent}: {created}");
            let id = created["id"].as_str().expect("id").to_owned();
            let got = read(&fx.srv, &fx.t, &fx.s, &id, MARKETING).await;
            assert_eq!(got["fields"], stored, "normalized on write: {sent}");
            // Found by the e-mail as sent, whatever its case.
            let email = sent["email"].as_str().expect("email").to_uppercase();
            let (st, hits) = fx.srv.get(&lookup_path(&fx.t.id, "contact", "email", &email, ESSENTIAL), &fx.t.owner).await;
            assert_eq!(st, StatusCode::OK, "{hits}");
            assert!(hits.as_array().expect("array").iter().any(|h| h["id"] == id.as_str()), "{email} not found: {hits}");
        });
    });
}

#[test]
fn any_invalid_value_is_422_and_writes_nothing() {
    let fx = Fixture::new();
    proptest!(config(), |((field, value, code) in invalid_field(), (base, _) in customer_record())| {
        fx.rt.block_on(async {
            let mut fields = base.clone();
            fields[field.as_str()] = value.clone();
            let resp = create(&fx, "customer_record", &fields).await;
            if code == "unknown_field" {
                assert_field_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, code, &field);
            } else {
                assert_invalid_value(&resp, &field, code);
            }
            assert_eq!(record_ids(&fx.srv, &fx.t, &fx.s, ESSENTIAL).await, Vec::<String>::new(), "{field} = {value} wrote a record");
        });
    });
}

#[test]
fn any_invalid_patch_is_422_and_changes_nothing() {
    let fx = Fixture::new();
    let (id, before) = fx.rt.block_on(async {
        let (st, created) = create(
            &fx,
            "customer_record",
            &json!({ "name": "Patched", "loyalty_points": 7 }),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        (
            id.clone(),
            read(&fx.srv, &fx.t, &fx.s, &id, ESSENTIAL).await,
        )
    });
    proptest!(config(), |((field, value, code) in invalid_field())| {
        fx.rt.block_on(async {
            let resp = fx.srv.patch(&record_path(&fx.t.id, &fx.s, &id), &fx.t.owner, json!({ "purpose": "essential.service", "fields": { field.as_str(): value } })).await;
            if code == "unknown_field" {
                assert_field_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, code, &field);
            } else {
                assert_invalid_value(&resp, &field, code);
            }
            assert_eq!(read(&fx.srv, &fx.t, &fx.s, &id, ESSENTIAL).await, before);
        });
    });
}
