//! The repository on real local directories: round trips, deduplication, tampering and
//! repair, wrong keys, interrupted runs, an unreachable location, root-key rotation,
//! retention.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::mpsc;
use ward_backup::{
    BackupError, DUMP_ENTRY, EntryInput, Fault, LocationSpec, OpenMode, Repository, Retention,
    S3Options, SnapshotReport, Stream, Summary,
};
use ward_crypto::RootKeyring;
use ward_store::DumpPiece;

const T0: OffsetDateTime = datetime!(2026-12-04 03:00 UTC);

/// Deterministic pseudo-random bytes (xorshift), compressible enough to look like a dump.
fn dump(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = x.to_le_bytes();
        // Half random, half a repeated pattern, like rows of ciphertext and metadata.
        out.extend_from_slice(&word[..4]);
        out.extend_from_slice(b"row:");
    }
    out.truncate(len);
    out
}

/// An entry fed from `bytes` in 64 KiB buffers by a task, like the store's export.
fn entry(bytes: Vec<u8>) -> EntryInput {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        for piece in bytes.chunks(64 * 1024) {
            if tx
                .send(DumpPiece::Bytes(Bytes::copy_from_slice(piece)))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    EntryInput {
        name: DUMP_ENTRY.into(),
        data: rx,
    }
}

fn specs(dirs: &[&Path]) -> Vec<LocationSpec> {
    dirs.iter()
        .map(|d| LocationSpec::new(d.to_str().unwrap()))
        .collect()
}

async fn open(dirs: &[&Path], root: &RootKeyring, mode: OpenMode) -> Repository {
    Repository::open(&specs(dirs), &S3Options::default(), root, mode)
        .await
        .expect("open repository")
}

async fn backup(
    repo: &Repository,
    at: OffsetDateTime,
    stream: Stream,
    bytes: Vec<u8>,
) -> SnapshotReport {
    let summary = Summary {
        bytes: bytes.len() as u64,
        ..Summary::default()
    };
    repo.write_snapshot(stream, at, vec![entry(bytes)], async { Ok(summary) }, None)
        .await
        .expect("snapshot")
}

async fn restore(repo: &Repository, id: &ward_backup::SnapshotId) -> Vec<u8> {
    let manifest = repo.manifest(id).await.expect("manifest");
    repo.read_entry_bytes(manifest.entry(DUMP_ENTRY).expect("dump entry"))
        .await
        .expect("read")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_snapshot_restores_byte_for_byte_from_either_location() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[a.path(), b.path()], &root, OpenMode::ReadWrite).await;
    let data = dump(3 * 1024 * 1024 + 17, 1);
    let report = backup(&repo, T0, Stream::Data, data.clone()).await;
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.bytes_read, data.len() as u64);
    assert!(report.chunks > 3, "content-defined chunks of about 256 KiB");
    for dir in [a.path(), b.path()] {
        let only = open(&[dir], &root, OpenMode::ReadOnly).await;
        assert_eq!(only.snapshot_ids().await.unwrap(), vec![report.id.clone()]);
        assert_eq!(restore(&only, &report.id).await, data);
        // Nothing readable on disk: the pattern of the dump appears in no stored file.
        for f in files_under(dir) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !bytes.windows(8).any(|w| w == &data[..8]),
                "{}",
                f.display()
            );
        }
    }
    let latest = repo.resolve("latest").await.unwrap();
    assert_eq!(latest, report.id);
    assert!(matches!(
        repo.resolve("latest-keys").await,
        Err(BackupError::UnknownSnapshot(_))
    ));
}

#[tokio::test]
async fn a_second_backup_of_unchanged_data_writes_under_one_percent() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[dir.path()], &root, OpenMode::ReadWrite).await;
    let data = dump(8 * 1024 * 1024, 2);
    let first = backup(&repo, T0, Stream::Data, data.clone()).await;
    let second = backup(&repo, T0 + Duration::hours(1), Stream::Data, data.clone()).await;
    assert!(first.bytes_written() > 1024 * 1024);
    assert!(
        second.bytes_written() * 100 < first.bytes_written(),
        "second wrote {} of the first's {}",
        second.bytes_written(),
        first.bytes_written()
    );
    assert_eq!(second.bytes_new, 0);
    assert_eq!(second.bytes_deduplicated, data.len() as u64);
    let m = repo.manifest(&second.id).await.unwrap();
    assert_eq!(m.previous, Some(first.id.clone()));
    // A small change in the middle costs a few chunks, not the whole dump.
    let mut changed = data.clone();
    changed[4 * 1024 * 1024] ^= 0xff;
    let third = backup(
        &repo,
        T0 + Duration::hours(2),
        Stream::Data,
        changed.clone(),
    )
    .await;
    assert!(third.bytes_new <= 2 * 1024 * 1024, "{}", third.bytes_new);
    assert_eq!(restore(&repo, &third.id).await, changed);
}

#[tokio::test]
async fn a_flipped_byte_is_named_with_its_location_and_repaired_from_the_other() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[a.path(), b.path()], &root, OpenMode::ReadWrite).await;
    let data = dump(2 * 1024 * 1024, 3);
    let snap = backup(&repo, T0, Stream::Data, data.clone()).await;
    assert!(repo.verify(&snap.id).await.unwrap().ok());

    let victim = files_under(&b.path().join("objects"))[0].clone();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let object = victim
        .strip_prefix(b.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();

    let report = repo.verify(&snap.id).await.unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let p = &report.problems[0];
    assert_eq!(p.object, object);
    assert_eq!(p.location, b.path().to_str().unwrap());
    assert_eq!(p.fault, Fault::Corrupt);
    // A restore still succeeds: the good copy in the first location is used.
    assert_eq!(restore(&repo, &snap.id).await, data);

    let repaired = repo.repair().await.unwrap();
    assert_eq!(repaired.repaired.len(), 1, "{repaired:?}");
    assert!(repaired.unrepairable.is_empty());
    assert!(repo.verify(&snap.id).await.unwrap().ok());

    // A deleted object and a tampered manifest are found and mended too.
    std::fs::remove_file(&victim).unwrap();
    let manifest = a.path().join(snap.id.path());
    let mut m = std::fs::read(&manifest).unwrap();
    let last = m.len() - 1;
    m[last] ^= 0x80;
    std::fs::write(&manifest, &m).unwrap();
    let report = repo.verify(&snap.id).await.unwrap();
    let faults: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.location.as_str(), p.fault))
        .collect();
    assert!(
        faults.contains(&(a.path().to_str().unwrap(), Fault::Corrupt)),
        "{faults:?}"
    );
    assert!(
        faults.contains(&(b.path().to_str().unwrap(), Fault::Missing)),
        "{faults:?}"
    );
    repo.repair().await.unwrap();
    assert!(repo.verify(&snap.id).await.unwrap().ok());
}

#[tokio::test]
async fn a_wrong_root_key_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[dir.path()], &root, OpenMode::ReadWrite).await;
    backup(&repo, T0, Stream::Data, dump(100_000, 4)).await;
    let before = files_under(dir.path());

    let other = RootKeyring::generate().unwrap();
    for mode in [OpenMode::ReadWrite, OpenMode::ReadOnly] {
        let err = Repository::open(&specs(&[dir.path()]), &S3Options::default(), &other, mode)
            .await
            .unwrap_err();
        assert!(matches!(err, BackupError::WrongRootKey), "{err}");
    }
    assert_eq!(files_under(dir.path()), before);

    // A tampered config is refused the same way.
    let config = dir.path().join("config/00000001");
    let text = std::fs::read_to_string(&config).unwrap();
    let tampered = text.replacen(
        "\"signing_public_key\": \"",
        "\"signing_public_key\": \"A",
        1,
    );
    std::fs::write(&config, tampered).unwrap();
    let err = Repository::open(
        &specs(&[dir.path()]),
        &S3Options::default(),
        &root,
        OpenMode::ReadOnly,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BackupError::WrongRootKey), "{err}");
}

#[tokio::test]
async fn read_only_commands_never_create_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKeyring::generate().unwrap();
    let err = Repository::open(
        &specs(&[dir.path()]),
        &S3Options::default(),
        &root,
        OpenMode::ReadOnly,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BackupError::NoRepository), "{err}");
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test]
async fn an_interrupted_backup_leaves_no_manifest_and_the_next_run_reuses_its_objects() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[dir.path()], &root, OpenMode::ReadWrite).await;
    let data = dump(4 * 1024 * 1024, 5);
    // The store's export fails after sending everything (e.g. its transaction broke).
    let err = repo
        .write_snapshot(
            Stream::Data,
            T0,
            vec![entry(data.clone())],
            async { Err(BackupError::Task("export interrupted".into())) },
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("export interrupted"));
    assert!(repo.snapshot_ids().await.unwrap().is_empty());
    assert!(!dir.path().join("snapshots").exists());
    let leftover = files_under(&dir.path().join("objects")).len();
    assert!(leftover > 0);

    let again = backup(&repo, T0 + Duration::minutes(5), Stream::Data, data.clone()).await;
    assert_eq!(again.bytes_new, 0, "every chunk was already there");
    assert_eq!(restore(&repo, &again.id).await, data);
}

#[tokio::test]
async fn an_unreachable_location_fails_alone() {
    let good = tempfile::tempdir().unwrap();
    let blocker = tempfile::NamedTempFile::new().unwrap();
    // A directory under a regular file cannot exist.
    let bad = blocker.path().join("backups");
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[good.path(), &bad], &root, OpenMode::ReadWrite).await;
    assert_eq!(repo.unreachable().len(), 1);
    let report = backup(&repo, T0, Stream::Data, dump(500_000, 6)).await;
    assert!(!report.complete());
    let failed: Vec<_> = report
        .locations
        .iter()
        .filter(|l| l.error.is_some())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].location, bad.to_str().unwrap());
    let ok: Vec<_> = report
        .locations
        .iter()
        .filter(|l| l.error.is_none())
        .collect();
    assert_eq!(ok[0].location, good.path().to_str().unwrap());
    assert!(good.path().join(report.id.path()).exists());

    // Every location unreachable: an error, not a silent success.
    let err = Repository::open(
        &specs(&[&bad]),
        &S3Options::default(),
        &root,
        OpenMode::ReadWrite,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BackupError::NoReachableLocation(_)), "{err}");
}

#[tokio::test]
async fn a_root_key_rotation_rewraps_the_repository_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[dir.path()], &root, OpenMode::ReadWrite).await;
    let data = dump(300_000, 7);
    let snap = backup(&repo, T0, Stream::Data, data.clone()).await;

    let rotated = root.with_new_version().unwrap();
    let repo = open(&[dir.path()], &rotated, OpenMode::ReadWrite).await;
    assert_eq!(repo.config().sequence, 2);
    assert_eq!(repo.config().wrapped.len(), 2);
    let (new_version, _) = rotated.current();
    let only_new = rotated
        .versions()
        .into_iter()
        .filter(|v| *v != new_version)
        .fold(rotated.clone(), |ring, v| ring.without_version(v).unwrap());
    let repo = open(&[dir.path()], &only_new, OpenMode::ReadOnly).await;
    assert_eq!(restore(&repo, &snap.id).await, data);
    // Deduplication survives the rotation: chunk ids did not change.
    let repo = open(&[dir.path()], &only_new, OpenMode::ReadWrite).await;
    let again = backup(&repo, T0 + Duration::hours(1), Stream::Data, data).await;
    assert_eq!(again.bytes_new, 0);
}

#[tokio::test]
async fn prune_deletes_expired_snapshots_then_unreferenced_objects() {
    let dir = tempfile::tempdir().unwrap();
    let root = RootKeyring::generate().unwrap();
    let repo = open(&[dir.path()], &root, OpenMode::ReadWrite).await;
    let old_keys = backup(&repo, T0, Stream::Keys, dump(200_000, 8)).await;
    let old_data = backup(&repo, T0, Stream::Data, dump(400_000, 9)).await;
    let later = T0 + Duration::days(31);
    let new_keys = backup(&repo, later, Stream::Keys, dump(200_000, 10)).await;
    let new_data = backup(&repo, later, Stream::Data, dump(400_000, 11)).await;

    let report = repo.prune(&Retention::default(), later).await.unwrap();
    assert_eq!(report.snapshots_deleted, vec![old_keys.id.clone()]);
    assert!(report.objects_deleted > 0);
    let ids = repo.snapshot_ids().await.unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&old_data.id) && ids.contains(&new_keys.id) && ids.contains(&new_data.id));
    for id in &ids {
        assert!(repo.verify(id).await.unwrap().ok(), "{id}");
    }
    // A year later only the newest data snapshot's day... is past the maximum age too.
    let much_later = later + Duration::days(400);
    let report = repo.prune(&Retention::default(), much_later).await.unwrap();
    assert_eq!(report.snapshots_kept, 0);
    assert!(files_under(&dir.path().join("objects")).is_empty());
}
