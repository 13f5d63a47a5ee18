//! Talking to the proof endpoints: audited traffic, signed checkpoints and the inclusion and
//! consistency proofs decoded into hashes, shared by the `proofs_*` tests so each can focus on
//! what it checks rather than on the wire format.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ward_testkit::{TenantFixture, TestServer};

use crate::proofs_verifier::{H, mth, verify_inclusion};
use crate::support::{Resp, hash32, send};

pub(crate) async fn get(srv: &TestServer, token: &str, path: &str) -> Resp {
    send(srv, Method::GET, path, Some(token), None, None).await
}

/// A tenant and a member key of it: proofs are open to any authenticated key, so the tests
/// fetch them with the least one.
pub(crate) async fn tenant_with_member(srv: &TestServer, name: &str) -> (TenantFixture, String) {
    let t = srv.tenant(name).await;
    let member = srv
        .key(&t.id, &t.owner, "member", &["essential.service"])
        .await;
    (t, member)
}

/// Some audited traffic: a subject, a record, a read and a list per round.
pub(crate) async fn activity(srv: &TestServer, t: &TenantFixture, rounds: usize) {
    for i in 0..rounds {
        let subj = srv.subject(t).await;
        let rec = srv
            .contact(
                t,
                &subj,
                &format!("Proof Person {i}"),
                &format!("p{i}@example.org"),
            )
            .await;
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

pub(crate) async fn new_checkpoint(srv: &TestServer, token: &str) -> Value {
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

pub(crate) struct Inclusion {
    pub(crate) index: u64,
    pub(crate) tree_size: u64,
    pub(crate) leaf: H,
    pub(crate) root: H,
    pub(crate) proof: Vec<H>,
}

pub(crate) async fn inclusion(
    srv: &TestServer,
    token: &str,
    index: u64,
    tree_size: u64,
) -> Inclusion {
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

/// The inclusion proof of `n` at size `m`, checked against `leaves` (the whole log's, as
/// the test computed them) and by the independent verifier.
pub(crate) async fn checked_inclusion(
    srv: &TestServer,
    token: &str,
    leaves: &[H],
    n: u64,
    m: u64,
) -> Inclusion {
    let p = inclusion(srv, token, n, m).await;
    assert_eq!(p.leaf, leaves[n as usize], "leaf {n} at size {m}");
    assert_eq!(p.root, mth(&leaves[..m as usize]), "root at size {m}");
    assert!(
        verify_inclusion(n, m, &p.leaf, &p.proof, &p.root),
        "inclusion {n}/{m} does not verify"
    );
    p
}

/// A tenant with `rounds` of [`activity`], a member key, a signed checkpoint at the end and
/// every leaf of the log up to it, read through inclusion proofs that each verify against
/// the checkpoint's root.
pub(crate) struct LoggedTenant {
    pub(crate) member: String,
    pub(crate) size: u64,
    pub(crate) leaves: Vec<H>,
}

pub(crate) async fn logged_tenant(srv: &TestServer, name: &str, rounds: usize) -> LoggedTenant {
    let (t, member) = tenant_with_member(srv, name).await;
    let auditor = srv.key(&t.id, &t.owner, "auditor", &[]).await;
    activity(srv, &t, rounds).await;
    let cp = new_checkpoint(srv, &auditor).await;
    let size = cp["tree_size"].as_u64().expect("tree size");
    let root = hash32(&cp["root"]);
    let mut leaves = Vec::new();
    for i in 0..size {
        let p = inclusion(srv, &member, i, size).await;
        assert_eq!(p.root, root, "root at the checkpoint");
        assert!(
            verify_inclusion(i, size, &p.leaf, &p.proof, &p.root),
            "inclusion {i}/{size} does not verify"
        );
        leaves.push(p.leaf);
    }
    assert_eq!(mth(&leaves), root);
    LoggedTenant {
        member,
        size,
        leaves,
    }
}

pub(crate) struct Consistency {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) from_root: H,
    pub(crate) to_root: H,
    pub(crate) proof: Vec<H>,
}

pub(crate) async fn consistency(srv: &TestServer, token: &str, from: u64, to: u64) -> Consistency {
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

pub(crate) fn flip(h: &H) -> H {
    let mut out = *h;
    out[31] ^= 0x01;
    out
}

pub(crate) fn checkpoint_of(v: &Value) -> ward_audit::Checkpoint {
    serde_json::from_value(v.clone()).expect("checkpoint JSON")
}
