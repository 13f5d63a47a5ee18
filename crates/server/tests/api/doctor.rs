//! `GET /v1/doctor`: the deployment's checks, for operators only, documented in OpenAPI.

use reqwest::{Method, StatusCode};

#[tokio::test]
async fn the_operator_gets_every_check_with_its_status_and_fix() {
    let srv = crate::start().await;
    let (t, s) = srv.tenant_and_subject("Doctor Co").await;
    srv.contact(&t, &s, "Ada", "ada@example.org").await;
    // A temporary directory is created 0755: the doctor of the running server notices.
    let (st, report) = srv.get("/v1/doctor", &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    let data_dir = &report["checks"][0];
    assert_eq!(data_dir["check"], "data_dir");
    assert_eq!(data_dir["status"], "fail", "{report:#}");
    assert!(
        data_dir["fix"]
            .as_str()
            .is_some_and(|f| f.starts_with("chmod 700 ")),
        "{data_dir}"
    );
    assert_eq!(report["status"], "fail");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(srv.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (st, report) = srv.get("/v1/doctor", &srv.operator).await;
    assert_eq!(st, StatusCode::OK, "{report}");
    let checks = report["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().filter_map(|c| c["check"].as_str()).collect();
    for name in [
        "data_dir",
        "key_files",
        "database",
        "root_key",
        "audit_log",
        "retention",
        "backups",
        "tls_certificate",
        "clock",
        "disk_space",
    ] {
        assert!(names.contains(&name), "{name} missing: {report:#}");
    }
    for c in checks {
        let status = c["status"].as_str().expect("status");
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert!(
            c["explanation"].as_str().is_some_and(|e| !e.is_empty()),
            "{c}"
        );
        assert_eq!(c.get("fix").is_some(), status != "ok", "{c}");
    }
    let by_name = |n: &str| checks.iter().find(|c| c["check"] == n).expect("finding");
    assert_eq!(by_name("data_dir")["status"], "ok", "{report:#}");
    assert_eq!(by_name("audit_log")["status"], "ok", "{report:#}");
    assert_eq!(by_name("clock")["status"], "ok", "{report:#}");
    // A test server keeps its root key file in its data directory: the doctor says so.
    assert_eq!(by_name("root_key")["status"], "warn", "{report:#}");
    assert_eq!(report["status"], "warn", "{report:#}");
}

#[tokio::test]
async fn only_operators_examine_the_deployment() {
    let srv = crate::start().await;
    let t = srv.tenant("Doctor Co").await;
    let (st, body) = srv.get("/v1/doctor", &t.owner).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "role_not_permitted");
    let (st, body) = srv.call(Method::GET, "/v1/doctor", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn the_doctor_route_is_documented_with_every_status() {
    let srv = crate::start().await;
    let (st, doc) = srv.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let op = &doc["paths"]["/v1/doctor"]["get"];
    let codes: Vec<&String> = op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .collect();
    for code in ["200", "401", "403", "429"] {
        assert!(
            codes.iter().any(|c| *c == code),
            "{code} missing from {codes:?}"
        );
    }
    assert!(
        op["responses"]["200"].to_string().contains("Report"),
        "{op}"
    );
    let schema = &doc["components"]["schemas"]["Report"];
    assert!(schema["properties"]["checks"].is_object(), "{schema}");
}
