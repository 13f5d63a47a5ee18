//! Helpers shared by the security modules: raw requests with a request id, audit paging,
//! and small independent encoders (base64, SHA-256) so the tests check Ward's output
//! without trusting Ward's own code for it.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ward_testkit::TestServer;
pub(crate) use ward_testkit::api::enc;

/// A response with everything a security test looks at.
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) json: Value,
    pub(crate) text: String,
    pub(crate) content_type: Option<String>,
    pub(crate) next_cursor_header: Option<String>,
}

impl Resp {
    /// The stable error code of an error response (`""` when there is none).
    pub(crate) fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

/// Sends a request, optionally with a bearer token, a JSON body and an `x-request-id`.
pub(crate) async fn send(
    srv: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    request_id: Option<&str>,
) -> Resp {
    send_to(&srv.url, method, path, token, body, request_id).await
}

/// Like [`send`], to the server at `base` (e.g. a second server over the same store).
pub(crate) async fn send_to(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    request_id: Option<&str>,
) -> Resp {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let next_cursor_header = header("x-next-cursor");
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        json,
        text,
        content_type,
        next_cursor_header,
    }
}

/// One page of a tenant's audit view; panics unless it is a 200.
pub(crate) async fn audit_page(
    srv: &TestServer,
    tenant: &str,
    token: &str,
    query: &str,
    request_id: Option<&str>,
) -> Resp {
    let r = send(
        srv,
        Method::GET,
        &format!("/v1/tenants/{tenant}/audit?{query}"),
        Some(token),
        None,
        request_id,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "audit view {query}: {}", r.text);
    r
}

/// Every event of a tenant's audit view matching `query` (limit 1000, which the tests never
/// exceed; asserted).
pub(crate) async fn audit_all(
    srv: &TestServer,
    tenant: &str,
    token: &str,
    query: &str,
) -> Vec<Value> {
    let sep = if query.is_empty() { "" } else { "&" };
    let r = audit_page(srv, tenant, token, &format!("limit=1000{sep}{query}"), None).await;
    assert!(
        r.json["next_cursor"].is_null(),
        "more than 1000 events; the test assumes fewer"
    );
    r.json["events"].as_array().expect("events array").clone()
}

/// The events carrying `request_id`.
pub(crate) fn with_rid<'a>(events: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["request_id"] == request_id)
        .collect()
}

/// The log indices of `events`, in order.
pub(crate) fn indices(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["index"].as_u64().expect("index"))
        .collect()
}

// ---- base64 (RFC 4648 §4, with padding) -----------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        let mut pad = 0usize;
        for &c in chunk {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    pad += 1;
                    0
                }
                _ => return None,
            };
            if pad > 0 && c != b'=' {
                return None;
            }
            n = (n << 6) | u32::from(v);
        }
        if pad > 2 {
            return None;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// A base64 string that must decode to a 32-byte hash.
pub(crate) fn hash32(v: &Value) -> [u8; 32] {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a base64 string, got {v}"));
    let bytes = b64_decode(s).unwrap_or_else(|| panic!("not base64: {s}"));
    bytes
        .try_into()
        .unwrap_or_else(|b: Vec<u8>| panic!("expected 32 bytes, got {}", b.len()))
}

// ---- SHA-256 (FIPS 180-4), written here so the proof checks share no code with Ward ---------

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (slot, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *slot = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (dst, word) in out.chunks_exact_mut(4).zip(h) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sha256_matches_fips_180_vectors() {
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex(&sha256(
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        )),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(
        hex(&sha256(
            b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        )),
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
    );
    assert_eq!(
        hex(&sha256(&vec![b'a'; 1_000_000])),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
    // RFC 9162 prefixes: SHA-256(0x00) is the hash of an empty leaf.
    assert_eq!(
        hex(&sha256(&[0])),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
}

#[test]
fn base64_round_trips_and_rejects_garbage() {
    for len in 0..70usize {
        let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let text = b64_encode(&data);
        assert_eq!(b64_decode(&text).as_deref(), Some(&data[..]), "len {len}");
    }
    assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(b64_encode(b"fo"), "Zm8=");
    assert_eq!(b64_decode("Zg=="), Some(b"f".to_vec()));
    assert_eq!(b64_decode("Zg="), None);
    assert_eq!(b64_decode("Z-8="), None);
    assert_eq!(b64_decode("Z=g="), None);
}
