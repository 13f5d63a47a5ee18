//! Checking and mending locations one by one: every object of a snapshot read back from
//! every location, decrypted and hash-checked; the manifest's signature checked; a bad or
//! missing copy replaced by a good copy from another location.

use std::collections::BTreeSet;

use bytes::Bytes;
use futures::StreamExt as _;
use serde::Serialize;

use crate::id::{ObjectId, SnapshotId};
use crate::location::Location;
use crate::manifest::Manifest;
use crate::repository::Repository;
use crate::{BackupError, Result};

/// Objects checked at once per location.
const CHECKS_IN_FLIGHT: usize = 8;

/// What is wrong with one copy of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Not in the location.
    Missing,
    /// There, but it fails decryption, decompression, the hash or the signature.
    Corrupt,
    /// The location could not be read.
    Unreadable,
}

/// One bad copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The location holding (or lacking) the copy.
    pub location: String,
    /// The object's path in the repository (`objects/…` or `snapshots/…`).
    pub object: String,
    /// What is wrong.
    pub fault: Fault,
}

/// The outcome of verifying one snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The snapshot.
    pub snapshot: SnapshotId,
    /// Objects per location checked (manifest included).
    pub objects_checked: u64,
    /// Locations checked.
    pub locations: Vec<String>,
    /// Every bad copy found.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problem anywhere.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What `repair` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepairReport {
    /// Copies replaced or added.
    pub repaired: Vec<Problem>,
    /// Objects with no good copy anywhere (lost).
    pub unrepairable: Vec<String>,
}

impl Repository {
    /// Verifies snapshot `id` in every location.
    ///
    /// # Errors
    /// [`BackupError::UnknownSnapshot`] if no location has it; a bad manifest everywhere is
    /// reported as problems, not an error.
    pub async fn verify(&self, id: &SnapshotId) -> Result<VerifyReport> {
        let manifest = match self.manifest(id).await {
            Ok(m) => Some(m),
            Err(BackupError::BadManifest(_)) => None,
            Err(e) => return Err(e),
        };
        let objects: BTreeSet<ObjectId> =
            manifest.as_ref().map(Manifest::objects).unwrap_or_default();
        let mut problems = Vec::new();
        for l in &self.locations {
            if let Some(fault) = self.check_manifest(l, id).await {
                problems.push(Problem {
                    location: l.name().to_owned(),
                    object: id.path(),
                    fault,
                });
            }
            problems.extend(self.check_objects(l, &objects).await);
        }
        Ok(VerifyReport {
            snapshot: id.clone(),
            objects_checked: objects.len() as u64 + 1,
            locations: self.locations.iter().map(|l| l.name().to_owned()).collect(),
            problems,
        })
    }

    /// Replaces every missing or corrupt copy of every snapshot's manifest and objects (and
    /// the config) from a location with a good copy.
    ///
    /// # Errors
    /// If a location cannot be written.
    pub async fn repair(&self) -> Result<RepairReport> {
        let mut report = RepairReport::default();
        for id in self.snapshot_ids().await? {
            let manifest = match self.manifest(&id).await {
                Ok(m) => m,
                Err(_) => {
                    report.unrepairable.push(id.path());
                    continue;
                }
            };
            let sealed = manifest.seal(&self.keys).map(Bytes::from)?;
            for l in &self.locations {
                if let Some(fault) = self.check_manifest(l, &id).await {
                    // A re-sealed manifest is as good as the original: same content, same
                    // signature check, bound to the same path.
                    replace(l, &id.path(), sealed.clone(), fault).await?;
                    report.repaired.push(problem(l, id.path(), fault));
                }
            }
            for l in &self.locations {
                for p in self.check_objects(l, &manifest.objects()).await {
                    let Some(id) = ObjectId::from_path(&p.object) else {
                        continue;
                    };
                    match self.good_copy(id).await {
                        Some(bytes) => {
                            replace(l, &p.object, bytes, p.fault).await?;
                            report.repaired.push(p);
                        }
                        None => {
                            if !report.unrepairable.contains(&p.object) {
                                report.unrepairable.push(p.object);
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Whether `l` holds a good copy of snapshot `id`'s manifest.
    pub async fn holds_manifest(&self, l: &Location, id: &SnapshotId) -> bool {
        self.check_manifest(l, id).await.is_none()
    }

    /// A location's copy of a manifest: `None` if good.
    async fn check_manifest(&self, l: &Location, id: &SnapshotId) -> Option<Fault> {
        match l.get(&id.path()).await {
            Ok(Some(bytes)) => Manifest::open(&self.keys, id, &bytes)
                .err()
                .map(|_| Fault::Corrupt),
            Ok(None) => Some(Fault::Missing),
            Err(_) => Some(Fault::Unreadable),
        }
    }

    /// Every bad copy of `objects` in `l`.
    async fn check_objects(&self, l: &Location, objects: &BTreeSet<ObjectId>) -> Vec<Problem> {
        let checks = futures::stream::iter(objects.iter().copied())
            .map(|id| async move {
                let fault = match l.get(&id.path()).await {
                    Ok(Some(bytes)) => match self.decode(id, bytes).await {
                        Ok(Some(_)) => None,
                        _ => Some(Fault::Corrupt),
                    },
                    Ok(None) => Some(Fault::Missing),
                    Err(_) => Some(Fault::Unreadable),
                };
                fault.map(|f| problem(l, id.path(), f))
            })
            .buffer_unordered(CHECKS_IN_FLIGHT);
        let mut found: Vec<Problem> = checks.filter_map(|p| async { p }).collect().await;
        found.sort_by(|a, b| a.object.cmp(&b.object));
        found
    }

    /// The stored bytes of a copy of `id` that decodes, from any location.
    async fn good_copy(&self, id: ObjectId) -> Option<Bytes> {
        for l in &self.locations {
            if let Ok(Some(bytes)) = l.get(&id.path()).await
                && let Ok(Some(_)) = self.decode(id, bytes.clone()).await
            {
                return Some(bytes);
            }
        }
        None
    }
}

fn problem(l: &Location, object: String, fault: Fault) -> Problem {
    Problem {
        location: l.name().to_owned(),
        object,
        fault,
    }
}

/// Puts a good copy in place of a bad one. The one write that removes an object that
/// exists, and only once it is proven corrupt.
async fn replace(l: &Location, path: &str, bytes: Bytes, fault: Fault) -> Result<()> {
    if fault == Fault::Corrupt {
        l.delete(path).await?;
    }
    l.put_new(path, bytes).await?;
    Ok(())
}
