//! `ward policy check` diagnostics and usage errors, because an operator must get the file,
//! line and column of a policy mistake, exit code 2 for a wrong invocation, and an error (not
//! an intact verdict) for a data directory that is not there.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{stdout, verify, ward};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[test]
fn policy_check_accepts_the_example() {
    let path = repo_root().join("examples/saas-policy.toml");
    let out = ward(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains(": ok ("), "{}", stdout(&out));
}

/// `FILE:LINE:COLUMN:` at the start of some stderr line, with the expected line.
fn assert_diagnostic_at(out: &Output, file: &Path, line: usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:{line}:", file.display());
    let ok = stderr.lines().any(|l| {
        l.strip_prefix(&prefix).is_some_and(|rest| {
            let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
            !col.is_empty() && rest[col.len()..].starts_with(':')
        })
    });
    assert!(ok, "no {prefix}COLUMN: diagnostic in stderr:\n{stderr}");
}

#[test]
fn policy_check_names_file_line_and_column_of_errors() {
    let example = std::fs::read_to_string(repo_root().join("examples/saas-policy.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A semantic error: an unknown field type.
    let broken = example.replacen("type = \"email\"", "type = \"emial\"", 1);
    assert_ne!(broken, example);
    let line = broken
        .lines()
        .position(|l| l.contains("\"emial\""))
        .unwrap()
        + 1;
    let file = dir.path().join("broken-type.toml");
    std::fs::write(&file, &broken).unwrap();
    let out = ward(&["policy", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_diagnostic_at(&out, &file, line);

    // A syntax error.
    let broken = example.replacen("[organization]", "[organization", 1);
    let line = broken.lines().position(|l| l == "[organization").unwrap() + 1;
    let file = dir.path().join("broken-syntax.toml");
    std::fs::write(&file, &broken).unwrap();
    let out = ward(&["policy", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_diagnostic_at(&out, &file, line);
}

#[test]
fn policy_check_refuses_bad_monitoring_rules_naming_the_field() {
    let example = std::fs::read_to_string(repo_root().join("examples/saas-policy.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, (table, needle)) in [
        (
            "[monitoring.rules.bulk_reads]\nthreshold = 5\n",
            "unknown rule `bulk_reads`",
        ),
        (
            "[monitoring.rules.bulk_read]\nthreshold = 0\n",
            "`threshold` in [monitoring.rules.bulk_read]",
        ),
        (
            "[monitoring.rules.bulk_read]\nseverity = \"loud\"\n",
            "`severity` in [monitoring.rules.bulk_read]",
        ),
        (
            "[monitoring.rules.repeated_denials]\nwindow = \"3d\"\n",
            "`window` in [monitoring.rules.repeated_denials]",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = dir.path().join(format!("monitoring-{i}.toml"));
        std::fs::write(&file, format!("{example}\n{table}")).unwrap();
        let out = ward(&["policy", "check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{table}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{table}: {stderr}");
        let line = example.lines().count() + 2;
        assert_diagnostic_at(&out, &file, if i == 0 { line } else { line + 1 });
    }
    let file = dir.path().join("monitoring-ok.toml");
    std::fs::write(
        &file,
        format!("{example}\n[monitoring.rules.bulk_read]\nthreshold = 50\nwindow = \"1h\"\n"),
    )
    .unwrap();
    assert_eq!(
        ward(&["policy", "check", file.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(ward(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        ward(&["audit", "verify", "--no-such-flag"]).status.code(),
        Some(2)
    );
    assert_eq!(ward(&["policy", "check"]).status.code(), Some(2));
    assert_eq!(ward(&[]).status.code(), Some(2));
}

#[test]
fn verifying_a_missing_data_directory_is_an_error_not_an_intact_log() {
    // A mistyped --data-dir must not be reported as "audit log intact" (exit 0), and checking
    // must not create a data directory, keys and an empty database as a side effect.
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no-such-ward-data");
    let out = verify(&missing, &[]);
    let created: Vec<String> = std::fs::read_dir(&missing)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !stdout(&out).contains("intact"),
        "a missing directory verified as intact: {}",
        stdout(&out)
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "expected the operational-error exit code"
    );
    assert!(
        !missing.exists(),
        "audit verify created {} with {created:?}",
        missing.display()
    );
}
