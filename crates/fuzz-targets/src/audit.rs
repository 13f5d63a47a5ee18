//! The audit log's proof verifiers and the checkpoint parser.

use ward_audit::{
    Checkpoint, Frontier, Hash, PublicKey, consistency_proof, inclusion_proof, leaf_hash,
    verify_consistency, verify_inclusion,
};

/// Reads hashes and sizes from the bytes and checks proofs two ways: arbitrary proofs must be
/// refused or accepted without a panic, and for a tree built from the input, every proof the
/// log produces verifies while the same proof with one bit flipped does not.
pub fn audit_proof(data: &[u8]) {
    let mut input = Input(data);
    let size = u64::from(input.byte()) + 1;
    let index = u64::from(input.byte()) % (size + 2);
    let old = u64::from(input.byte()) % (size + 2);
    let leaves: Vec<Hash> = (0..size).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let root = Frontier::from_leaves(&leaves).root();

    // Arbitrary claims: never a panic, and a random proof of a real leaf is refused.
    let claimed: Vec<Hash> = std::iter::from_fn(|| input.hash()).take(64).collect();
    let fake = verify_inclusion(&leaf_hash(b"x"), index, size, &claimed, &root);
    assert!(
        fake.is_err(),
        "an inclusion proof of a leaf not in the tree verified"
    );
    let _ = verify_consistency(old, size, &root, &root, &claimed);

    if index < size {
        let proof = inclusion_proof(&leaves, index, size).expect("proof of an index in range");
        verify_inclusion(&leaves[index as usize], index, size, &proof, &root)
            .expect("the log's own inclusion proof verifies");
        if let Some(bit) = input.flip(proof.len()) {
            let mut bad = proof.clone();
            bad[bit.0][bit.1 / 8] ^= 1 << (bit.1 % 8);
            assert!(
                verify_inclusion(&leaves[index as usize], index, size, &bad, &root).is_err(),
                "a tampered inclusion proof verified"
            );
        }
    }
    if old > 0 && old <= size {
        let old_root = Frontier::from_leaves(&leaves[..old as usize]).root();
        let proof = consistency_proof(&leaves, old, size).expect("consistency proof in range");
        verify_consistency(old, size, &old_root, &root, &proof)
            .expect("the log's own consistency proof verifies");
        if let Some(bit) = input.flip(proof.len()) {
            let mut bad = proof.clone();
            bad[bit.0][bit.1 / 8] ^= 1 << (bit.1 % 8);
            assert!(
                verify_consistency(old, size, &old_root, &root, &bad).is_err(),
                "a tampered consistency proof verified"
            );
        }
    }
}

/// Parses the bytes as a checkpoint (the JSON Ward serves and stores) and as the other
/// encoded forms a verifier reads: a public key in base64 and a persisted frontier. Nothing
/// parsed from random bytes may verify under Ward's key.
pub fn checkpoint(data: &[u8]) {
    if let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(data) {
        let _ = checkpoint.root_hash();
        let _ = checkpoint.chain_hash();
        let _ = checkpoint.signed_message();
        let key = PublicKey::from_bytes([7; 32]);
        assert!(
            checkpoint.verify(&key).is_err(),
            "a checkpoint from random bytes verified"
        );
    }
    let key = std::str::from_utf8(data)
        .ok()
        .and_then(|text| PublicKey::from_base64(text).ok());
    if let Some(key) = key {
        assert_eq!(
            PublicKey::from_base64(&key.to_base64()).ok(),
            Some(key),
            "public keys round-trip through base64"
        );
    }
    if let Ok(frontier) = Frontier::from_bytes(data) {
        let again = Frontier::from_bytes(&frontier.to_bytes()).expect("a frontier re-parses");
        assert_eq!(again.root(), frontier.root(), "frontiers round-trip");
    }
}

/// A cursor over the fuzzer's bytes; past the end it yields zeros and no hashes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn hash(&mut self) -> Option<Hash> {
        let (head, rest) = self.0.split_first_chunk::<32>()?;
        self.0 = rest;
        Some(*head)
    }

    /// Which bit of a proof of `len` hashes to flip, if the proof is not empty.
    fn flip(&mut self, len: usize) -> Option<(usize, usize)> {
        (len > 0).then(|| {
            let at = usize::from(self.byte()) % len;
            (at, usize::from(self.byte()))
        })
    }
}
