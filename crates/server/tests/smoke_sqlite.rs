//! Smoke test that the harness works on SQLite.
use reqwest::StatusCode;
use ward_testkit::TestServer;

#[tokio::test]
async fn walkthrough_works() {
    let srv = TestServer::start().await;
    let (t, s) = srv.tenant_and_subject("Acme").await;
    let r = srv.contact(&t, &s, "Ada", "ada@example.com").await;
    let (st, b) = srv.read_for_service(&t, &s, &r).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b["fields"]["name"], "Ada");
}
