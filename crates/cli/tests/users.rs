//! `ward user …` and `ward roles` on a real data directory: a platform account is created
//! with TOTP enrolment, listed, given a reset token, disabled; the permission table prints.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn ward(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .env_remove("WARD_DATA_DIR")
        .env_remove("WARD_KEY_PROVIDER")
        .env_remove("WARD_CONFIG")
        .env_remove("WARD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ward");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("ward output");
    ward_testkit::cli::logged(args, out)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_support_account_is_added_listed_reset_and_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("data");
    let d = d.to_str().unwrap();
    assert!(ward(&["init", "--data-dir", d], "").status.success());
    let add = |email: &str, password: &str| {
        ward(
            &[
                "user",
                "add",
                "--data-dir",
                d,
                "--email",
                email,
                "--role",
                "support",
                "--password-stdin",
            ],
            password,
        )
    };
    // A common password is refused, naming the rule; nothing is created.
    let out = add("sue@example.com", "password1234\n");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("common"));
    let out = add("Sue@Example.com", "violet tractor pebble ocean\n");
    assert!(out.status.success());
    let t = text(&out);
    assert!(t.contains("user id: "), "{t}");
    assert!(
        t.contains("otpauth://totp/Ward:sue%40example.com?secret="),
        "{t}"
    );
    assert_eq!(
        t.lines()
            .filter(|l| l.starts_with("  ") && l.len() == 13)
            .count(),
        10,
        "{t}"
    );
    // The same address again is refused.
    assert_eq!(
        add("sue@example.com", "violet tractor pebble ocean")
            .status
            .code(),
        Some(3)
    );
    let list = text(&ward(&["user", "list", "--data-dir", d], ""));
    assert!(
        list.contains("sue@example.com") && list.contains("support"),
        "{list}"
    );
    let reset = ward(
        &[
            "user",
            "reset",
            "--data-dir",
            d,
            "--email",
            "sue@example.com",
        ],
        "",
    );
    assert!(reset.status.success());
    assert!(text(&reset).contains("ward_reset_"));
    let off = ward(
        &[
            "user",
            "disable",
            "--data-dir",
            d,
            "--email",
            "sue@example.com",
        ],
        "",
    );
    assert!(off.status.success());
    let list = text(&ward(&["user", "list", "--data-dir", d], ""));
    let line = list
        .lines()
        .find(|l| l.contains("sue@example.com"))
        .unwrap();
    assert!(
        !line.trim_end().ends_with('-'),
        "disabled shows a time: {line}"
    );
}

#[test]
fn roles_prints_the_permission_table() {
    let out = ward(&["roles"], "");
    assert!(out.status.success());
    let t = text(&out);
    let header = t.lines().next().unwrap();
    for role in ["operator", "support", "owner", "admin", "member", "auditor"] {
        assert!(header.contains(role), "{header}");
    }
    let records = t.lines().find(|l| l.starts_with("read records")).unwrap();
    let cells: Vec<&str> = records.split_whitespace().skip(2).collect();
    // operator, support, owner, admin, member, auditor
    assert_eq!(cells, ["-", "grant", "yes", "yes", "yes", "-"], "{records}");
}
