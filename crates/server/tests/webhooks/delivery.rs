//! Alert webhooks end to end: a detection rule opens an alert, the delivery is written to the
//! outbox in the same commit, and the background worker posts it to a real local receiver,
//! signed; failures are retried after the (injected) clock passes the backoff; a restart
//! loses nothing; tenants only get their own alerts; the SSRF rule holds; the secret is never
//! stored or logged in clear.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use ward_testkit::{Options, TenantFixture, TestServer};

use crate::receiver::Receiver;

/// The suite's options with repeated denials lowered to 3 in 5 minutes.
fn options() -> Options {
    ward_testkit::api::with_quick_denial_alerts(crate::options())
}

async fn server() -> TestServer {
    TestServer::start_with(options()).await
}

/// `n` denied reads of the tenant's audit log by a member key: at threshold 3, opens an alert
/// of the tenant.
async fn denials(s: &TestServer, t: &TenantFixture, n: usize) {
    let member = s
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    for _ in 0..n {
        let r = s.get(&format!("/v1/tenants/{}/audit", t.id), &member).await;
        assert_eq!(r.0, StatusCode::FORBIDDEN, "{}", r.1);
    }
}

async fn create(s: &TestServer, t: &TenantFixture, body: Value) -> Value {
    let (st, created) = s
        .post(&format!("/v1/tenants/{}/webhooks", t.id), &t.owner, body)
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    ward_testkit::log_scan::secret(created["secret"].as_str().unwrap());
    created
}

async fn deliveries(s: &TestServer, t: &TenantFixture, hook: &Value) -> Vec<Value> {
    let (st, log) = s
        .get(
            &format!(
                "/v1/tenants/{}/webhooks/{}/deliveries",
                t.id,
                hook["id"].as_str().unwrap()
            ),
            &t.owner,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{log}");
    log.as_array().unwrap().clone()
}

/// Waits (bounded) until the newest delivery of `hook` satisfies `done`.
async fn wait_log(
    s: &TestServer,
    t: &TenantFixture,
    hook: &Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        if let Some(d) = deliveries(s, t, hook).await.first()
            && done(d)
        {
            return d.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "delivery log never matched: {:?}",
        deliveries(s, t, hook).await
    );
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn a_burst_yields_one_signed_alert_opened_delivery() {
    let s = server().await;
    let rx = Receiver::start(&[]).await;
    let t = s.tenant("acme").await;
    let secret = "whsec-0123456789-abcdefghij-KLMNOP";
    let hook = create(&s, &t, json!({"url": rx.url(), "secret": secret})).await;
    assert_eq!(hook["secret"], secret, "the caller's secret, returned once");
    assert_eq!(hook["url"], rx.url());

    denials(&s, &t, 7).await;
    let got = rx.wait_for(1).await;
    let d = &got[0];
    assert!(ward_crypto::verify_webhook_signature(
        secret.as_bytes(),
        &d.header("ward-signature"),
        &d.body,
        now_unix()
    ));
    assert!(!ward_crypto::verify_webhook_signature(
        b"another secret, not this one",
        &d.header("ward-signature"),
        &d.body,
        now_unix()
    ));
    assert_eq!(d.header("ward-event"), "alert.opened");
    assert_eq!(d.header("content-type"), "application/json");
    let body = d.json();
    assert_eq!(body["event"], "alert.opened");
    assert_eq!(
        d.header("ward-delivery"),
        body["delivery"].as_str().unwrap()
    );
    assert_eq!(body["alert"]["rule"], "repeated_denials");
    assert_eq!(body["alert"]["tenant"], t.id.as_str());

    // The burst made one alert with a count, and one delivery.
    let (_, alerts) = s
        .get(&format!("/v1/tenants/{}/alerts", t.id), &t.owner)
        .await;
    let found: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "repeated_denials")
        .collect();
    assert_eq!(found.len(), 1, "{alerts}");
    assert_eq!(found[0]["count"], 2);
    let log = wait_log(&s, &t, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(log["attempts"], 1);
    assert_eq!(log["last_result"], "200");
    assert_eq!(deliveries(&s, &t, &hook).await.len(), 1);
    assert_eq!(rx.got().len(), 1);

    // Resolving the alert sends alert.resolved with the current count.
    let id = found[0]["id"].as_str().unwrap();
    let (st, _) = s
        .post(
            &format!("/v1/tenants/{}/alerts/{id}/resolve", t.id),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].header("ward-event"), "alert.resolved");
    assert_eq!(got[1].json()["alert"]["status"], "resolved");
    assert_eq!(got[1].json()["alert"]["count"], 2);

    // The secret is listed nowhere and stored nowhere in clear.
    let (st, list) = s
        .get(&format!("/v1/tenants/{}/webhooks", t.id), &t.owner)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret), "{list}");
    for (path, bytes) in s.data_dir_bytes() {
        assert!(
            !ward_testkit::contains_bytes(&bytes, secret.as_bytes()),
            "secret in clear in {}",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_failed_delivery_is_retried_after_the_backoff_and_then_delivered() {
    let s = server().await;
    let rx = Receiver::start(&[500]).await;
    let t = s.tenant("acme").await;
    let hook = create(&s, &t, json!({"url": rx.url()})).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64, "32 random bytes in hex");

    denials(&s, &t, 3).await;
    rx.wait_for(1).await;
    let first = wait_log(&s, &t, &hook, |d| d["attempts"] == 1).await;
    assert_eq!(first["status"], "pending");
    assert_eq!(first["last_result"], "500");

    // Not retried before the backoff: the clock has not moved.
    s.clock.advance(time::Duration::seconds(30));
    let got = rx.wait_for(2).await;
    assert_eq!(
        got[0].header("ward-delivery"),
        got[1].header("ward-delivery"),
        "the same delivery, retried"
    );
    assert!(ward_crypto::verify_webhook_signature(
        secret.as_bytes(),
        &got[1].header("ward-signature"),
        &got[1].body,
        now_unix()
    ));
    let done = wait_log(&s, &t, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(done["attempts"], 2);
    assert_eq!(done["last_result"], "200");
}

#[tokio::test]
async fn a_restart_between_hit_and_delivery_still_delivers() {
    let mut s = server().await;
    // A port nothing listens on yet: the receiver is down.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let t = s.tenant("acme").await;
    let url = format!("http://{addr}/hook");
    let hook = create(&s, &t, json!({"url": url})).await;
    denials(&s, &t, 3).await;
    s.stop();

    let restarted = TestServer::start_with(Options {
        join: Some((
            s.schema.clone().unwrap_or_default(),
            s.dir.path().to_path_buf(),
        )),
        ..options()
    })
    .await;
    let rx = Receiver::start_on(addr, &[]).await;
    // Past any backoff or lease the first server left.
    restarted.clock.advance(time::Duration::hours(2));
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("ward-event"), "alert.opened");
    let done = wait_log(&restarted, &t, &hook, |d| d["status"] == "delivered").await;
    assert_eq!(done["event"], "alert.opened");
}

#[tokio::test]
async fn tenants_get_only_their_own_alerts_and_members_are_refused() {
    let s = server().await;
    let (rx_a, rx_b) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    let a = s.tenant("acme").await;
    let b = s.tenant("globex").await;
    create(&s, &a, json!({"url": rx_a.url()})).await;
    let hook_b = create(&s, &b, json!({"url": rx_b.url()})).await;

    denials(&s, &b, 3).await;
    let got = rx_b.wait_for(1).await;
    assert_eq!(got[0].json()["alert"]["tenant"], b.id.as_str());
    wait_log(&s, &b, &hook_b, |d| d["status"] == "delivered").await;
    assert!(rx_a.got().is_empty(), "tenant A got tenant B's alert");

    // Another tenant's owner sees nothing of B's webhooks.
    let hb = hook_b["id"].as_str().unwrap();
    for (st, body) in [
        s.get(&format!("/v1/tenants/{}/webhooks", b.id), &a.owner)
            .await,
        s.get(
            &format!("/v1/tenants/{}/webhooks/{hb}/deliveries", b.id),
            &a.owner,
        )
        .await,
        s.delete(&format!("/v1/tenants/{}/webhooks/{hb}", b.id), &a.owner)
            .await,
        s.get(
            &format!("/v1/tenants/{}/webhooks/{hb}/deliveries", a.id),
            &a.owner,
        )
        .await,
    ] {
        assert!(
            st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN,
            "{st} {body}"
        );
    }
    // A member may not manage webhooks.
    let member = s
        .key(&a.id, &a.owner, "member", &["essential.service"])
        .await;
    let (st, body) = s
        .post(
            &format!("/v1/tenants/{}/webhooks", a.id),
            &member,
            json!({"url": rx_a.url()}),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    let (st, _) = s
        .get(&format!("/v1/tenants/{}/webhooks", a.id), &member)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Nor may a tenant owner manage the operator's.
    let (st, _) = s.get("/v1/webhooks", &a.owner).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tenant_webhooks_to_private_addresses_are_refused_unless_allowed() {
    let s = TestServer::start_with(Options {
        allow_private_webhooks: false,
        ..options()
    })
    .await;
    let rx = Receiver::start(&[]).await;
    let t = s.tenant("acme").await;
    let hook = create(&s, &t, json!({"url": rx.url()})).await;
    let (st, queued) = s
        .post(
            &format!(
                "/v1/tenants/{}/webhooks/{}/test",
                t.id,
                hook["id"].as_str().unwrap()
            ),
            &t.owner,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["event"], "webhook.test");
    let d = wait_log(&s, &t, &hook, |d| d["attempts"] == 1).await;
    assert_eq!(d["last_result"], "refused_private_target");
    assert!(rx.got().is_empty(), "nothing sent to 127.0.0.1");

    // The operator's webhooks may target anything.
    let (st, op) = s
        .post("/v1/webhooks", &s.operator, json!({"url": rx.url()}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{op}");
    ward_testkit::log_scan::secret(op["secret"].as_str().unwrap());
    let (st, _) = s
        .post(
            &format!("/v1/webhooks/{}/test", op["id"].as_str().unwrap()),
            &s.operator,
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("ward-event"), "webhook.test");
    assert!(ward_crypto::verify_webhook_signature(
        op["secret"].as_str().unwrap().as_bytes(),
        &got[0].header("ward-signature"),
        &got[0].body,
        now_unix()
    ));
    let (st, log) = s
        .get(
            &format!("/v1/webhooks/{}/deliveries", op["id"].as_str().unwrap()),
            &s.operator,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(log.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_urls_and_secrets_are_refused_with_the_field_and_the_cap_holds() {
    let s = server().await;
    let t = s.tenant("acme").await;
    let path = format!("/v1/tenants/{}/webhooks", t.id);
    for url in [
        "ftp://example.com/hook",
        "/relative/hook",
        "https://user:pw@example.com/hook",
        "not a url",
    ] {
        let (st, body) = s.post(&path, &t.owner, json!({"url": url})).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{body}");
    }
    let long = format!("https://example.com/{}", "a".repeat(2_048));
    let (st, body) = s.post(&path, &t.owner, json!({"url": long})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "url");
    let (st, body) = s
        .post(
            &path,
            &t.owner,
            json!({"url": "https://example.com/h", "secret": "short"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "secret");

    let mut last = Value::Null;
    for _ in 0..10 {
        last = create(&s, &t, json!({"url": "https://example.com/h"})).await;
    }
    let (st, body) = s
        .post(&path, &t.owner, json!({"url": "https://example.com/h"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "webhook_limit");
    // Deleting one makes room; a deleted webhook is gone from the list and its routes.
    let id = last["id"].as_str().unwrap();
    let (st, _) = s.delete(&format!("{path}/{id}"), &t.owner).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.delete(&format!("{path}/{id}"), &t.owner).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .post(&format!("{path}/{id}/test"), &t.owner, json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    create(&s, &t, json!({"url": "https://example.com/h"})).await;
}
