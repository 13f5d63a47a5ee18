//! Paging parameters out of range are a 400 naming the parameter: a negative, huge or
//! non-decimal `cursor` or `limit` never wraps into a valid-looking page (a cursor of 2^64 − 1
//! cast to a signed index used to restart the listing from the first event).

use proptest::prelude::*;
use proptest::test_runner::Config;
use reqwest::StatusCode;
use serde_json::Value;
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

struct Fixture {
    srv: TestServer,
    t: TenantFixture,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let rt = property_runtime();
        let (srv, t) = rt.block_on(async {
            let srv = crate::start().await;
            let t = srv.tenant("Bounds").await;
            // A few events so that a wrapped cursor would have something to show.
            for _ in 0..3 {
                srv.subject(&t).await;
            }
            (srv, t)
        });
        Self { srv, t, rt }
    }

    fn audit(&self, query: &str) -> (StatusCode, Value) {
        self.rt.block_on(self.srv.get(
            &format!("/v1/tenants/{}/audit?{query}", self.t.id),
            &self.t.owner,
        ))
    }
}

fn assert_refused(resp: &(StatusCode, Value), code: &str, field: &str) {
    let err = assert_error(resp, StatusCode::BAD_REQUEST, code);
    assert_eq!(err["field"], field, "{}", resp.1);
}

#[test]
fn out_of_range_cursors_and_limits_are_refused_naming_the_field() {
    let fx = Fixture::new();
    for bad in [
        "-1",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "1.5",
        "1e3",
        "+1",
        " 1",
        "0x10",
        "",
    ] {
        let q = bad.replace('+', "%2B").replace(' ', "%20");
        assert_refused(
            &fx.audit(&format!("cursor={q}")),
            "invalid_cursor",
            "cursor",
        );
        assert_refused(&fx.audit(&format!("limit={q}")), "invalid_limit", "limit");
    }
    for bad in ["0", "1001", "4294967296", "4294967297"] {
        assert_refused(&fx.audit(&format!("limit={bad}")), "invalid_limit", "limit");
    }
    // The largest cursor is accepted and is past every event: an empty page, not the first.
    let (st, page) = fx.audit("cursor=9223372036854775807");
    assert_eq!(st, StatusCode::OK, "{page}");
    assert_eq!(page["events"], serde_json::json!([]));
    let (st, page) = fx.audit("cursor=0&limit=1000");
    assert_eq!(st, StatusCode::OK, "{page}");
    assert!(!page["events"].as_array().expect("events").is_empty());
}

#[test]
fn any_integer_cursor_or_limit_is_kept_or_refused_never_wrapped() {
    let fx = Fixture::new();
    let config = Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    };
    let wide = prop_oneof![
        any::<i128>(),
        (-2_i128..2),
        (i128::from(i64::MAX) - 2..i128::from(i64::MAX) + 2),
        (i128::from(u64::MAX) - 2..i128::from(u64::MAX) + 2),
        (-(i128::from(u64::MAX)) - 2..-(i128::from(u64::MAX)) + 2),
        (998_i128..1003),
    ];
    proptest!(config, |(n in wide)| {
        let (st, body) = fx.audit(&format!("cursor={n}"));
        if (0..=i128::from(i64::MAX)).contains(&n) {
            prop_assert_eq!(st, StatusCode::OK, "{}: {}", n, body);
            // No event's index is below the cursor: it was not wrapped to an earlier place.
            for e in body["events"].as_array().expect("events") {
                prop_assert!(i128::from(e["index"].as_u64().expect("index")) > n);
            }
        } else {
            assert_refused(&(st, body), "invalid_cursor", "cursor");
        }
        let (st, body) = fx.audit(&format!("limit={n}"));
        if (1..=1000).contains(&n) {
            prop_assert_eq!(st, StatusCode::OK, "{}: {}", n, body);
        } else {
            assert_refused(&(st, body), "invalid_limit", "limit");
        }
    });
}
