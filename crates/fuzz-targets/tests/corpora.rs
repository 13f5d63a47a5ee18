//! Replays every committed fuzz corpus entry and crash reproducer on stable, so what the
//! fuzzers found stays fixed: `fuzz/corpus/TARGET/*` (inputs that reached new coverage) and
//! `fuzz/regressions/TARGET/*` (inputs that once crashed a target, kept after the fix).

use std::path::{Path, PathBuf};

fn entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = read
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

#[test]
fn every_target_has_a_seed_corpus_and_a_cargo_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in ward_fuzz_targets::TARGETS {
        assert!(
            !entries(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}

#[test]
fn corpora_and_reproducers_replay_without_a_panic() {
    for (name, target) in ward_fuzz_targets::TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in entries(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).expect("read corpus entry");
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} panicked", file.display());
            }
        }
    }
}

/// Regenerates the seed dumps of `snapshot_dump` from a real store (an empty one, and one
/// with a tenant, subjects, records and audit events written by the vault through the API):
/// `cargo test -p ward-fuzz-targets --test corpora -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand after a format change"]
fn write_snapshot_dump_seeds() {
    use ward_store::SnapshotStream;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let server = ward_testkit::TestServer::start().await;
        let dir = fuzz_dir().join("corpus/snapshot_dump");
        for (label, populate) in [("empty", false), ("small", true)] {
            if populate {
                let tenant = server.tenant("seed").await;
                for _ in 0..3 {
                    let subject = server.subject(&tenant).await;
                    server
                        .contact(&tenant, &subject, "Seed Person", "seed@example.com")
                        .await;
                }
            }
            for stream in [SnapshotStream::Data, SnapshotStream::Keys] {
                let (tx, mut rx) = tokio::sync::mpsc::channel(16);
                let store = server.store.clone();
                let export = tokio::spawn(async move { store.export_snapshot(stream, tx).await });
                let mut dump = Vec::new();
                while let Some(piece) = rx.recv().await {
                    dump.extend_from_slice(&piece);
                }
                export.await.expect("join").expect("export");
                std::fs::write(dir.join(format!("{label}-{}", stream.as_str())), dump)
                    .expect("write seed");
            }
        }
    });
}

/// The seed dumps are real exports, so `check_dump` accepts each for its own stream only.
#[test]
fn seed_dumps_decode_for_their_own_stream() {
    use ward_store::{SnapshotStream, check_dump};
    let dir = fuzz_dir().join("corpus/snapshot_dump");
    for label in ["empty", "small"] {
        for (stream, other) in [
            (SnapshotStream::Data, SnapshotStream::Keys),
            (SnapshotStream::Keys, SnapshotStream::Data),
        ] {
            let dump =
                std::fs::read(dir.join(format!("{label}-{}", stream.as_str()))).expect("seed dump");
            let summary = check_dump(stream, &dump).expect("a real dump decodes");
            assert_eq!(summary.bytes, dump.len() as u64);
            assert!(
                check_dump(other, &dump).is_err(),
                "a dump decodes as the other stream"
            );
        }
    }
}
