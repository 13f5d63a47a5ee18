//! An RFC 9162 verifier written here, independently of `ward_audit` (§2.1.1 hashing, §2.1.3.2
//! inclusion, §2.1.4.2 consistency, over this suite's own SHA-256), and its own check against
//! hand-built proofs, because a proof the server hands out is only worth something if code
//! that shares nothing with the server's Merkle code accepts it.

use serde_json::Value;

use crate::support::sha256;

pub(crate) type H = [u8; 32];

pub(crate) fn leaf(data: &[u8]) -> H {
    let mut buf = Vec::with_capacity(data.len() + 1);
    buf.push(0x00);
    buf.extend_from_slice(data);
    sha256(&buf)
}

pub(crate) fn prefixed(prefix: u8, a: &H, b: &H) -> H {
    let mut buf = Vec::with_capacity(65);
    buf.push(prefix);
    buf.extend_from_slice(a);
    buf.extend_from_slice(b);
    sha256(&buf)
}

pub(crate) fn node(left: &H, right: &H) -> H {
    prefixed(0x01, left, right)
}

/// Ward's per-event chain (ward-audit, checkpoint.rs): SHA-256(0x02 ‖ prev ‖ leaf).
pub(crate) fn chain(prev: &H, leaf: &H) -> H {
    prefixed(0x02, prev, leaf)
}

/// MTH(D[n]) of RFC 9162 §2.1.1, over leaf hashes, by the recursive definition.
pub(crate) fn mth(leaves: &[H]) -> H {
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
pub(crate) fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf_hash: &H,
    proof: &[H],
    root: &H,
) -> bool {
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
pub(crate) fn verify_consistency(
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
pub(crate) const EVENT_FIELDS: [&str; 13] = [
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

pub(crate) fn canonical_event(e: &Value) -> Vec<u8> {
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
pub(crate) fn independent_verifier_accepts_hand_built_proofs_and_rejects_wrong_ones() {
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
