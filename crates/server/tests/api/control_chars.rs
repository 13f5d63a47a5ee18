//! Control characters (C0, DEL, C1: NUL truncates in C tools, ESC and CSI drive terminals)
//! are refused with 400 `control_character` naming the field in every free-text request
//! field — tenant names and regions, key names, external references, `verified_by`, rejection
//! reasons — and in record strings (where only newline and tab are text), and a refusal
//! writes nothing.

use proptest::prelude::*;
use proptest::test_runner::Config;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::common::*;

struct Fixture {
    srv: TestServer,
    t: TenantFixture,
    s: String,
    request: String,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let rt = property_runtime();
        let (srv, t, s, request) = rt.block_on(async {
            let srv = crate::start().await;
            let (t, s) = srv.tenant_and_subject("Controls").await;
            let (st, r) = srv
                .post(
                    &format!("/v1/tenants/{}/requests", t.id),
                    &t.owner,
                    json!({ "kind": "access", "subject": s, "verified_by": "support via login" }),
                )
                .await;
            assert_eq!(st, StatusCode::CREATED, "{r}");
            let request = r["id"].as_str().expect("request id").to_owned();
            (srv, t, s, request)
        });
        Self {
            srv,
            t,
            s,
            request,
            rt,
        }
    }

    fn get_query(&self, path: &str, key: &str, value: &str) -> (StatusCode, Value) {
        self.rt.block_on(async {
            let encoded: String = value
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let resp = self
                .srv
                .request(Method::GET, &format!("{path}?{key}={encoded}"))
                .bearer_auth(&self.t.owner)
                .send()
                .await
                .expect("sent");
            let status = resp.status();
            (status, resp.json().await.unwrap_or(Value::Null))
        })
    }

    /// Every free-text field, each sent with `text`: (what was sent, response).
    fn send_everywhere(
        &self,
        text: &str,
    ) -> Vec<(&'static str, &'static str, (StatusCode, Value))> {
        let (srv, t) = (&self.srv, &self.t);
        let mut out = Vec::new();
        self.rt.block_on(async {
            out.push((
                "tenant name",
                "name",
                srv.post("/v1/tenants", &srv.operator, json!({ "name": text }))
                    .await,
            ));
            out.push((
                "tenant region",
                "region",
                srv.post(
                    "/v1/tenants",
                    &srv.operator,
                    json!({ "name": "Regional", "region": text }),
                )
                .await,
            ));
            out.push((
                "key name",
                "name",
                srv.post(
                    &format!("/v1/tenants/{}/keys", t.id),
                    &t.owner,
                    json!({ "name": text, "role": "auditor" }),
                )
                .await,
            ));
            out.push((
                "subject external_ref",
                "external_ref",
                srv.post(&subjects_path(&t.id), &t.owner, json!({ "external_ref": text }))
                    .await,
            ));
            out.push((
                "request verified_by",
                "verified_by",
                srv.post(
                    &format!("/v1/tenants/{}/requests", t.id),
                    &t.owner,
                    json!({ "kind": "access", "subject": self.s, "verified_by": text }),
                )
                .await,
            ));
            out.push((
                "rejection reason",
                "reason",
                srv.post(
                    &format!("/v1/tenants/{}/requests/{}/reject", t.id, self.request),
                    &t.owner,
                    json!({ "reason": text }),
                )
                .await,
            ));
            out.push((
                "record string",
                "name",
                srv.post(
                    &records_path(&t.id, &self.s),
                    &t.owner,
                    json!({ "collection": "contact", "fields": { "name": text, "email": "c@example.org" } }),
                )
                .await,
            ));
        });
        out.push((
            "subject lookup external_ref",
            "external_ref",
            self.get_query(&subjects_path(&t.id), "external_ref", text),
        ));
        out.push((
            "export by external_ref",
            "external_ref",
            self.get_query(
                &format!("/v1/tenants/{}/subjects/export", t.id),
                "external_ref",
                text,
            ),
        ));
        out
    }

    /// What a refusal must leave untouched: the request stays open, the subject has no
    /// record, and the tenant's audit log did not grow by a write.
    fn state(&self) -> Value {
        self.rt.block_on(async {
            let (_, requests) = self
                .srv
                .get(
                    &format!("/v1/tenants/{}/requests", self.t.id),
                    &self.t.owner,
                )
                .await;
            let (_, records) = self
                .srv
                .get(&list_path(&self.t.id, &self.s, ESSENTIAL), &self.t.owner)
                .await;
            json!({ "requests": requests, "records": records })
        })
    }
}

fn control() -> impl Strategy<Value = char> {
    prop_oneof![
        (0u32..=0x1f).prop_map(|c| char::from_u32(c).expect("C0")),
        Just('\u{7f}'),
        (0x80u32..=0x9f).prop_map(|c| char::from_u32(c).expect("C1")),
    ]
}

fn assert_refused(what: &str, field: &str, resp: &(StatusCode, Value), record: bool) {
    let err = assert_error(resp, StatusCode::BAD_REQUEST, "control_character");
    assert_eq!(err["field"], field, "{what}: {}", resp.1);
    if !record {
        // The message names the problem, never the text (which may be personal data).
        let m = err["message"].as_str().unwrap_or_default();
        assert!(m.contains("control character"), "{what}: {m}");
    }
}

#[test]
fn any_control_character_in_any_free_text_field_is_refused() {
    let fx = Fixture::new();
    let before = fx.state();
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    // Newline and tab are text in record strings: generate them only for the other fields.
    proptest!(config, |(pre in "[a-zA-Z \u{e9}]{0,8}", c in control(), post in "[a-zA-Z \u{e9}]{0,8}")| {
        let text = format!("Ann{pre}{c}{post}");
        for (what, field, resp) in fx.send_everywhere(&text) {
            let record = what == "record string";
            if record && (c == '\n' || c == '\t') {
                prop_assert_eq!(resp.0, StatusCode::CREATED, "{}: {}", what, resp.1);
                continue;
            }
            assert_refused(what, field, &resp, record);
        }
    });
    // Only records with newline or tab were written; the request is still open.
    let after = fx.state();
    assert_eq!(after["requests"], before["requests"]);
    for r in after["records"]["records"].as_array().into_iter().flatten() {
        let name = r["fields"]["name"].as_str().unwrap_or_default();
        assert!(
            name.chars()
                .all(|c| !c.is_control() || c == '\n' || c == '\t'),
            "{name:?}"
        );
    }
}

#[test]
fn the_edges_of_free_text() {
    let fx = Fixture::new();
    for text in [
        "\u{0}",
        "Ann\u{1b}[31m",
        "Ann\u{9b}31m",
        "Ann\u{7f}",
        " Ann\n",
        "\u{85}Ann",
    ] {
        for (what, field, resp) in fx.send_everywhere(text) {
            if what == "record string" && text == " Ann\n" {
                // A trailing newline is text in a record string.
                assert_eq!(resp.0, StatusCode::CREATED, "{what}: {}", resp.1);
                continue;
            }
            assert_refused(what, field, &resp, what == "record string");
        }
    }
    // Text without controls (non-breaking space, accents, emoji) is accepted.
    let (st, b) = fx.rt.block_on(fx.srv.post(
        &subjects_path(&fx.t.id),
        &fx.t.owner,
        json!({ "external_ref": "Zoë\u{a0}😀" }),
    ));
    assert_eq!(st, StatusCode::CREATED, "{b}");
}
