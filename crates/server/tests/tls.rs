//! HTTPS: a real TLS client negotiates TLS 1.3 (and 1.2 when it offers only 1.2), gets HSTS,
//! and a client offering only older protocols cannot connect.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use ward_testkit::{Options, TestServer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn tls_server() -> TestServer {
    TestServer::start_with(Options {
        tls: Some((fixture("localhost.cert.pem"), fixture("localhost.key.pem"))),
        ..Options::default()
    })
    .await
}

fn client(versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("ca.cert.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Sends `GET /healthz` over `versions`; returns the negotiated version and the raw response.
async fn get_healthz(
    srv: &TestServer,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (ProtocolVersion, String) {
    let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let mut tls = client(versions)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let version = tls.get_ref().1.protocol_version().unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    (version, response)
}

#[tokio::test]
async fn negotiates_tls13_and_sends_hsts() {
    let srv = tls_server().await;
    let (version, response) =
        get_healthz(&srv, &[&rustls::version::TLS13, &rustls::version::TLS12]).await;
    assert_eq!(version, ProtocolVersion::TLSv1_3);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000; includesubdomains"),
        "{response}"
    );
    assert!(response.contains(r#"{"status":"ok"}"#), "{response}");
}

#[tokio::test]
async fn accepts_a_tls12_only_client() {
    let srv = tls_server().await;
    let (version, response) = get_healthz(&srv, &[&rustls::version::TLS12]).await;
    assert_eq!(version, ProtocolVersion::TLSv1_2);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn refuses_plain_http_on_the_tls_port() {
    let srv = tls_server().await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), tcp.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    buf.truncate(n);
    assert!(
        !String::from_utf8_lossy(&buf).contains("\"status\""),
        "plain HTTP must not be served"
    );
}

#[tokio::test]
async fn refuses_tls_10_and_11_client_hellos() {
    // A TLS 1.0 ClientHello record header (legacy version 3.1) with an SSL 3.0-era suite: the
    // server must answer with an alert or close, never a ServerHello.
    let srv = tls_server().await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0x2e, // handshake record, TLS 1.0, length 46
        0x01, 0x00, 0x00, 0x2a, // ClientHello, length 42
        0x03, 0x01, // client_version TLS 1.0
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,    // random
        0x00, // session id length
        0x00, 0x02, 0x00, 0x2f, // one suite: TLS_RSA_WITH_AES_128_CBC_SHA
        0x01, 0x00, // compression: null
    ];
    tcp.write_all(&hello[..]).await.unwrap();
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), tcp.read(&mut buf))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    // Either closed, or an alert record (content type 21); never a handshake (22).
    assert!(
        n == 0 || buf[0] == 0x15,
        "server answered an old-protocol hello with {:?}",
        &buf[..n]
    );
}

/// Sends one raw HTTP/1.1 request over TLS 1.3; returns the raw response.
async fn tls_request(srv: &TestServer, request: &str) -> String {
    let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let mut tls = client(&[&rustls::version::TLS13])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn v1_answers_carry_security_headers_and_hsts_over_tls() {
    let srv = tls_server().await;
    for (path, auth, status) in [
        (
            "/v1/tenants/00000000-0000-0000-0000-000000000000",
            "",
            "401",
        ),
        ("/v1/no/such/endpoint", "", "404"),
        (
            "/v1/tenants/00000000-0000-0000-0000-000000000000",
            "authorization: bearer OPERATOR\r\n",
            "404",
        ),
    ] {
        let auth = auth.replace("OPERATOR", &srv.operator);
        let response = tls_request(
            &srv,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"),
        )
        .await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{response}"
        );
        let lower = response.to_ascii_lowercase();
        for header in [
            "cache-control: no-store",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "strict-transport-security: max-age=63072000; includesubdomains",
        ] {
            assert!(lower.contains(header), "{header} missing: {response}");
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_closed_after_the_header_timeout() {
    let srv = TestServer::start_with(Options {
        tls: Some((fixture("localhost.cert.pem"), fixture("localhost.key.pem"))),
        limits: ward_server::Limits {
            header_read_timeout: std::time::Duration::from_secs(1),
            ..ward_server::Limits::default()
        },
        ..Options::default()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    // Half a record header, then silence.
    tcp.write_all(&[0x16, 0x03]).await.unwrap();
    let mut buf = vec![0u8; 64];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(15), tcp.read(&mut buf))
        .await
        .expect("the server closed the connection");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}
