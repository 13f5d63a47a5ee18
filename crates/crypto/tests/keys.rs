//! Keys, derivation, keyed hashes, associated data, tokens and helpers.

use std::collections::HashSet;

use ward_crypto::{
    Cipher, Hasher, KeyVersion, RootKeyring, SecretKey, Token, aad, ct_eq, random_bytes, sha256,
    token_hash,
};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn shared_types_are_send_and_sync() {
    // The vault caches these across request tasks.
    assert_send_sync::<SecretKey>();
    assert_send_sync::<Cipher>();
    assert_send_sync::<Hasher>();
    assert_send_sync::<RootKeyring>();
    assert_send_sync::<Token>();
}

#[test]
fn generated_keys_differ() {
    let a = SecretKey::generate().unwrap();
    let b = SecretKey::generate().unwrap();
    assert_ne!(a.expose_secret(), b.expose_secret());
    assert_ne!(a, b);
    assert_eq!(a, a.clone());
}

#[test]
fn from_bytes_round_trips() {
    let k = SecretKey::from_bytes([7; 32]);
    assert_eq!(k.expose_secret(), &[7; 32]);
}

#[test]
fn derive_is_deterministic_and_label_separated() {
    let k = SecretKey::from_bytes([5; 32]);
    let a1 = k.derive("blind-index").unwrap();
    let a2 = k.derive("blind-index").unwrap();
    let b = k.derive("ip-hash").unwrap();
    assert_eq!(a1.expose_secret(), a2.expose_secret());
    assert_ne!(a1.expose_secret(), b.expose_secret());
    // Derived keys differ from the parent and depend on it.
    assert_ne!(a1.expose_secret(), k.expose_secret());
    let other = SecretKey::from_bytes([6; 32])
        .derive("blind-index")
        .unwrap();
    assert_ne!(a1.expose_secret(), other.expose_secret());
}

#[test]
fn secret_key_debug_is_redacted() {
    let k = SecretKey::from_bytes([0xAB; 32]);
    let dbg = format!("{k:?}");
    assert_eq!(dbg, "SecretKey(<redacted>)");
    let pretty = format!("{k:#?}");
    assert!(!pretty.to_lowercase().contains("ab"), "{pretty}");
}

fn hasher(byte: u8) -> Hasher {
    Hasher::new(&SecretKey::from_bytes([byte; 32]))
}

#[test]
fn blind_index_is_deterministic() {
    let h = hasher(1);
    assert_eq!(
        h.blind_index("contacts", "email", "a@example.com"),
        h.blind_index("contacts", "email", "a@example.com")
    );
}

#[test]
fn blind_index_differs_across_inputs_and_keys() {
    let h = hasher(1);
    let base = h.blind_index("contacts", "email", "a@example.com");
    let variants = [
        h.blind_index("contactz", "email", "a@example.com"),
        h.blind_index("contacts", "phone", "a@example.com"),
        h.blind_index("contacts", "email", "b@example.com"),
        hasher(2).blind_index("contacts", "email", "a@example.com"),
    ];
    for v in variants {
        assert_ne!(base, v);
    }
}

#[test]
fn blind_index_has_no_concatenation_ambiguity() {
    let h = hasher(1);
    assert_ne!(h.blind_index("ab", "c", "x"), h.blind_index("a", "bc", "x"));
    assert_ne!(h.blind_index("c", "ab", "x"), h.blind_index("c", "a", "bx"));
    assert_ne!(h.blind_index("", "ab", ""), h.blind_index("ab", "", ""));
}

#[test]
fn keyed_hash_is_domain_separated() {
    let h = hasher(1);
    assert_eq!(h.keyed("ip", b"10.0.0.1"), h.keyed("ip", b"10.0.0.1"));
    assert_ne!(
        h.keyed("ip", b"10.0.0.1"),
        h.keyed("external_ref", b"10.0.0.1")
    );
    assert_ne!(h.keyed("ip", b"10.0.0.1"), h.keyed("ip", b"10.0.0.2"));
    assert_ne!(h.keyed("ab", b"c"), h.keyed("a", b"bc"));
    assert_ne!(
        h.keyed("ip", b"10.0.0.1"),
        hasher(2).keyed("ip", b"10.0.0.1")
    );
    // A keyed hash never equals a blind index of the "same" text.
    assert_ne!(
        h.keyed("contacts", b"email"),
        h.blind_index("contacts", "email", "")
    );
}

#[test]
fn aad_is_injective_on_swapped_parts() {
    let (a, b, c) = ([1u8; 16], [2u8; 16], [3u8; 16]);
    assert_ne!(
        aad::record(&a, &b, &c, "x", 1),
        aad::record(&b, &a, &c, "x", 1)
    );
    assert_ne!(
        aad::record(&a, &b, &c, "x", 1),
        aad::record(&a, &c, &b, "x", 1)
    );
    assert_ne!(
        aad::record(&a, &b, &c, "x", 1),
        aad::record(&c, &b, &a, "x", 1)
    );
    assert_ne!(aad::subject_key(&a, &b, 1), aad::subject_key(&b, &a, 1));
    assert_ne!(aad::hold_key(&a, &b, 1), aad::hold_key(&b, &a, 1));
    assert_ne!(aad::tenant_key(&a, 1), aad::tenant_key(&b, 1));
    assert_ne!(aad::tenant_key(&a, 1), aad::tenant_key(&a, 2));
    assert_ne!(
        aad::record(&a, &b, &c, "x", 1),
        aad::record(&a, &b, &c, "x", 2)
    );
    assert_ne!(
        aad::record_revision(&a, &b, &c, "x", 1, 1),
        aad::record_revision(&a, &b, &c, "x", 1, 2)
    );
    assert_ne!(
        aad::record_revision(&a, &b, &c, "x", 1, 2),
        aad::record_revision(&a, &b, &c, "x", 2, 1)
    );
}

#[test]
fn aad_kinds_never_collide() {
    let (a, b) = ([1u8; 16], [2u8; 16]);
    let all = [
        aad::subject_key(&a, &b, 1),
        aad::hold_key(&a, &b, 1),
        aad::tenant_key(&a, 1),
        aad::record(&a, &b, &b, "", 1),
        aad::record_revision(&a, &b, &b, "", 1, 1),
    ];
    let set: HashSet<_> = all.iter().collect();
    assert_eq!(set.len(), all.len());
}

#[test]
fn tokens_are_unique_and_prefixed() {
    let mut seen = HashSet::new();
    for _ in 0..100 {
        let t = Token::generate("ward_op").unwrap();
        let s = t.as_str();
        let rest = s.strip_prefix("ward_op_").expect("prefix");
        assert_eq!(rest.len(), 43);
        assert!(
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert!(seen.insert(s.to_owned()));
    }
}

#[test]
fn token_prefix_is_validated() {
    assert!(Token::generate("").is_err());
    assert!(Token::generate("ward op").is_err());
    assert!(Token::generate("ward-op").is_err());
    assert!(Token::generate("ward_key2").is_ok());
}

#[test]
fn token_hash_is_stable_sha256() {
    let t = Token::generate("ward_key").unwrap();
    assert_eq!(token_hash(t.as_str()), token_hash(t.as_str()));
    assert_eq!(t.hash(), token_hash(t.as_str()));
    assert_eq!(token_hash("abc"), sha256(b"abc"));
    assert_ne!(token_hash("ward_key_a"), token_hash("ward_key_b"));
}

#[test]
fn token_debug_hides_secret() {
    let t = Token::generate("ward_op").unwrap();
    let secret = &t.as_str()["ward_op_".len()..];
    let dbg = format!("{t:?}");
    assert!(!dbg.contains(secret), "{dbg}");
    assert_eq!(dbg, "Token(ward_op_<redacted>)");
}

#[test]
fn ct_eq_works() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(ct_eq(b"", b""));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(!ct_eq(b"", b"a"));
}

#[test]
fn random_bytes_are_random() {
    let a: [u8; 32] = random_bytes().unwrap();
    let b: [u8; 32] = random_bytes().unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0; 32]);
}

#[test]
fn key_version_display_and_order() {
    assert_eq!(KeyVersion(1).to_string(), "v1");
    assert_eq!(KeyVersion(42).to_string(), "v42");
    assert!(KeyVersion(2) > KeyVersion(1));
}
