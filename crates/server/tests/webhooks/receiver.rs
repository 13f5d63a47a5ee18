//! A webhook receiver for tests: an HTTP server on an ephemeral port of 127.0.0.1 that records
//! every request and answers with the statuses of a script (200 once the script is spent).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    got: Vec<Received>,
    script: VecDeque<u16>,
}

/// A running receiver.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

async fn receive(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut s = shared.lock().unwrap();
    s.got.push(Received { headers, body });
    let code = s.script.pop_front().unwrap_or(200);
    StatusCode::from_u16(code).unwrap()
}

impl Receiver {
    /// Starts on an ephemeral port, answering `script` in order, then 200.
    pub(crate) async fn start(script: &[u16]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, script)
    }

    /// Starts on `addr` (a port another receiver had).
    pub(crate) async fn start_on(addr: SocketAddr, script: &[u16]) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, script)
    }

    fn serve(listener: tokio::net::TcpListener, script: &[u16]) -> Self {
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            got: Vec::new(),
            script: script.iter().copied().collect(),
        }));
        let app = axum::Router::new()
            .route("/{*path}", axum::routing::post(receive))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn got(&self) -> Vec<Received> {
        self.shared.lock().unwrap().got.clone()
    }

    /// Waits (bounded) until at least `n` requests arrived; returns them.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} deliveries, got {}", self.got().len());
    }
}
