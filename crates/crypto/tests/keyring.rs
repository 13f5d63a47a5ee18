//! Root keyring format, rotation and key providers.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ward_crypto::{
    CommandKeyProvider, CryptoError, EnvKeyProvider, FileKeyProvider, KeyProvider, KeyVersion,
    RootKeyring, SecretKey,
};

fn b64(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

#[test]
fn parse_format_round_trip() {
    let text = format!(
        "# Ward root keys\n\n  v1:{}\n# retired soon\nv3:{}\nv2:{}\n",
        b64(1),
        b64(3),
        b64(2)
    );
    let ring = RootKeyring::parse(&text).unwrap();
    assert_eq!(
        ring.versions(),
        [KeyVersion(1), KeyVersion(2), KeyVersion(3)]
    );
    let (cur, key) = ring.current();
    assert_eq!(cur, KeyVersion(3));
    assert_eq!(key.expose_secret(), &[3; 32]);
    assert_eq!(ring.get(KeyVersion(2)).unwrap().expose_secret(), &[2; 32]);
    assert!(ring.get(KeyVersion(4)).is_none());

    let formatted = ring.to_text();
    assert_eq!(
        formatted.as_str(),
        format!("v1:{}\nv2:{}\nv3:{}\n", b64(1), b64(2), b64(3))
    );
    let again = RootKeyring::parse(&formatted).unwrap();
    assert_eq!(again.versions(), ring.versions());
    for v in ring.versions() {
        assert_eq!(again.get(v), ring.get(v));
    }
}

#[test]
fn parse_errors_never_echo_key_material() {
    let secretish = STANDARD.encode([0x5A; 31]); // valid base64, wrong length
    let cases = [
        format!("v1:{secretish}"),
        secretish.clone(),
        format!("x1:{}", b64(9)),
        format!("v:{}", b64(9)),
        format!("v0:{}", b64(9)),
        format!("v-1:{}", b64(9)),
        format!("v99999999999:{}", b64(9)),
        format!("v1:{}!", b64(9)),
        format!("v1:{}\nv1:{}", b64(9), b64(8)),
    ];
    for case in &cases {
        let err = RootKeyring::parse(case).expect_err(case);
        let msg = format!("{err} {err:?}");
        assert!(!msg.contains(&secretish), "{msg}");
        assert!(!msg.contains(&b64(9)[..20]), "{msg}");
        assert!(!msg.contains(&b64(8)[..20]), "{msg}");
    }
    assert!(matches!(
        RootKeyring::parse(&format!("# c\nv1:{secretish}")),
        Err(CryptoError::KeyringFormat { line: 2, .. })
    ));
    assert!(matches!(
        RootKeyring::parse(&format!("v1:{}\nv1:{}", b64(9), b64(8))),
        Err(CryptoError::DuplicateKeyVersion(KeyVersion(1)))
    ));
}

#[test]
fn empty_keyring_is_rejected() {
    assert!(matches!(
        RootKeyring::parse("# nothing\n\n"),
        Err(CryptoError::EmptyKeyring)
    ));
    assert!(matches!(
        RootKeyring::from_keys([]),
        Err(CryptoError::EmptyKeyring)
    ));
}

#[test]
fn keyring_debug_shows_versions_only() {
    let ring = RootKeyring::parse(&format!("v1:{}", b64(0x61))).unwrap();
    let dbg = format!("{ring:?}");
    assert!(dbg.contains("KeyVersion(1)"));
    assert!(!dbg.contains(&b64(0x61)[..10]), "{dbg}");
}

#[test]
fn rotation_adds_a_version_and_retirement_removes_one() {
    let ring = RootKeyring::generate().unwrap();
    assert_eq!(ring.versions(), [KeyVersion(1)]);
    let rotated = ring.with_new_version().unwrap();
    assert_eq!(rotated.versions(), [KeyVersion(1), KeyVersion(2)]);
    assert_eq!(rotated.current().0, KeyVersion(2));
    assert_ne!(rotated.current().1, ring.current().1);
    assert_eq!(rotated.get(KeyVersion(1)), ring.get(KeyVersion(1)));
    // The original is untouched.
    assert_eq!(ring.versions(), [KeyVersion(1)]);

    let retired = rotated.without_version(KeyVersion(1)).unwrap();
    assert_eq!(retired.versions(), [KeyVersion(2)]);
    let again = retired.with_new_version().unwrap();
    assert_eq!(again.current().0, KeyVersion(3));
}

#[test]
fn destroying_current_or_unknown_version_is_refused() {
    let ring = RootKeyring::generate().unwrap().with_new_version().unwrap();
    assert!(matches!(
        ring.without_version(KeyVersion(2)),
        Err(CryptoError::CurrentKeyVersion(KeyVersion(2)))
    ));
    assert!(matches!(
        ring.without_version(KeyVersion(7)),
        Err(CryptoError::UnknownKeyVersion(KeyVersion(7)))
    ));
}

#[test]
fn version_exhaustion_is_reported() {
    let ring =
        RootKeyring::from_keys([(KeyVersion(u32::MAX), SecretKey::from_bytes([1; 32]))]).unwrap();
    assert!(matches!(
        ring.with_new_version(),
        Err(CryptoError::KeyVersionExhausted)
    ));
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_provider_creates_0600_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ward-data").join("root.key");
    let p = FileKeyProvider::new(&path);
    assert!(p.describe().contains("root.key"));

    let (ring, created) = p.load_or_create().unwrap();
    assert!(created);
    assert_eq!(ring.versions(), [KeyVersion(1)]);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    let (again, created) = p.load_or_create().unwrap();
    assert!(!created);
    assert_eq!(again.current().1, ring.current().1);

    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["root.key"]);
}

#[test]
fn file_provider_refuses_group_or_world_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let p = FileKeyProvider::new(&path);
    p.load_or_create().unwrap();
    for bad in [0o644, 0o640, 0o604, 0o620] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        match p.load() {
            Err(CryptoError::InsecureKeyFile { mode, .. }) => assert_eq!(mode, bad),
            other => panic!("mode {bad:o}: expected InsecureKeyFile, got {other:?}"),
        }
        assert!(matches!(
            p.load_or_create(),
            Err(CryptoError::InsecureKeyFile { .. })
        ));
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    assert!(p.load().is_ok());
}

#[test]
fn file_provider_store_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let p = FileKeyProvider::new(&path);
    let (ring, _) = p.load_or_create().unwrap();
    let rotated = ring.with_new_version().unwrap();
    p.store(&rotated).unwrap();
    assert_eq!(mode(&path), 0o600);
    let loaded = p.load().unwrap();
    assert_eq!(loaded.versions(), [KeyVersion(1), KeyVersion(2)]);
    assert_eq!(loaded.current().1, rotated.current().1);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn file_provider_reports_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = FileKeyProvider::new(dir.path().join("absent.key"));
    match p.load() {
        Err(CryptoError::Io { context, source }) => {
            assert!(context.contains("absent.key"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io error, got {other:?}"),
    }
}

/// Environment variables can only be set with `unsafe` in edition 2024, which this crate
/// forbids, so the test re-runs itself in a child process with the variable set.
#[test]
fn env_provider_reads_var() {
    const VAR: &str = "WARD_CRYPTO_TEST_ROOT_KEY";
    if std::env::var_os("WARD_CRYPTO_TEST_CHILD").is_some() {
        let p = EnvKeyProvider::new(VAR);
        assert_eq!(p.describe(), format!("environment variable {VAR}"));
        let ring = p.load().unwrap();
        assert_eq!(ring.versions(), [KeyVersion(1), KeyVersion(2)]);
        assert_eq!(ring.current().1.expose_secret(), &[2; 32]);
        assert!(matches!(p.store(&ring), Err(CryptoError::ReadOnlyProvider)));
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "env_provider_reads_var",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WARD_CRYPTO_TEST_CHILD", "1")
        .env(VAR, format!("v1:{}\nv2:{}\n", b64(1), b64(2)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");
}

#[test]
fn env_provider_reports_missing_var() {
    let p = EnvKeyProvider::new("WARD_CRYPTO_TEST_SURELY_UNSET_VAR");
    assert!(matches!(
        p.load(),
        Err(CryptoError::EnvVar {
            reason: "not set",
            ..
        })
    ));
    assert_eq!(EnvKeyProvider::default().var(), "WARD_ROOT_KEY");
}

#[test]
fn command_provider_reads_stdout() {
    let p = CommandKeyProvider::new(
        "printf",
        [
            "%s\\n%s\\n",
            &format!("v1:{}", b64(4)),
            &format!("v5:{}", b64(5)),
        ],
    );
    assert_eq!(p.describe(), "key command printf");
    let ring = p.load().unwrap();
    assert_eq!(ring.versions(), [KeyVersion(1), KeyVersion(5)]);
    assert_eq!(ring.current().1.expose_secret(), &[5; 32]);
    assert!(matches!(p.store(&ring), Err(CryptoError::ReadOnlyProvider)));
}

#[test]
fn command_provider_reports_failure_with_first_stderr_line() {
    let p = CommandKeyProvider::new(
        "sh",
        [
            "-c",
            "echo 'kms unreachable: timeout' >&2; echo 'second line' >&2; exit 3",
        ],
    );
    match p.load() {
        Err(CryptoError::ProviderCommand { program, message }) => {
            assert_eq!(program, "sh");
            assert!(message.contains("kms unreachable: timeout"), "{message}");
            assert!(!message.contains("second line"), "{message}");
            assert!(message.contains('3'), "{message}");
        }
        other => panic!("expected ProviderCommand, got {other:?}"),
    }
}

#[test]
fn command_provider_reports_missing_program_and_bad_output() {
    let p = CommandKeyProvider::new("/nonexistent/ward-kms-tool", Vec::<String>::new());
    assert!(matches!(p.load(), Err(CryptoError::ProviderCommand { .. })));

    let p = CommandKeyProvider::new("printf", ["not a keyring"]);
    assert!(matches!(
        p.load(),
        Err(CryptoError::KeyringFormat { line: 1, .. })
    ));
}
