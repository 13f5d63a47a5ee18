//! The budget of issue 13: 10,000 bad-token requests add at most 100 audit events and less
//! than 1 MB to the data directory (database, WAL and all), while a valid key from another
//! source keeps working throughout.

use std::sync::Arc;

use reqwest::{Method, StatusCode};

use crate::common::*;

fn data_dir_size(srv: &ward_testkit::TestServer) -> u64 {
    srv.data_dir_bytes()
        .iter()
        .map(|(_, b)| b.len() as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_tokens_stay_within_the_budget() {
    let srv = Arc::new(crate::start().await);
    let t = srv.tenant("Budget").await;
    let path = format!("/v1/tenants/{}", t.id);
    // Warm the owner's key and the files before measuring.
    assert_eq!(srv.get(&path, &t.owner).await.0, StatusCode::OK);
    let events_before = audit_size(&srv).await;
    let bytes_before = data_dir_size(&srv);

    let attacker = client_from(2);
    let mut flood = Vec::new();
    for worker in 0..8 {
        let (srv, attacker, path) = (srv.clone(), attacker.clone(), path.clone());
        flood.push(tokio::spawn(async move {
            let mut statuses = [0u32; 2];
            for i in 0..1_250 {
                let token = format!("ward_key_guess-{worker}-{i}");
                let r = send(&srv, &attacker, Method::GET, &path, Some(&token)).await;
                match r.status() {
                    StatusCode::UNAUTHORIZED => statuses[0] += 1,
                    StatusCode::TOO_MANY_REQUESTS => statuses[1] += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            statuses
        }));
    }
    // Meanwhile the owner, from another address, is served as usual.
    let owner = client_from(1);
    for _ in 0..50 {
        let r = send(&srv, &owner, Method::GET, &path, Some(&t.owner)).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (mut unauthorized, mut throttled) = (0, 0);
    for f in flood {
        let [u, th] = f.await.expect("flood task");
        unauthorized += u;
        throttled += th;
    }
    assert_eq!(unauthorized + throttled, 10_000);
    assert!(
        throttled >= 9_000,
        "most never reached the store: {throttled}"
    );

    // The summary of the open window is written at shutdown; write it now to count it.
    srv.vault.flush_auth_failures(true).await.expect("flush");
    let added = audit_size(&srv).await - events_before;
    let grown = data_dir_size(&srv).saturating_sub(bytes_before);
    assert!(added <= 100, "{added} audit events");
    assert!(grown < 1_000_000, "{grown} bytes");
    // The count is all there: one event at the first failure, one summary for the rest.
    let events = auth_events(&srv).await;
    let total: u64 = events
        .iter()
        .map(|e| {
            let d = &e["detail"];
            d["failures"].as_u64().unwrap_or(0) + d["throttled"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 10_000, "{events:#?}");
}
