//! One place a repository is kept: a local directory or an S3-compatible bucket prefix,
//! both through `object_store`. Every write is create-only: an object that exists is never
//! overwritten (only `repair` replaces an object, after proving it corrupt).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::{BackupError, Result};

/// A location as configured: a directory path or `s3://bucket/prefix`, and optionally the
/// region it is in (stated in the privacy notice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationSpec {
    /// Directory path or `s3://bucket[/prefix]`.
    pub url: String,
    /// Where the location is (e.g. `eu-central-1`, `on-site Frankfurt`), for the notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl LocationSpec {
    /// A location from its URL alone.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            region: None,
        }
    }
}

/// How to reach S3-compatible locations (credentials come from the usual AWS environment
/// variables: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint of a non-AWS service (`http://127.0.0.1:8333`); plain HTTP is allowed only
    /// to a loopback address.
    pub endpoint: Option<String>,
}

/// Whether a create-only write created the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written now.
    Created,
    /// Already there (left untouched).
    Existed,
}

/// An opened location.
#[derive(Clone)]
pub struct Location {
    name: String,
    region: Option<String>,
    store: Arc<dyn ObjectStore>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({})", self.name)
    }
}

impl Location {
    /// Opens a location (creating a local directory, mode 0700, if needed). Nothing is
    /// read yet, so an unreachable S3 endpoint only shows at first use.
    ///
    /// # Errors
    /// [`BackupError::InvalidLocation`] for a malformed URL or a directory that cannot be
    /// created.
    pub fn open(spec: &LocationSpec, s3: &S3Options) -> Result<Self> {
        let invalid = |reason: String| BackupError::InvalidLocation {
            location: spec.url.clone(),
            reason,
        };
        let store: Arc<dyn ObjectStore> = if let Some(rest) = spec.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("an S3 location is s3://bucket[/prefix]".into()));
            }
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
            if let Some(endpoint) = &s3.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(is_loopback_http(endpoint));
            }
            let s3 = builder.build().map_err(|e| invalid(e.to_string()))?;
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            }
        } else if spec.url.contains("://") {
            return Err(invalid(
                "expected a directory path or s3://bucket/prefix".into(),
            ));
        } else {
            let dir = PathBuf::from(&spec.url);
            create_private_dir(&dir)
                .map_err(|e| invalid(format!("creating the directory: {e}")))?;
            let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| invalid(e.to_string()))?;
            Arc::new(fs)
        };
        Ok(Self {
            name: spec.url.clone(),
            region: spec.region.clone(),
            store,
        })
    }

    /// The location as configured (path or URL).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The configured region, if any.
    #[must_use]
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Writes `bytes` at `path` unless something is already there.
    pub(crate) async fn put_new(&self, path: &str, bytes: Bytes) -> Result<PutOutcome> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&ObjectPath::from(path), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(PutOutcome::Existed),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The object at `path`, or `None` if there is none.
    pub(crate) async fn get(&self, path: &str) -> Result<Option<Bytes>> {
        match self.store.get(&ObjectPath::from(path)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| self.err(e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every object path under `prefix` with its size.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        self.store
            .list(Some(&ObjectPath::from(prefix)))
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .map_err(|e| self.err(e))
    }

    /// Deletes the object at `path` (a missing one is fine).
    pub(crate) async fn delete(&self, path: &str) -> Result<()> {
        match self.store.delete(&ObjectPath::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn err(&self, source: object_store::Error) -> BackupError {
        BackupError::Location {
            location: self.name.clone(),
            source,
        }
    }
}

/// Plain HTTP only to this machine (a local test server, a sidecar); anything else must be
/// HTTPS, since the credentials travel in each request's signature context.
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(is_loopback_http("http://127.0.0.1:8333"));
        assert!(is_loopback_http("http://localhost:9000/"));
        assert!(!is_loopback_http("http://s3.example.org"));
        assert!(!is_loopback_http("https://127.0.0.1:8333"));
    }

    #[test]
    fn malformed_locations_are_refused() {
        let s3 = S3Options::default();
        for bad in ["s3://", "ftp://host/x", "s3:///prefix"] {
            assert!(
                matches!(
                    Location::open(&LocationSpec::new(bad), &s3),
                    Err(BackupError::InvalidLocation { .. })
                ),
                "{bad}"
            );
        }
    }
}
