//! The streaming verifier must pass an untouched log and name the first bad index for each
//! kind of tampering the design promises to detect.

use ward_audit::{
    CHAIN_GENESIS, Checkpoint, Frontier, Hash, PublicKey, SigningKey, Verifier, VerifyError,
    chain_hash, leaf_hash, root,
};

const ORIGIN: &str = "test.ward/audit";

/// One stored row as a storage backend would hand it over.
#[derive(Clone, Debug)]
struct Row {
    index: u64,
    event: Vec<u8>,
    chain: Hash,
}

/// Builds a well-formed log of `n` events the way the writer would.
fn log(n: u64) -> Vec<Row> {
    let mut chain = CHAIN_GENESIS;
    (0..n)
        .map(|index| {
            let event = format!(r#"{{"n":{index},"action":"read"}}"#).into_bytes();
            chain = chain_hash(&chain, &leaf_hash(&event));
            Row {
                index,
                event,
                chain,
            }
        })
        .collect()
}

/// Recomputes every chain value, as an attacker hiding an edit would.
fn rechain(rows: &mut [Row]) {
    let mut chain = CHAIN_GENESIS;
    for row in rows {
        chain = chain_hash(&chain, &leaf_hash(&row.event));
        row.chain = chain;
    }
}

fn checkpoint_at(key: &SigningKey, rows: &[Row], size: usize) -> Checkpoint {
    let leaves: Vec<Hash> = rows[..size].iter().map(|r| leaf_hash(&r.event)).collect();
    let chain = if size == 0 {
        CHAIN_GENESIS
    } else {
        rows[size - 1].chain
    };
    key.sign(ORIGIN, size as u64, root(&leaves), chain, 1_700_000_000)
}

/// Feeds all rows and returns the first error, if any.
fn run(rows: &[Row]) -> Result<Verifier, VerifyError> {
    let mut v = Verifier::new();
    for row in rows {
        v.feed(row.index, &row.event, &row.chain)?;
    }
    Ok(v)
}

fn key() -> (SigningKey, PublicKey) {
    let key = SigningKey::generate().unwrap();
    let public = key.public_key();
    (key, public)
}

#[test]
fn clean_log_passes_with_checkpoints() {
    let (key, public) = key();
    let rows = log(100);
    let checkpoints: Vec<Checkpoint> = [0, 1, 37, 64, 100]
        .iter()
        .map(|&s| checkpoint_at(&key, &rows, s))
        .collect();

    let mut v = Verifier::new();
    let mut next_cp = checkpoints.iter().peekable();
    loop {
        while let Some(cp) = next_cp.next_if(|cp| cp.tree_size == v.size()) {
            v.check_checkpoint(cp, &public).unwrap();
        }
        let Some(row) = rows.get(v.size() as usize) else {
            break;
        };
        v.feed(row.index, &row.event, &row.chain).unwrap();
    }
    assert!(next_cp.next().is_none(), "every checkpoint was checked");
    assert_eq!(v.size(), 100);
    assert_eq!(v.chain(), rows[99].chain);
    let leaves: Vec<Hash> = rows.iter().map(|r| leaf_hash(&r.event)).collect();
    assert_eq!(v.root(), root(&leaves));
    assert_eq!(v.frontier().root(), v.root());
    v.finish(Some(100)).unwrap();
    v.finish(None).unwrap();
    assert!(v.first_error().is_none());
}

#[test]
fn edited_event_is_named() {
    let mut rows = log(50);
    rows[17].event = br#"{"n":17,"action":"delete"}"#.to_vec();
    let err = run(&rows).unwrap_err();
    assert_eq!(err, VerifyError::ChainMismatch { index: 17 });
    assert_eq!(err.first_bad_index(), Some(17));
    assert!(err.to_string().contains("audit event 17 "), "{err}");
}

#[test]
fn edited_chain_value_is_named() {
    let mut rows = log(50);
    rows[3].chain[0] ^= 1;
    assert_eq!(
        run(&rows).unwrap_err(),
        VerifyError::ChainMismatch { index: 3 }
    );
}

#[test]
fn deleted_row_is_named() {
    let mut rows = log(50);
    rows.remove(17);
    let err = run(&rows).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Gap {
            expected: 17,
            found: 18
        }
    );
    assert_eq!(err.first_bad_index(), Some(17));
    assert!(err.to_string().contains("audit event 17 "), "{err}");

    // Deleting the first row is caught too.
    let mut rows = log(5);
    rows.remove(0);
    assert_eq!(
        run(&rows).unwrap_err(),
        VerifyError::Gap {
            expected: 0,
            found: 1
        }
    );
}

#[test]
fn inserted_row_is_named() {
    // Inserted with the next rows renumbered: the impostor sits at index 17.
    let mut rows = log(50);
    let forged = Row {
        index: 17,
        event: br#"{"n":999,"action":"read"}"#.to_vec(),
        chain: rows[17].chain,
    };
    rows.insert(17, forged.clone());
    for (i, row) in rows.iter_mut().enumerate() {
        row.index = i as u64;
    }
    assert_eq!(
        run(&rows).unwrap_err(),
        VerifyError::ChainMismatch { index: 17 }
    );

    // Inserted with a duplicate index, nothing renumbered: position 18 holds index 17.
    let mut rows = log(50);
    rows.insert(18, forged);
    let err = run(&rows).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Gap {
            expected: 18,
            found: 17
        }
    );
    assert_eq!(err.first_bad_index(), Some(18));
}

#[test]
fn swapped_rows_are_named() {
    // Contents (with their chain values) swapped between indices 10 and 20.
    let mut rows = log(50);
    let (a, b) = (rows[10].clone(), rows[20].clone());
    (rows[10].event, rows[10].chain) = (b.event, b.chain);
    (rows[20].event, rows[20].chain) = (a.event, a.chain);
    assert_eq!(
        run(&rows).unwrap_err(),
        VerifyError::ChainMismatch { index: 10 }
    );

    // Whole rows swapped, indices included: the order itself is wrong at position 10.
    let mut rows = log(50);
    rows.swap(10, 20);
    assert_eq!(
        run(&rows).unwrap_err(),
        VerifyError::Gap {
            expected: 10,
            found: 20
        }
    );

    // Adjacent swap with the chain recomputed to match: only the checkpoint notices.
    let (key, public) = key();
    let original = log(50);
    let cp = checkpoint_at(&key, &original, 50);
    let mut rows = original.clone();
    let (e30, e31) = (rows[30].event.clone(), rows[31].event.clone());
    rows[30].event = e31;
    rows[31].event = e30;
    rechain(&mut rows);
    let v = run(&rows).unwrap();
    assert_eq!(
        v.check_checkpoint(&cp, &public),
        Err(VerifyError::CheckpointMismatch { tree_size: 50 })
    );
}

#[test]
fn errors_are_sticky() {
    let mut rows = log(10);
    rows[4].event.push(b' ');
    let mut v = Verifier::new();
    for row in &rows[..4] {
        v.feed(row.index, &row.event, &row.chain).unwrap();
    }
    let first = v.feed(4, &rows[4].event, &rows[4].chain).unwrap_err();
    assert_eq!(first, VerifyError::ChainMismatch { index: 4 });
    // Later rows, even valid-looking ones, keep reporting the first failure.
    assert_eq!(
        v.feed(5, &rows[5].event, &rows[5].chain),
        Err(first.clone())
    );
    assert_eq!(v.first_error(), Some(&first));
    assert_eq!(v.finish(None), Err(first.clone()));
    assert_eq!(v.size(), 4);
}

#[test]
fn rewritten_chain_is_caught_by_the_checkpoint() {
    let (key, public) = key();
    let original = log(50);
    let early = checkpoint_at(&key, &original, 10);
    let late = checkpoint_at(&key, &original, 50);

    // The attacker edits event 17 and recomputes every chain value after it.
    let mut rows = original;
    rows[17].event = br#"{"n":17,"action":"nothing to see"}"#.to_vec();
    rechain(&mut rows);

    let mut v = Verifier::new();
    for row in &rows[..10] {
        v.feed(row.index, &row.event, &row.chain).unwrap();
    }
    v.check_checkpoint(&early, &public).unwrap();
    for row in &rows[10..] {
        v.feed(row.index, &row.event, &row.chain).unwrap();
    }
    let err = v.check_checkpoint(&late, &public).unwrap_err();
    assert_eq!(err, VerifyError::CheckpointMismatch { tree_size: 50 });
    assert!(err.to_string().contains("below 50"), "{err}");
}

#[test]
fn bad_checkpoints_are_reported() {
    let (key, public) = key();
    let rows = log(20);
    let v = run(&rows).unwrap();

    let good = checkpoint_at(&key, &rows, 20);
    v.check_checkpoint(&good, &public).unwrap();

    // Forged signature, wrong key.
    let mut forged = good.clone();
    forged.timestamp += 60;
    assert_eq!(
        v.check_checkpoint(&forged, &public),
        Err(VerifyError::BadSignature { tree_size: 20 })
    );
    let (other, _) = self::key();
    assert_eq!(
        v.check_checkpoint(&good, &other.public_key()),
        Err(VerifyError::BadSignature { tree_size: 20 })
    );

    // Validly signed but for different content.
    let mut other_rows = log(20);
    other_rows[0].event = b"{}".to_vec();
    rechain(&mut other_rows);
    let signed_other = checkpoint_at(&key, &other_rows, 20);
    assert_eq!(
        v.check_checkpoint(&signed_other, &public),
        Err(VerifyError::CheckpointMismatch { tree_size: 20 })
    );
    // Right root, wrong chain value.
    let wrong_chain = key.sign(ORIGIN, 20, v.root(), [7; 32], 0);
    assert_eq!(
        v.check_checkpoint(&wrong_chain, &public),
        Err(VerifyError::CheckpointMismatch { tree_size: 20 })
    );
    // Right chain, wrong root.
    let wrong_root = key.sign(ORIGIN, 20, [7; 32], v.chain(), 0);
    assert_eq!(
        v.check_checkpoint(&wrong_root, &public),
        Err(VerifyError::CheckpointMismatch { tree_size: 20 })
    );

    // Malformed field.
    let mut malformed = good.clone();
    malformed.root = "AAAA".into();
    assert!(matches!(
        v.check_checkpoint(&malformed, &public),
        Err(VerifyError::MalformedCheckpoint { tree_size: 20, .. })
    ));

    // Checked too late: a caller bug, not tampering.
    let early = checkpoint_at(&key, &rows, 5);
    assert_eq!(
        v.check_checkpoint(&early, &public),
        Err(VerifyError::NotAtCheckpoint {
            tree_size: 5,
            size: 20
        })
    );
}

#[test]
fn truncation_is_reported() {
    let (key, public) = key();
    let rows = log(50);
    let cp = checkpoint_at(&key, &rows, 50);
    let v = run(&rows[..40]).unwrap();

    let err = v.check_checkpoint(&cp, &public).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Truncated {
            checkpoint_size: 50,
            log_size: 40
        }
    );
    assert_eq!(err.first_bad_index(), Some(40));
    assert!(err.to_string().contains("from index 40"), "{err}");
    assert_eq!(v.finish(Some(50)), Err(err));
    v.finish(Some(40)).unwrap();

    // An unsigned "checkpoint" claiming a larger log cannot fake a truncation report.
    let mut fake = cp;
    fake.tree_size = 1000;
    assert_eq!(
        v.check_checkpoint(&fake, &public),
        Err(VerifyError::BadSignature { tree_size: 1000 })
    );
}

#[test]
fn resume_after_pruning_verifies_the_rest() {
    let (key, public) = key();
    let rows = log(100);
    let full_root = root(&rows.iter().map(|r| leaf_hash(&r.event)).collect::<Vec<_>>());

    // What the checkpointer persisted at size 60, before rows 0..60 were pruned.
    let cp60 = checkpoint_at(&key, &rows, 60);
    let leaves60: Vec<Hash> = rows[..60].iter().map(|r| leaf_hash(&r.event)).collect();
    let frontier_bytes = Frontier::from_leaves(&leaves60).to_bytes();
    let cp100 = checkpoint_at(&key, &rows, 100);
    let remaining = &rows[60..];

    let frontier = Frontier::from_bytes(&frontier_bytes).unwrap();
    let mut v = Verifier::resume(60, frontier, cp60.chain_hash().unwrap());
    v.check_checkpoint(&cp60, &public).unwrap();
    for row in remaining {
        v.feed(row.index, &row.event, &row.chain).unwrap();
    }
    v.check_checkpoint(&cp100, &public).unwrap();
    assert_eq!(v.root(), full_root);
    v.finish(Some(100)).unwrap();

    // The checked constructor does the same.
    let frontier = Frontier::from_bytes(&frontier_bytes).unwrap();
    let mut v = Verifier::resume_from_checkpoint(&cp60, &public, frontier).unwrap();
    for row in remaining {
        v.feed(row.index, &row.event, &row.chain).unwrap();
    }
    v.check_checkpoint(&cp100, &public).unwrap();

    // Tampering after the pruning point is still named.
    let mut tampered = remaining.to_vec();
    tampered[5].event.push(b'x');
    let frontier = Frontier::from_bytes(&frontier_bytes).unwrap();
    let mut v = Verifier::resume_from_checkpoint(&cp60, &public, frontier).unwrap();
    let err = tampered
        .iter()
        .try_for_each(|row| v.feed(row.index, &row.event, &row.chain))
        .unwrap_err();
    assert_eq!(err, VerifyError::ChainMismatch { index: 65 });

    // Deleting the first row after the pruning point is a gap at 60.
    let frontier = Frontier::from_bytes(&frontier_bytes).unwrap();
    let mut v = Verifier::resume_from_checkpoint(&cp60, &public, frontier).unwrap();
    assert_eq!(
        v.feed(61, &rows[61].event, &rows[61].chain),
        Err(VerifyError::Gap {
            expected: 60,
            found: 61
        })
    );
}

#[test]
fn resume_refuses_a_bad_frontier() {
    let (key, public) = key();
    let rows = log(100);
    let cp60 = checkpoint_at(&key, &rows, 60);
    let leaves: Vec<Hash> = rows.iter().map(|r| leaf_hash(&r.event)).collect();

    // Frontier of the wrong size.
    let short = Frontier::from_leaves(&leaves[..59]);
    let v = Verifier::resume(60, short.clone(), cp60.chain_hash().unwrap());
    let err = VerifyError::InconsistentResume {
        start_index: 60,
        frontier_size: 59,
    };
    assert_eq!(v.first_error(), Some(&err));
    assert_eq!(v.check_checkpoint(&cp60, &public), Err(err.clone()));
    assert_eq!(
        Verifier::resume_from_checkpoint(&cp60, &public, short).unwrap_err(),
        err
    );

    // Right size, wrong content: the persisted frontier was altered.
    let mut altered = leaves[..60].to_vec();
    altered[3][0] ^= 1;
    let forged = Frontier::from_leaves(&altered);
    assert_eq!(
        Verifier::resume_from_checkpoint(&cp60, &public, forged).unwrap_err(),
        VerifyError::CheckpointMismatch { tree_size: 60 }
    );
}

#[test]
fn large_events_use_the_scratch_path() {
    // Events larger than the stack buffer must verify identically.
    let mut chain = CHAIN_GENESIS;
    let mut v = Verifier::new();
    for (i, len) in [10usize, 5000, 1023, 1024, 70_000, 3]
        .into_iter()
        .enumerate()
    {
        let event = vec![b'a' + i as u8; len];
        chain = chain_hash(&chain, &leaf_hash(&event));
        v.feed(i as u64, &event, &chain).unwrap();
    }
    assert_eq!(v.chain(), chain);
}
