//! `ward bench` end to end on a tiny load: every phase it is asked for runs against a real
//! server and store and reports a rate, so the benchmark cannot rot between the runs whose
//! figures go to BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn a_small_bench_runs_every_phase_and_reports_rates() {
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "bench",
            "--ops",
            "40",
            "--concurrency",
            "4",
            "--retention",
            "300",
        ])
        .env_remove("WARD_DATA_DIR")
        .env_remove("WARD_CONFIG")
        .output()
        .expect("run ward");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for phase in ["in-process put", "in-process get", "HTTP put", "HTTP get"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(phase))
            .unwrap_or_else(|| panic!("no {phase} line in:\n{stdout}"));
        assert!(
            line.contains("      40 ops in") && line.ends_with("ops/s"),
            "{line}"
        );
    }
    assert!(
        stdout.contains("retention: swept 300 expired records"),
        "{stdout}"
    );
}
