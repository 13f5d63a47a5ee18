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
