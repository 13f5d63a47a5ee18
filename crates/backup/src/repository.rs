//! A repository spread over several locations: opening it (and creating it on first use),
//! and reading what snapshots it has.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use ward_crypto::RootKeyring;

use crate::id::{OBJECTS_PREFIX, ObjectId, SNAPSHOTS_PREFIX, SnapshotId};
use crate::keys::{CONFIG_PREFIX, RepoConfig, RepoKeys};
use crate::location::{Location, LocationSpec, S3Options};
use crate::manifest::Manifest;
use crate::{BackupError, Result, Stream};

/// Whether opening may create the repository and write its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `backup run`, `repair`: create the repository where there is none, copy the config to
    /// locations that lack it, add wrappings for new root key versions.
    ReadWrite,
    /// `list`, `verify`, `restore`, `prune`: never create anything.
    ReadOnly,
}

/// A location that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// The location as configured.
    pub location: String,
    /// What went wrong.
    pub error: String,
}

/// An opened repository: its keys and the locations that answered.
#[derive(Debug, Clone)]
pub struct Repository {
    pub(crate) keys: Arc<RepoKeys>,
    pub(crate) config: RepoConfig,
    pub(crate) locations: Vec<Location>,
    unreachable: Vec<Unreachable>,
}

/// The objects a location holds, or why it could not be listed.
pub(crate) type Listing = std::result::Result<HashSet<ObjectId>, String>;

impl Repository {
    /// Opens the repository kept in `specs`, checking `root` against its config before
    /// anything is written.
    ///
    /// # Errors
    /// [`BackupError::NoLocation`], [`BackupError::NoReachableLocation`],
    /// [`BackupError::NoRepository`] (read-only and nothing there),
    /// [`BackupError::MixedRepositories`], [`BackupError::WrongRootKey`].
    pub async fn open(
        specs: &[LocationSpec],
        s3: &S3Options,
        root: &RootKeyring,
        mode: OpenMode,
    ) -> Result<Self> {
        if specs.is_empty() {
            return Err(BackupError::NoLocation);
        }
        let mut unreachable = Vec::new();
        let mut found: Vec<(Location, Option<(RepoConfig, Bytes)>)> = Vec::new();
        for spec in specs {
            let opened = match Location::open(spec, s3) {
                Ok(l) => l,
                Err(e) => {
                    unreachable.push(Unreachable {
                        location: spec.url.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            match newest_config(&opened).await {
                Ok(c) => found.push((opened, c)),
                Err(e) => unreachable.push(Unreachable {
                    location: spec.url.clone(),
                    error: e.to_string(),
                }),
            }
        }
        if found.is_empty() {
            let why = unreachable
                .iter()
                .map(|u| format!("{}: {}", u.location, u.error))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(BackupError::NoReachableLocation(why));
        }
        let newest = found
            .iter()
            .filter_map(|(l, c)| c.as_ref().map(|c| (l, c)))
            .max_by_key(|(_, (c, _))| c.sequence);
        let (keys, config, raw) = match newest {
            Some((first, (config, raw))) => {
                for (l, c) in &found {
                    if let Some((other, _)) = c
                        && other.repository != config.repository
                    {
                        return Err(BackupError::MixedRepositories {
                            first: first.name().to_owned(),
                            location: l.name().to_owned(),
                        });
                    }
                }
                let keys = RepoKeys::open(root, config)?;
                (keys, config.clone(), raw.clone())
            }
            None if mode == OpenMode::ReadOnly => return Err(BackupError::NoRepository),
            None => {
                let (keys, config) = RepoKeys::create(root)?;
                let raw = config_bytes(&config)?;
                (keys, config, raw)
            }
        };
        let mut repo = Self {
            keys: Arc::new(keys),
            config,
            locations: Vec::new(),
            unreachable,
        };
        if mode == OpenMode::ReadWrite {
            let mut raw = raw;
            if let Some(next) = repo.keys.rewrapped(root, &repo.config)? {
                raw = config_bytes(&next)?;
                repo.config = next;
            }
            for (location, current) in found {
                let has = current.is_some_and(|(c, _)| c.sequence == repo.config.sequence);
                if !has && let Err(e) = location.put_new(&repo.config.path(), raw.clone()).await {
                    repo.unreachable.push(Unreachable {
                        location: location.name().to_owned(),
                        error: e.to_string(),
                    });
                    continue;
                }
                repo.locations.push(location);
            }
        } else {
            repo.locations = found.into_iter().map(|(l, _)| l).collect();
        }
        if repo.locations.is_empty() {
            return Err(BackupError::NoReachableLocation(
                repo.unreachable
                    .iter()
                    .map(|u| format!("{}: {}", u.location, u.error))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        Ok(repo)
    }

    /// The locations in use, in configured order.
    #[must_use]
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// Locations that could not be opened or read (each fails alone).
    #[must_use]
    pub fn unreachable(&self) -> &[Unreachable] {
        &self.unreachable
    }

    /// The repository's config in force.
    #[must_use]
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The repository's keys (chunk ids, for tools and tests).
    #[must_use]
    pub fn keys(&self) -> &RepoKeys {
        &self.keys
    }

    /// Ids of every snapshot in any location, oldest first.
    ///
    /// # Errors
    /// If no location can be listed.
    pub async fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        let mut ids = BTreeSet::new();
        let mut listed = false;
        let mut last_err = None;
        for l in &self.locations {
            match l.list(SNAPSHOTS_PREFIX).await {
                Ok(paths) => {
                    listed = true;
                    ids.extend(paths.iter().filter_map(|(p, _)| SnapshotId::from_path(p)));
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (listed, last_err) {
            (false, Some(e)) => Err(e),
            _ => Ok(ids.into_iter().collect()),
        }
    }

    /// The manifest of `id`, from the first location where it opens and verifies.
    ///
    /// # Errors
    /// [`BackupError::UnknownSnapshot`] if no location has it, [`BackupError::BadManifest`]
    /// if no copy verifies.
    pub async fn manifest(&self, id: &SnapshotId) -> Result<Manifest> {
        let mut seen = false;
        for l in &self.locations {
            if let Ok(Some(bytes)) = l.get(&id.path()).await {
                seen = true;
                if let Ok(m) = Manifest::open(&self.keys, id, &bytes) {
                    return Ok(m);
                }
            }
        }
        Err(if seen {
            BackupError::BadManifest(id.to_string())
        } else {
            BackupError::UnknownSnapshot(id.to_string())
        })
    }

    /// Every snapshot's manifest, oldest first.
    ///
    /// # Errors
    /// As [`Self::manifest`], for the first that fails.
    pub async fn manifests(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for id in self.snapshot_ids().await? {
            out.push(self.manifest(&id).await?);
        }
        Ok(out)
    }

    /// Resolves a snapshot argument: an id, `latest` (the newest data snapshot) or
    /// `latest-keys` (the newest key snapshot).
    ///
    /// # Errors
    /// [`BackupError::UnknownSnapshot`].
    pub async fn resolve(&self, name: &str) -> Result<SnapshotId> {
        let ids = self.snapshot_ids().await?;
        let stream = match name {
            "latest" => Some(Stream::Data),
            "latest-keys" => Some(Stream::Keys),
            _ => None,
        };
        let found = match stream {
            Some(s) => ids.into_iter().rev().find(|id| id.stream() == s),
            None => SnapshotId::parse(name).filter(|id| ids.contains(id)),
        };
        found.ok_or_else(|| BackupError::UnknownSnapshot(name.to_owned()))
    }

    /// The newest snapshot of `stream`, if any.
    ///
    /// # Errors
    /// If no location can be listed.
    pub async fn newest(&self, stream: Stream) -> Result<Option<SnapshotId>> {
        Ok(self
            .snapshot_ids()
            .await?
            .into_iter()
            .rev()
            .find(|id| id.stream() == stream))
    }

    /// The objects each location holds (listed once per backup, for deduplication).
    /// A location that could not be listed has its error's message instead.
    pub(crate) async fn object_sets(&self) -> Vec<Listing> {
        let mut out = Vec::with_capacity(self.locations.len());
        for l in &self.locations {
            out.push(
                l.list(OBJECTS_PREFIX)
                    .await
                    .map(|paths| {
                        paths
                            .iter()
                            .filter_map(|(p, _)| ObjectId::from_path(p))
                            .collect()
                    })
                    .map_err(|e| e.to_string()),
            );
        }
        out
    }

    /// Total bytes stored per location (objects, manifests, config).
    ///
    /// # Errors
    /// Never for the whole call: a location that cannot be listed reports its error.
    pub async fn sizes(&self) -> BTreeMap<String, Result<u64>> {
        let mut out = BTreeMap::new();
        for l in &self.locations {
            let mut total = Ok(0u64);
            for prefix in [OBJECTS_PREFIX, SNAPSHOTS_PREFIX, CONFIG_PREFIX] {
                total = match (total, l.list(prefix).await) {
                    (Ok(t), Ok(items)) => Ok(t + items.iter().map(|(_, s)| s).sum::<u64>()),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                };
            }
            out.insert(l.name().to_owned(), total);
        }
        out
    }
}

/// The highest-numbered config object of a location, parsed, with its bytes.
async fn newest_config(location: &Location) -> Result<Option<(RepoConfig, Bytes)>> {
    let paths = location.list(CONFIG_PREFIX).await?;
    let Some(path) = paths
        .iter()
        .filter_map(|(p, _)| RepoConfig::sequence_of(p).map(|s| (s, p)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, p)| p)
    else {
        return Ok(None);
    };
    let Some(bytes) = location.get(path).await? else {
        return Ok(None);
    };
    let config: RepoConfig =
        serde_json::from_slice(&bytes).map_err(|_| BackupError::WrongRootKey)?;
    Ok(Some((config, bytes)))
}

fn config_bytes(config: &RepoConfig) -> Result<Bytes> {
    serde_json::to_vec_pretty(config)
        .map(Bytes::from)
        .map_err(|e| BackupError::Task(format!("serializing the config: {e}")))
}
