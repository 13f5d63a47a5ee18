//! JSON request bodies of the record and batch endpoints, through the real server.
//!
//! One Ward server (SQLite, the example policy) is started on first use and shared by every
//! input; each input is sent as the body of a record create, a record rectification and a
//! batch. Whatever the bytes, the answer is a 2xx or a 4xx with Ward's JSON error shape,
//! never a 5xx, a hang or a dropped connection.

use std::sync::OnceLock;

use reqwest::Method;
use serde_json::Value;
use tokio::runtime::Runtime;
use ward_testkit::{TenantFixture, TestServer};

struct Target {
    runtime: Runtime,
    server: TestServer,
    tenant: TenantFixture,
    subject: String,
    record: String,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (server, tenant, subject, record) = runtime.block_on(async {
            let server = TestServer::start().await;
            let tenant = server.tenant("fuzz").await;
            let subject = server.subject(&tenant).await;
            let record = server
                .contact(&tenant, &subject, "Fuzz Person", "fuzz@example.com")
                .await;
            (server, tenant, subject, record)
        });
        Target {
            runtime,
            server,
            tenant,
            subject,
            record,
        }
    })
}

/// Sends the bytes as the body of the three write endpoints that take free-form JSON.
pub fn request_body(data: &[u8]) {
    let t = target();
    let base = format!("/v1/tenants/{}", t.tenant.id);
    let routes = [
        (
            Method::POST,
            format!("{base}/subjects/{}/records", t.subject),
        ),
        (
            Method::PATCH,
            format!(
                "{base}/subjects/{}/records/{}?purpose=essential.service",
                t.subject, t.record
            ),
        ),
        (Method::POST, format!("{base}/batch")),
    ];
    t.runtime.block_on(async {
        for (method, path) in routes {
            let response = t
                .server
                .request(method.clone(), &path)
                .bearer_auth(&t.tenant.owner)
                .header("content-type", "application/json")
                .body(data.to_vec())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: no response: {e}"));
            let status = response.status();
            let body = response.bytes().await.expect("response body");
            assert!(
                !status.is_server_error(),
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
            if status.is_client_error() {
                let error: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                    panic!(
                        "{method} {path}: {status} without a JSON body: {}",
                        String::from_utf8_lossy(&body)
                    )
                });
                assert!(
                    error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                    "{method} {path}: {status}: not Ward's error shape: {error}"
                );
            }
        }
    });
}
