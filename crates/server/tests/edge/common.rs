//! Helpers of the edge suite: clients bound to a chosen loopback address (Linux routes all
//! of 127/8 to the loopback interface), and audit counts.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use reqwest::{Client, Method, Response};
use ward_testkit::TestServer;

/// A client whose connections come from `127.0.0.<last>`.
pub(crate) fn client_from(last: u8) -> Client {
    Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .expect("client")
}

/// Sends `method path` with an optional bearer token from `client`.
pub(crate) async fn send(
    srv: &TestServer,
    client: &Client,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> Response {
    let mut req = client.request(method, format!("{}{path}", srv.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request sent")
}

/// Number of events in the whole audit log.
pub(crate) async fn audit_size(srv: &TestServer) -> u64 {
    srv.store.audit_head().await.expect("audit head").size
}

/// Every `authenticate` event in the log, oldest first, as JSON.
pub(crate) async fn auth_events(srv: &TestServer) -> Vec<serde_json::Value> {
    let size = audit_size(srv).await;
    let limit = u32::try_from(size).expect("small log");
    let rows = srv.store.audit_rows(0, limit).await.expect("audit rows");
    rows.into_iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.event).expect("event json"))
        .filter(|e| e["action"] == "authenticate")
        .collect()
}
