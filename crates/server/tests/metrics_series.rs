//! `/metrics` has a bounded number of series: random methods and paths add none.
//! (Its own test binary, so no other test adds series meanwhile: the recorder is
//! process-wide.)

use std::collections::BTreeSet;

use reqwest::Method;
use ward_testkit::TestServer;

/// Distinct `ward_http_…` series lines (name and labels, without the value).
async fn series(srv: &TestServer) -> BTreeSet<String> {
    let text = srv.metrics_text().await;
    text.lines()
        .filter(|l| l.starts_with("ward_http_"))
        .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s.to_owned()))
        .collect()
}

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick(&mut self, from: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| from[(self.next() % from.len() as u64) as usize] as char)
            .collect()
    }
}

const TOKEN: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PATH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-._~";

#[tokio::test]
async fn random_methods_and_paths_add_no_series() {
    let srv = TestServer::start().await;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let fixed = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
    ];
    // One request of each shape first, so the series they need exist before counting.
    let _ = srv
        .request(Method::from_bytes(b"BREW").unwrap(), "/x")
        .send()
        .await;
    let _ = srv
        .request(Method::from_bytes(b"BREW").unwrap(), "/v1/tenants")
        .send()
        .await;
    let _ = srv.request(Method::GET, "/metrics").send().await;
    let before = series(&srv).await;
    let mut sent = 0;
    while sent < 1_000 {
        let len = 3 + (rng.next() % 12) as usize;
        let method = rng.pick(TOKEN, len);
        if fixed.contains(&method.as_str()) {
            continue;
        }
        let path = format!("/{}/{}", rng.pick(PATH, 8), rng.pick(PATH, 5));
        let m = Method::from_bytes(method.as_bytes()).expect("token characters make a method");
        let resp = srv.request(m, &path).send().await.expect("sent");
        assert!(
            resp.status().is_client_error(),
            "{method} {path}: {}",
            resp.status()
        );
        sent += 1;
    }
    let _ = srv.request(Method::GET, "/metrics").send().await;
    let after = series(&srv).await;
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "new series: {new:#?}");
    assert_eq!(after.len(), before.len());
}
