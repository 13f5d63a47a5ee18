//! Sealing, opening and key wrapping.

use proptest::prelude::*;
use ward_crypto::{
    ALGORITHM_AES_256_GCM, Cipher, CryptoError, NONCE_LEN, SEAL_OVERHEAD, SecretKey, TAG_LEN, aad,
};

const T: [u8; 16] = [1; 16];
const S: [u8; 16] = [2; 16];
const R: [u8; 16] = [3; 16];

fn cipher() -> Cipher {
    Cipher::new(&SecretKey::generate().unwrap()).unwrap()
}

fn record_aad() -> Vec<u8> {
    aad::record(&T, &S, &R, "contacts", 1)
}

fn assert_integrity(r: Result<impl std::fmt::Debug, CryptoError>) {
    match r {
        Err(CryptoError::Integrity) => {}
        other => panic!("expected Integrity error, got {other:?}"),
    }
}

#[test]
fn round_trip() {
    let c = cipher();
    let sealed = c.seal(b"hello world", &record_aad()).unwrap();
    assert_eq!(sealed.len(), SEAL_OVERHEAD + 11);
    assert_eq!(sealed[0], ALGORITHM_AES_256_GCM);
    assert_eq!(&c.open(&sealed, &record_aad()).unwrap()[..], b"hello world");
}

#[test]
fn empty_plaintext_round_trips() {
    let c = cipher();
    let sealed = c.seal(b"", b"").unwrap();
    assert_eq!(sealed.len(), SEAL_OVERHEAD);
    assert!(c.open(&sealed, b"").unwrap().is_empty());
}

#[test]
fn ciphertext_does_not_contain_plaintext() {
    let c = cipher();
    let pt = b"a fairly long and recognisable plaintext value";
    let sealed = c.seal(pt, b"").unwrap();
    assert!(!sealed.windows(pt.len()).any(|w| w == pt));
}

#[test]
fn same_plaintext_seals_differently() {
    let c = cipher();
    let a = c.seal(b"same", &record_aad()).unwrap();
    let b = c.seal(b"same", &record_aad()).unwrap();
    assert_ne!(a, b);
    assert_ne!(
        a[1..1 + NONCE_LEN],
        b[1..1 + NONCE_LEN],
        "nonces must differ"
    );
}

#[test]
fn wrong_aad_each_part_fails() {
    let c = cipher();
    let sealed = c.seal(b"secret", &record_aad()).unwrap();
    let other = [9u8; 16];
    let wrong = [
        aad::record(&other, &S, &R, "contacts", 1),
        aad::record(&T, &other, &R, "contacts", 1),
        aad::record(&T, &S, &other, "contacts", 1),
        aad::record(&T, &S, &R, "contactz", 1),
        aad::record(&T, &S, &R, "contacts", 2),
        aad::subject_key(&T, &S, 1),
        Vec::new(),
    ];
    for w in &wrong {
        assert_integrity(c.open(&sealed, w));
    }
    // Sanity: the right AAD still works, so the failures above are due to the AAD.
    assert!(c.open(&sealed, &record_aad()).is_ok());
}

#[test]
fn wrong_key_fails() {
    let sealed = cipher().seal(b"secret", &record_aad()).unwrap();
    assert_integrity(cipher().open(&sealed, &record_aad()));
}

#[test]
fn bit_flips_in_every_region_fail() {
    let c = cipher();
    let sealed = c.seal(b"some secret payload", &record_aad()).unwrap();
    let n = sealed.len();
    // algorithm byte, first/last nonce byte, ciphertext, first/last tag byte
    for idx in [
        0,
        1,
        NONCE_LEN,
        1 + NONCE_LEN,
        1 + NONCE_LEN + 5,
        n - TAG_LEN,
        n - 1,
    ] {
        let mut bad = sealed.clone();
        bad[idx] ^= 0x01;
        assert_integrity(c.open(&bad, &record_aad()));
    }
}

#[test]
fn unknown_algorithm_fails() {
    let c = cipher();
    let mut sealed = c.seal(b"x", &record_aad()).unwrap();
    for alg in [0u8, 2, 255] {
        sealed[0] = alg;
        assert_integrity(c.open(&sealed, &record_aad()));
    }
}

#[test]
fn truncated_input_fails() {
    let c = cipher();
    let sealed = c.seal(b"payload", &record_aad()).unwrap();
    for len in 0..sealed.len() {
        assert_integrity(c.open(&sealed[..len], &record_aad()));
    }
    let mut extended = sealed.clone();
    extended.push(0);
    assert_integrity(c.open(&extended, &record_aad()));
}

#[test]
fn wrap_unwrap() {
    let root = cipher();
    let tenant_key = SecretKey::generate().unwrap();
    let ad = aad::tenant_key(&T, 1);
    let wrapped = root.wrap(&tenant_key, &ad).unwrap();
    assert_eq!(wrapped.len(), SEAL_OVERHEAD + 32);
    let unwrapped = root.unwrap(&wrapped, &ad).unwrap();
    assert_eq!(unwrapped.expose_secret(), tenant_key.expose_secret());
    // Wrapped under root v1, so it must not unwrap as if under v2 or for another tenant.
    assert_integrity(root.unwrap(&wrapped, &aad::tenant_key(&T, 2)));
    assert_integrity(root.unwrap(&wrapped, &aad::tenant_key(&S, 1)));
    assert_integrity(cipher().unwrap(&wrapped, &ad));
}

#[test]
fn unwrap_of_non_key_payload_is_rejected() {
    let c = cipher();
    let sealed = c.seal(b"not a key", b"ad").unwrap();
    assert!(matches!(
        c.unwrap(&sealed, b"ad"),
        Err(CryptoError::InvalidKeyLength { actual: 9 })
    ));
}

#[test]
fn wrapped_key_is_bound_to_its_kind() {
    // A subject key's wrapping cannot be replayed as a hold key with the same ids.
    let c = cipher();
    let k = SecretKey::generate().unwrap();
    let wrapped = c.wrap(&k, &aad::subject_key(&T, &S, 1)).unwrap();
    assert_integrity(c.unwrap(&wrapped, &aad::hold_key(&T, &S, 1)));
}

#[test]
fn cipher_debug_is_redacted() {
    let key = SecretKey::from_bytes([0x41; 32]);
    let dbg = format!("{:?}", Cipher::new(&key).unwrap());
    assert!(!dbg.contains("41") && !dbg.contains("AAAA"), "{dbg}");
}

fn test_cipher() -> &'static Cipher {
    static C: std::sync::OnceLock<Cipher> = std::sync::OnceLock::new();
    C.get_or_init(cipher)
}

proptest! {
    #[test]
    fn any_plaintext_and_aad_round_trip(
        pt in proptest::collection::vec(any::<u8>(), 0..1024),
        ad in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let c = test_cipher();
        let sealed = c.seal(&pt, &ad).unwrap();
        prop_assert_eq!(sealed.len(), pt.len() + SEAL_OVERHEAD);
        prop_assert_eq!(&c.open(&sealed, &ad).unwrap()[..], &pt[..]);
    }

    #[test]
    fn any_single_bit_flip_fails(
        pt in proptest::collection::vec(any::<u8>(), 0..256),
        ad in proptest::collection::vec(any::<u8>(), 0..64),
        bit in any::<usize>(),
    ) {
        let c = test_cipher();
        let mut sealed = c.seal(&pt, &ad).unwrap();
        let bit = bit % (sealed.len() * 8);
        sealed[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(matches!(c.open(&sealed, &ad), Err(CryptoError::Integrity)));
    }

    #[test]
    fn any_single_bit_flip_of_aad_fails(
        pt in proptest::collection::vec(any::<u8>(), 0..64),
        ad in proptest::collection::vec(any::<u8>(), 1..64),
        bit in any::<usize>(),
    ) {
        let c = test_cipher();
        let sealed = c.seal(&pt, &ad).unwrap();
        let mut bad = ad.clone();
        let bit = bit % (bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(matches!(c.open(&sealed, &bad), Err(CryptoError::Integrity)));
    }
}
