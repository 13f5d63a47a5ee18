//! Checkpoint signatures must bind every field, and the key file must stay private.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ward_audit::{Checkpoint, CheckpointError, PublicKey, SigningKey};

const ROOT: [u8; 32] = [0x11; 32];
const CHAIN: [u8; 32] = [0x22; 32];

fn signed(key: &SigningKey) -> Checkpoint {
    key.sign("ward.example/audit", 1234, ROOT, CHAIN, 1_700_000_000)
}

#[test]
fn sign_and_verify() {
    let key = SigningKey::generate().unwrap();
    let cp = signed(&key);
    cp.verify(&key.public_key()).unwrap();
    assert_eq!(cp.root_hash().unwrap(), ROOT);
    assert_eq!(cp.chain_hash().unwrap(), CHAIN);
    assert_eq!(cp.tree_size, 1234);
    assert_eq!(cp.timestamp, 1_700_000_000);
}

#[test]
fn documented_message_format_verifies_offline() {
    // A third party with only the JSON and the public key rebuilds the message as the
    // module docs describe and checks it with a plain Ed25519 verifier.
    let key = SigningKey::generate().unwrap();
    let cp = key.sign("origin", 7, ROOT, CHAIN, -5);
    let message = format!(
        "ward.audit.checkpoint.v1\norigin\n7\n{}\n{}\n-5\n",
        STANDARD.encode(ROOT),
        STANDARD.encode(CHAIN)
    );
    assert_eq!(cp.signed_message(), message.as_bytes());
    let signature = STANDARD.decode(&cp.signature).unwrap();
    UnparsedPublicKey::new(&ED25519, key.public_key().as_bytes())
        .verify(message.as_bytes(), &signature)
        .unwrap();
}

#[test]
fn tampering_with_any_field_fails() {
    let key = SigningKey::generate().unwrap();
    let public = key.public_key();
    let good = signed(&key);
    let other_hash = STANDARD.encode([0x33u8; 32]);

    let mut tampered: Vec<(&str, Checkpoint)> = Vec::new();
    let mut cp = good.clone();
    cp.origin.push('x');
    tampered.push(("origin", cp));
    let mut cp = good.clone();
    cp.tree_size += 1;
    tampered.push(("tree_size", cp));
    let mut cp = good.clone();
    cp.root.clone_from(&other_hash);
    tampered.push(("root", cp));
    let mut cp = good.clone();
    cp.chain.clone_from(&other_hash);
    tampered.push(("chain", cp));
    let mut cp = good.clone();
    cp.timestamp -= 1;
    tampered.push(("timestamp", cp));
    let mut cp = good.clone();
    let mut sig = STANDARD.decode(&cp.signature).unwrap();
    sig[10] ^= 1;
    cp.signature = STANDARD.encode(&sig);
    tampered.push(("signature", cp));
    let mut cp = good.clone();
    (cp.root, cp.chain) = (cp.chain.clone(), cp.root.clone());
    tampered.push(("root and chain swapped", cp));

    for (what, cp) in tampered {
        assert!(
            matches!(
                cp.verify(&public),
                Err(CheckpointError::BadSignature { .. })
            ),
            "tampered {what} accepted"
        );
    }
}

#[test]
fn malformed_fields_are_refused() {
    let key = SigningKey::generate().unwrap();
    let public = key.public_key();
    let good = signed(&key);

    let mut cp = good.clone();
    cp.root = STANDARD.encode([0u8; 31]);
    assert!(matches!(
        cp.verify(&public),
        Err(CheckpointError::MalformedField { field: "root", .. })
    ));
    assert!(cp.root_hash().is_err());
    let mut cp = good.clone();
    cp.chain = "not base64!".into();
    assert!(cp.verify(&public).is_err());
    assert!(cp.chain_hash().is_err());
    let mut cp = good.clone();
    cp.signature.truncate(10);
    assert!(matches!(
        cp.verify(&public),
        Err(CheckpointError::MalformedField {
            field: "signature",
            ..
        })
    ));

    // An origin with a newline would make the signed lines ambiguous: never valid, even
    // when signed by the right key.
    let cp = key.sign("two\nlines", 1, ROOT, CHAIN, 0);
    assert!(matches!(
        cp.verify(&public),
        Err(CheckpointError::MalformedOrigin)
    ));
}

#[test]
fn a_different_key_fails() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    assert_ne!(key.public_key(), other.public_key());
    let cp = signed(&key);
    assert!(matches!(
        cp.verify(&other.public_key()),
        Err(CheckpointError::BadSignature { tree_size: 1234 })
    ));
}

#[test]
fn json_round_trip() {
    let key = SigningKey::generate().unwrap();
    let cp = signed(&key);
    let json = serde_json::to_string(&cp).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for field in [
        "origin",
        "tree_size",
        "root",
        "chain",
        "timestamp",
        "signature",
    ] {
        assert!(value.get(field).is_some(), "missing {field} in {json}");
    }
    let back: Checkpoint = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cp);
    back.verify(&key.public_key()).unwrap();
}

#[test]
fn public_key_encodings() {
    let key = SigningKey::generate().unwrap();
    let public = key.public_key();
    let text = public.to_base64();
    assert_eq!(text.len(), 44);
    assert_eq!(public.to_string(), text);
    assert_eq!(PublicKey::from_base64(&text).unwrap(), public);
    assert_eq!(text.parse::<PublicKey>().unwrap(), public);
    let json = serde_json::to_string(&public).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), public);
    assert!(PublicKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
    assert!(PublicKey::from_base64("").is_err());
    assert!(serde_json::from_str::<PublicKey>("\"AAAA\"").is_err());
    assert!(
        format!("{key:?}").contains(&text),
        "Debug shows the public key"
    );
}

#[test]
fn key_file_is_private_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.key");

    let (key, created) = SigningKey::load_or_create(&path).unwrap();
    assert!(created);
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (again, created) = SigningKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(again.public_key(), key.public_key());
    // The reloaded key signs checkpoints the original key's public half accepts.
    signed(&again).verify(&key.public_key()).unwrap();

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = SigningKey::load_or_create(&path).unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::InsecurePermissions { mode: 0o644, .. }
        ),
        "{err}"
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        SigningKey::load_or_create(&path),
        Err(CheckpointError::InsecurePermissions { .. })
    ));
    // Owner-only again: accepted, same key.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    let (ro, created) = SigningKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(ro.public_key(), key.public_key());
}

#[test]
fn key_file_content_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.key");
    fs::write(&path, b"not a pkcs8 document").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        SigningKey::load_or_create(&path),
        Err(CheckpointError::InvalidKey { .. })
    ));
    // A directory in the way is reported, not overwritten.
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        SigningKey::load_or_create(&sub),
        Err(CheckpointError::NotAFile { .. })
    ));
    // A missing parent directory is an I/O error, not a panic.
    assert!(matches!(
        SigningKey::load_or_create(&dir.path().join("missing/audit.key")),
        Err(CheckpointError::Io { .. })
    ));
}
