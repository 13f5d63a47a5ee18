//! Inclusion and consistency proofs, checked by a verifier written here from RFC 9162
//! (§2.1.1 hashing, §2.1.3.2 inclusion, §2.1.4.2 consistency) over this file's own SHA-256,
//! tied to signed checkpoints. Nothing of `ward_audit`'s Merkle code is used to decide
//! whether a proof holds. Backend-neutral: HTTP only.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ward_testkit::{TenantFixture, TestServer};

use crate::support::{Resp, audit_all, b64_encode, hash32, send, sha256};

type H = [u8; 32];

// ---- RFC 9162, independently -----------------------------------------------------------------

fn leaf(data: &[u8]) -> H {
    let mut buf = Vec::with_capacity(data.len() + 1);
    buf.push(0x00);
    buf.extend_from_slice(data);
    sha256(&buf)
}

fn prefixed(prefix: u8, a: &H, b: &H) -> H {
    let mut buf = Vec::with_capacity(65);
    buf.push(prefix);
    buf.extend_from_slice(a);
    buf.extend_from_slice(b);
    sha256(&buf)
}

fn node(left: &H, right: &H) -> H {
    prefixed(0x01, left, right)
}

/// Ward's per-event chain (ward-audit, checkpoint.rs): SHA-256(0x02 ‖ prev ‖ leaf).
fn chain(prev: &H, leaf: &H) -> H {
    prefixed(0x02, prev, leaf)
}

/// MTH(D[n]) of RFC 9162 §2.1.1, over leaf hashes, by the recursive definition.
fn mth(leaves: &[H]) -> H {
    match leaves.len() {
        0 => sha256(b""),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(index: u64, tree_size: u64, leaf_hash: &H, proof: &[H], root: &H) -> bool {
    if index >= tree_size {
        return false;
    }
    let (mut f, mut s) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2 (with the trivial case first == second: empty proof, equal roots).
fn verify_consistency(
    first: u64,
    second: u64,
    first_hash: &H,
    second_hash: &H,
    proof: &[H],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<H> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_hash);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_hash && sr == *second_hash && s == 0
}

/// The canonical bytes of an event (the Merkle leaf data), rebuilt from the tenant view: the
/// JSON of the event's fields in declaration order, absent options left out.
const EVENT_FIELDS: [&str; 13] = [
    "at",
    "request_id",
    "actor",
    "tenant",
    "subject",
    "record",
    "collection",
    "purpose",
    "action",
    "outcome",
    "reason",
    "client",
    "detail",
];

fn canonical_event(e: &Value) -> Vec<u8> {
    let o = e.as_object().expect("event object");
    for k in o.keys() {
        assert!(
            k == "index" || EVENT_FIELDS.contains(&k.as_str()),
            "event field {k} unknown to the test: {e}"
        );
    }
    let mut out = String::from("{");
    for k in EVENT_FIELDS {
        if let Some(v) = o.get(k) {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(k).unwrap());
            out.push(':');
            out.push_str(&serde_json::to_string(v).unwrap());
        }
    }
    out.push('}');
    out.into_bytes()
}

#[test]
fn independent_verifier_accepts_hand_built_proofs_and_rejects_wrong_ones() {
    // A 7-leaf tree built by hand: the verifier itself is checked before it checks Ward.
    let l: Vec<H> = (0u8..7).map(|i| leaf(&[i])).collect();
    let root = mth(&l);
    let (h01, h23, h45) = (node(&l[0], &l[1]), node(&l[2], &l[3]), node(&l[4], &l[5]));
    let h0123 = node(&h01, &h23);
    let h456 = node(&h45, &l[6]);
    assert_eq!(root, node(&h0123, &h456));
    assert!(verify_inclusion(0, 7, &l[0], &[l[1], h23, h456], &root));
    assert!(verify_inclusion(5, 7, &l[5], &[l[4], l[6], h0123], &root));
    assert!(verify_inclusion(6, 7, &l[6], &[h45, h0123], &root));
    assert!(!verify_inclusion(6, 7, &l[5], &[h45, h0123], &root));
    assert!(!verify_inclusion(4, 7, &l[6], &[h45, h0123], &root));
    assert!(!verify_inclusion(6, 7, &l[6], &[h45], &root));
    assert!(!verify_inclusion(7, 7, &l[6], &[h45, h0123], &root));
    // RFC 9162 §2.1.4 example shapes: 3 -> 7 and 4 -> 7.
    let root3 = mth(&l[..3]);
    let h2 = l[2];
    assert!(verify_consistency(
        3,
        7,
        &root3,
        &root,
        &[h2, l[3], h01, h456]
    ));
    assert!(verify_consistency(4, 7, &h0123, &root, &[h456]));
    assert!(!verify_consistency(4, 7, &h0123, &root, &[h45]));
    assert!(!verify_consistency(3, 7, &root3, &root, &[h2, l[3], h01]));
    assert!(verify_consistency(7, 7, &root, &root, &[]));
    assert!(!verify_consistency(6, 7, &mth(&l[..6]), &root, &[]));
    assert_eq!(mth(&[]), sha256(b""));
}

// ---- talking to the server --------------------------------------------------------------------

async fn get(srv: &TestServer, token: &str, path: &str) -> Resp {
    send(srv, Method::GET, path, Some(token), None, None).await
}

/// Some audited traffic: a subject, a record, a read and a list per round.
async fn activity(srv: &TestServer, t: &TenantFixture, rounds: usize) {
    for i in 0..rounds {
        let subj = srv.subject(t).await;
        let rec = srv.record(t, &subj, "contact", json!({ "name": format!("Proof Person {i}"), "email": format!("p{i}@example.org") })).await;
        let base = format!("/v1/tenants/{}/subjects/{subj}/records", t.id);
        let (st, _) = srv
            .get(&format!("{base}/{rec}?purpose=essential.service"), &t.owner)
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = srv
            .get(&format!("{base}?purpose=essential.service"), &t.owner)
            .await;
        assert_eq!(st, StatusCode::OK);
    }
}

async fn new_checkpoint(srv: &TestServer, token: &str) -> Value {
    let r = send(
        srv,
        Method::POST,
        "/v1/audit/checkpoint",
        Some(token),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let keys: BTreeSet<&str> = r
        .json
        .as_object()
        .expect("checkpoint object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "origin",
            "tree_size",
            "root",
            "chain",
            "timestamp",
            "signature"
        ]),
        "{}",
        r.text
    );
    r.json
}

struct Inclusion {
    index: u64,
    tree_size: u64,
    leaf: H,
    root: H,
    proof: Vec<H>,
}

async fn inclusion(srv: &TestServer, token: &str, index: u64, tree_size: u64) -> Inclusion {
    let r = get(
        srv,
        token,
        &format!("/v1/audit/proof/inclusion?index={index}&tree_size={tree_size}"),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "inclusion {index}/{tree_size}: {}",
        r.text
    );
    assert_eq!(r.json["index"], index);
    assert_eq!(r.json["tree_size"], tree_size);
    Inclusion {
        index,
        tree_size,
        leaf: hash32(&r.json["leaf_hash"]),
        root: hash32(&r.json["root"]),
        proof: r.json["proof"]
            .as_array()
            .expect("proof array")
            .iter()
            .map(hash32)
            .collect(),
    }
}

struct Consistency {
    from: u64,
    to: u64,
    from_root: H,
    to_root: H,
    proof: Vec<H>,
}

async fn consistency(srv: &TestServer, token: &str, from: u64, to: u64) -> Consistency {
    let r = get(
        srv,
        token,
        &format!("/v1/audit/proof/consistency?from={from}&to={to}"),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "consistency {from}->{to}: {}",
        r.text
    );
    assert_eq!(r.json["from"], from);
    assert_eq!(r.json["to"], to);
    Consistency {
        from,
        to,
        from_root: hash32(&r.json["from_root"]),
        to_root: hash32(&r.json["to_root"]),
        proof: r.json["proof"]
            .as_array()
            .expect("proof array")
            .iter()
            .map(hash32)
            .collect(),
    }
}

fn flip(h: &H) -> H {
    let mut out = *h;
    out[31] ^= 0x01;
    out
}

fn checkpoint_of(v: &Value) -> ward_audit::Checkpoint {
    serde_json::from_value(v.clone()).expect("checkpoint JSON")
}

#[tokio::test]
async fn proofs_verify_independently_and_match_signed_checkpoints() {
    let srv = crate::start().await;
    let t = srv.tenant("Proofs").await;
    // Proofs are open to any authenticated key; a member key fetches them below.
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    activity(&srv, &t, 6).await;
    // Application (member) keys may read checkpoints and proofs but not sign checkpoints.
    let r = send(
        &srv,
        Method::POST,
        "/v1/audit/checkpoint",
        Some(&member),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let cp1_json = new_checkpoint(&srv, &auditor).await;
    activity(&srv, &t, 7).await;
    srv.clock.advance(time::Duration::seconds(61));
    let cp2_json = new_checkpoint(&srv, &auditor).await;
    let (cp1, cp2) = (checkpoint_of(&cp1_json), checkpoint_of(&cp2_json));
    let (size1, size2) = (cp1.tree_size, cp2.tree_size);
    assert!(size1 >= 20 && size2 >= size1 + 20, "sizes {size1} {size2}");
    let r = get(&srv, &member, "/v1/audit/checkpoint").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, cp2_json, "GET returns the newest checkpoint");

    // Signatures: documented message format, Ed25519 under the published key.
    let r = send(&srv, Method::GET, "/v1/audit/public-key", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["algorithm"], "ed25519");
    let key = ward_audit::PublicKey::from_base64(r.json["public_key"].as_str().unwrap())
        .expect("public key");
    for (cp, json) in [(&cp1, &cp1_json), (&cp2, &cp2_json)] {
        let documented = format!(
            "ward.audit.checkpoint.v1\n{}\n{}\n{}\n{}\n{}\n",
            json["origin"].as_str().unwrap(),
            json["tree_size"],
            json["root"].as_str().unwrap(),
            json["chain"].as_str().unwrap(),
            json["timestamp"]
        );
        assert_eq!(cp.signed_message(), documented.into_bytes());
        cp.verify(&key)
            .expect("checkpoint signature verifies under the published key");
        assert!(cp.timestamp <= srv.vault.now().unix_timestamp());
        let mut bad = cp.clone();
        bad.root = b64_encode(&flip(&hash32(&json["root"])));
        assert!(bad.verify(&key).is_err(), "altered root accepted");
        let mut bad = cp.clone();
        bad.tree_size += 1;
        assert!(bad.verify(&key).is_err(), "altered size accepted");
        let mut bad = cp.clone();
        bad.chain = b64_encode(&flip(&hash32(&json["chain"])));
        assert!(bad.verify(&key).is_err(), "altered chain accepted");
        let mut bad = cp.clone();
        bad.timestamp -= 1;
        assert!(bad.verify(&key).is_err(), "altered time accepted");
        let mut bad = cp.clone();
        bad.origin.push('x');
        assert!(bad.verify(&key).is_err(), "altered origin accepted");
        let other = ward_audit::SigningKey::generate().unwrap().public_key();
        assert!(cp.verify(&other).is_err(), "verifies under a foreign key");
    }

    // Every leaf of the tree at size2, each with its proof verified.
    let mut leaves: Vec<H> = Vec::new();
    for i in 0..size2 {
        let p = inclusion(&srv, &member, i, size2).await;
        assert!(
            verify_inclusion(i, size2, &p.leaf, &p.proof, &p.root),
            "inclusion {i}/{size2} does not verify"
        );
        assert_eq!(
            p.root,
            hash32(&cp2_json["root"]),
            "root at size2 differs from the signed checkpoint"
        );
        leaves.push(p.leaf);
    }
    // The signed roots and chain values are what the leaves give, computed here.
    assert_eq!(mth(&leaves), hash32(&cp2_json["root"]));
    assert_eq!(mth(&leaves[..size1 as usize]), hash32(&cp1_json["root"]));
    let mut c = [0u8; 32];
    for (i, l) in leaves.iter().enumerate() {
        c = chain(&c, l);
        if i + 1 == size1 as usize {
            assert_eq!(c, hash32(&cp1_json["chain"]), "chain at size1");
        }
    }
    assert_eq!(c, hash32(&cp2_json["chain"]), "chain at size2");

    // Leaf hashes are the hashes of the events the tenant can read.
    let events = audit_all(&srv, &t.id, &t.owner, "").await;
    let mut recomputed = 0;
    for e in &events {
        let i = e["index"].as_u64().unwrap();
        if i < size2 {
            assert_eq!(
                leaf(&canonical_event(e)),
                leaves[i as usize],
                "event {i} does not hash to its leaf: {e}"
            );
            recomputed += 1;
        }
    }
    assert!(
        recomputed as u64 >= size2 - 2,
        "only {recomputed} of {size2} leaves are tenant events"
    );

    // Inclusion proofs for many (index, tree size).
    let mut incl = Vec::new();
    for m in 1..=size2 {
        let picks: BTreeSet<u64> = [0, m - 1, m / 2, m / 3, (m * 7) / 11, m.saturating_sub(2)]
            .into_iter()
            .filter(|&n| n < m)
            .collect();
        for n in picks {
            let p = inclusion(&srv, &member, n, m).await;
            assert_eq!(p.leaf, leaves[n as usize], "leaf {n} at size {m}");
            assert_eq!(p.root, mth(&leaves[..m as usize]), "root at size {m}");
            assert!(
                verify_inclusion(n, m, &p.leaf, &p.proof, &p.root),
                "inclusion {n}/{m} does not verify"
            );
            incl.push(p);
        }
    }
    // And every one of them fails on wrong data.
    let mut rejected = 0;
    for p in &incl {
        let (n, m) = (p.index, p.tree_size);
        assert!(
            !verify_inclusion(n, m, &flip(&p.leaf), &p.proof, &p.root),
            "altered leaf accepted {n}/{m}"
        );
        assert!(
            !verify_inclusion(n, m, &p.leaf, &p.proof, &flip(&p.root)),
            "altered root accepted {n}/{m}"
        );
        if m > 1 && leaves[n as usize] != leaves[((n + 1) % m) as usize] {
            let other = (n + 1) % m;
            assert!(
                !verify_inclusion(other, m, &p.leaf, &p.proof, &p.root),
                "wrong index {other} accepted for {n}/{m}"
            );
            let other_leaf = leaves[other as usize];
            assert!(
                !verify_inclusion(n, m, &other_leaf, &p.proof, &p.root),
                "leaf {other} accepted as {n}/{m}"
            );
        }
        for k in 0..p.proof.len() {
            let mut bad = p.proof.clone();
            bad[k] = flip(&bad[k]);
            assert!(
                !verify_inclusion(n, m, &p.leaf, &bad, &p.root),
                "altered proof element {k} accepted {n}/{m}"
            );
            rejected += 1;
        }
        if let Some((_, shorter)) = p.proof.split_last() {
            assert!(
                !verify_inclusion(n, m, &p.leaf, shorter, &p.root),
                "truncated proof accepted {n}/{m}"
            );
        }
        let mut longer = p.proof.clone();
        longer.push(p.leaf);
        assert!(
            !verify_inclusion(n, m, &p.leaf, &longer, &p.root),
            "extended proof accepted {n}/{m}"
        );
    }
    assert!(rejected > 500, "{rejected}");

    // Consistency proofs: exhaustive for small trees, sampled for large ones, and between
    // the two signed checkpoints.
    let mut pairs: BTreeSet<(u64, u64)> = BTreeSet::new();
    for b in 1..=size2 {
        for a in 1..=b {
            if b <= 12
                || a == 1
                || a == b
                || a == b / 2
                || a == b - 1
                || b == size2
                || b == size1
                || a == size1
                || (a * 13 + b) % 7 == 0
            {
                pairs.insert((a, b));
            }
        }
    }
    let mut cons = Vec::new();
    for (a, b) in pairs {
        let p = consistency(&srv, &member, a, b).await;
        assert_eq!(
            p.from_root,
            mth(&leaves[..a as usize]),
            "from_root {a}->{b}"
        );
        assert_eq!(p.to_root, mth(&leaves[..b as usize]), "to_root {a}->{b}");
        assert!(
            verify_consistency(a, b, &p.from_root, &p.to_root, &p.proof),
            "consistency {a}->{b} does not verify"
        );
        cons.push(p);
    }
    let signed = cons
        .iter()
        .find(|p| (p.from, p.to) == (size1, size2))
        .expect("checkpoint pair");
    assert!(verify_consistency(
        size1,
        size2,
        &hash32(&cp1_json["root"]),
        &hash32(&cp2_json["root"]),
        &signed.proof
    ));
    for p in cons.iter().filter(|p| p.from < p.to) {
        let (a, b) = (p.from, p.to);
        assert!(
            !verify_consistency(a, b, &flip(&p.from_root), &p.to_root, &p.proof),
            "altered old root accepted {a}->{b}"
        );
        assert!(
            !verify_consistency(a, b, &p.from_root, &flip(&p.to_root), &p.proof),
            "altered new root accepted {a}->{b}"
        );
        assert!(
            !verify_consistency(a, b, &p.to_root, &p.from_root, &p.proof),
            "swapped roots accepted {a}->{b}"
        );
        for k in 0..p.proof.len() {
            let mut bad = p.proof.clone();
            bad[k] = flip(&bad[k]);
            assert!(
                !verify_consistency(a, b, &p.from_root, &p.to_root, &bad),
                "altered element {k} accepted {a}->{b}"
            );
        }
        if let Some((_, shorter)) = p.proof.split_last() {
            assert!(
                !verify_consistency(a, b, &p.from_root, &p.to_root, shorter),
                "truncated proof accepted {a}->{b}"
            );
        }
        let mut longer = p.proof.clone();
        longer.push(p.to_root);
        assert!(
            !verify_consistency(a, b, &p.from_root, &p.to_root, &longer),
            "extended proof accepted {a}->{b}"
        );
    }
    // A log rewritten behind the first checkpoint cannot be proven consistent with it.
    let mut rewritten = leaves.clone();
    rewritten[3] = leaf(b"forged event");
    let forged_new_root = mth(&rewritten);
    assert!(!verify_consistency(
        size1,
        size2,
        &hash32(&cp1_json["root"]),
        &forged_new_root,
        &signed.proof
    ));
}

#[tokio::test]
async fn proof_endpoints_refuse_bad_parameters() {
    let srv = crate::start().await;
    let t = srv.tenant("Proof Params").await;
    activity(&srv, &t, 2).await;
    // Proof requests are audited, so the log grows below: `size` is a lower bound of the
    // current size, and the out-of-range sizes are absurd ones.
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let size = new_checkpoint(&srv, &auditor).await["tree_size"]
        .as_u64()
        .unwrap();
    assert!(size >= 8);
    let tok = &t.owner;

    let ok = get(
        &srv,
        tok,
        &format!(
            "/v1/audit/proof/inclusion?index={}&tree_size={size}",
            size - 1
        ),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let same = consistency(&srv, tok, size, size).await;
    assert!(same.proof.is_empty());
    assert_eq!(same.from_root, same.to_root);
    let one = inclusion(&srv, tok, 0, 1).await;
    assert!(one.proof.is_empty());
    assert_eq!(one.root, one.leaf);

    let bad = [
        (
            format!("/v1/audit/proof/inclusion?index={size}&tree_size={size}"),
            "invalid_range",
        ),
        (
            format!(
                "/v1/audit/proof/inclusion?index={}&tree_size={size}",
                size + 7
            ),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/inclusion?index=0&tree_size={}", 1u64 << 50),
            "invalid_range",
        ),
        (
            format!(
                "/v1/audit/proof/inclusion?index={}&tree_size={}",
                u64::MAX - 1,
                u64::MAX
            ),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=18446744073709551616".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=0".to_owned(),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/inclusion?tree_size=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=-1&tree_size=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=one&tree_size=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/inclusion?index=0&tree_size=3&extra=1".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/consistency?from=3&to=2".to_owned(),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/consistency?from={size}&to={}", size - 1),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/consistency?from=0&to={size}"),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/consistency?from=0&to=0".to_owned(),
            "invalid_range",
        ),
        (
            format!("/v1/audit/proof/consistency?from=1&to={}", 1u64 << 50),
            "invalid_range",
        ),
        (
            format!(
                "/v1/audit/proof/consistency?from={}&to={}",
                u64::MAX,
                u64::MAX
            ),
            "invalid_range",
        ),
        (
            "/v1/audit/proof/consistency?to=3".to_owned(),
            "invalid_query",
        ),
        (
            "/v1/audit/proof/consistency?from=1&to=x".to_owned(),
            "invalid_query",
        ),
    ];
    let before = srv.store.audit_head().await.unwrap().size;
    for (path, code) in &bad {
        let r = get(&srv, tok, path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        assert_eq!(r.code(), *code, "{path}: {}", r.text);
    }
    assert_eq!(
        srv.store.audit_head().await.unwrap().size,
        before,
        "a refused proof request writes nothing"
    );
    // Proofs need a key.
    for path in [
        format!("/v1/audit/proof/inclusion?index=0&tree_size={size}"),
        "/v1/audit/proof/consistency?from=1&to=2".to_owned(),
    ] {
        let r = send(&srv, Method::GET, &path, None, None, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn checkpoints_are_signed_by_operators_and_auditors_at_a_bounded_rate() {
    let srv = crate::start().await;
    let t = srv.tenant("Signers").await;
    let admin = srv.key(&t.id, &t.owner, "admin", &[]).await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    let sign = |token: String| {
        let srv = &srv;
        async move {
            send(
                srv,
                Method::POST,
                "/v1/audit/checkpoint",
                Some(&token),
                None,
                None,
            )
            .await
        }
    };
    for token in [&t.owner, &admin, &member] {
        let r = sign(token.clone()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        assert_eq!(r.code(), "role_not_permitted", "{}", r.text);
    }
    let cp = sign(auditor.clone()).await;
    assert_eq!(cp.status, StatusCode::OK, "{}", cp.text);
    assert_eq!(cp.json["origin"], "ward-test", "the configured name");
    // A second signing right away is refused, for any signer: one per interval per
    // deployment. The refusal writes nothing.
    let before = srv.store.audit_head().await.unwrap().size;
    for token in [&auditor, &srv.operator] {
        let r = srv
            .request(Method::POST, "/v1/audit/checkpoint")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
    assert_eq!(srv.store.audit_head().await.unwrap().size, before);
    srv.clock.advance(time::Duration::seconds(61));
    let r = sign(srv.operator.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Refusals and signings are audited; the auditor's in its tenant's log.
    let events = audit_all(&srv, &t.id, &t.owner, "action=checkpoint_sign").await;
    let outcomes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["actor"]["role"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("owner", "denied"),
            ("admin", "denied"),
            ("member", "denied"),
            ("auditor", "allowed")
        ],
        "{events:?}"
    );
    assert_eq!(events[3]["detail"]["tree_size"], cp.json["tree_size"]);
}

#[tokio::test]
async fn proof_requests_are_audited_in_the_callers_tenant_log() {
    let srv = crate::start().await;
    let t = srv.tenant("Proof Audit").await;
    activity(&srv, &t, 1).await;
    let size = srv.store.audit_head().await.unwrap().size;
    let _ = inclusion(&srv, &t.owner, 1, size).await;
    let _ = consistency(&srv, &t.owner, 2, size).await;
    let events = audit_all(&srv, &t.id, &t.owner, "action=audit_proof").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0]["detail"],
        json!({ "proof": "inclusion", "index": 1, "tree_size": size })
    );
    assert_eq!(
        events[1]["detail"],
        json!({ "proof": "consistency", "from": 2, "to": size })
    );
    assert!(events.iter().all(|e| e["actor"]["role"] == "owner"));
}
