//! Timeouts and the connection cap: 500 clients that send one header byte per second do not
//! keep a normal request from being served, and are closed once the header timeout passes.
//! (Its own test binary: it holds a thousand sockets and must not share the process.)

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ward_testkit::{Options, TestServer};

const SLOW: usize = 500;
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_cut_off_and_do_not_block_others() {
    let srv = TestServer::start_with(Options {
        limits: ward_server::Limits {
            header_read_timeout: HEADER_TIMEOUT,
            max_connections: 1_000,
            ..ward_server::Limits::default()
        },
        ..Options::default()
    })
    .await;
    let request =
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr)
            .await
            .expect("connect");
        slow.push(tokio::spawn(async move {
            let opened = Instant::now();
            // One byte a second; the server closes the connection long before the headers end.
            for b in request {
                if tcp.write_all(&[*b]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                let read = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await;
                if let Ok(Ok(0) | Err(_)) = read {
                    break;
                }
            }
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut rest)).await;
            opened.elapsed()
        }));
    }
    // Every slow client is connected and dribbling; a normal request is still served at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .get(format!("{}/healthz", srv.url))
        .send()
        .await
        .expect("normal request");
    let took = started.elapsed();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert!(
        took < Duration::from_secs(1),
        "normal request took {took:?}"
    );
    // Each slow client was closed by the server: not before the header timeout, and well
    // before it could have sent its whole request (one byte a second, 70-odd bytes).
    for s in slow {
        let lived = s.await.expect("slow client");
        assert!(
            lived >= HEADER_TIMEOUT - Duration::from_millis(100),
            "closed after {lived:?}"
        );
        assert!(
            lived < Duration::from_secs(20),
            "still open after {lived:?}"
        );
    }
}

/// Reads until the server closes the connection (or 15 s pass); returns what it sent.
async fn read_until_closed(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut out)).await;
    match r {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_stalled_body_ends_the_request() {
    let srv = TestServer::start_with(Options {
        limits: ward_server::Limits {
            body_read_timeout: Duration::from_secs(1),
            ..ward_server::Limits::default()
        },
        ..Options::default()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":",
        srv.operator
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let answer = read_until_closed(&mut tcp)
        .await
        .expect("the server gave up on the body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let srv = TestServer::start_with(Options {
        limits: ward_server::Limits {
            header_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(1),
            ..ward_server::Limits::default()
        },
        ..Options::default()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let answer = read_until_closed(&mut tcp)
        .await
        .expect("closed well before the 60 s header timeout");
    assert_eq!(answer, "");
}
