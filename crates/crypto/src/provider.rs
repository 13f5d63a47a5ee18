//! Where root key material comes from: a key file, an environment variable, or an
//! external command (the plug-in point for HSM/KMS tooling).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use crate::{CryptoError, RootKeyring, random_bytes};

/// Environment variable read by [`EnvKeyProvider::default`].
pub const DEFAULT_ROOT_KEY_VAR: &str = "WARD_ROOT_KEY";

/// Longest stderr excerpt reported from a failing key command; enough to diagnose, short
/// enough to keep logs tidy.
const MAX_STDERR_CHARS: usize = 200;

/// A source of the root keyring.
///
/// Behind a trait so operators can keep the root key in a file, the environment, or an
/// external KMS/HSM without the vault caring which.
pub trait KeyProvider: Send + Sync {
    /// Human-readable description for logs and `ward` output, e.g.
    /// `key file ./ward-data/root.key`. Never contains key material.
    fn describe(&self) -> String;

    /// Loads the keyring.
    ///
    /// # Errors
    /// Provider-specific: I/O, permissions, parsing, command failure.
    fn load(&self) -> Result<RootKeyring, CryptoError>;

    /// Persists a keyring after rotation or retirement of a version.
    ///
    /// # Errors
    /// [`CryptoError::ReadOnlyProvider`] for providers that cannot write, or I/O errors.
    fn store(&self, ring: &RootKeyring) -> Result<(), CryptoError>;
}

/// Root keyring in a local file (the default), readable only by its owner.
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    path: PathBuf,
}

impl FileKeyProvider {
    /// A provider for the key file at `path` (nothing is touched until used).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The key file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the keyring, or — on first start — creates the file with a fresh `v1` key and
    /// mode 0600. Returns whether it was created, so the caller can tell the operator to
    /// back the new key up.
    ///
    /// Creation is atomic and never overwrites: the key is written to a temporary file
    /// (created exclusively, mode 0600) and hard-linked into place, so a crash cannot leave
    /// a half-written key file and two processes starting at once agree on one key.
    ///
    /// # Errors
    /// As [`KeyProvider::load`], plus I/O errors while creating.
    pub fn load_or_create(&self) -> Result<(RootKeyring, bool), CryptoError> {
        match fs::symlink_metadata(&self.path) {
            Ok(_) => return Ok((self.load()?, false)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("inspecting", e)),
        }
        self.ensure_parent_dir()?;
        let ring = RootKeyring::generate()?;
        let tmp = self.write_temp(&ring)?;
        let linked = fs::hard_link(&tmp, &self.path);
        // The temp name is only a staging handle; remove it whatever happened.
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                self.sync_parent_dir()?;
                Ok((ring, true))
            }
            // Someone else created it in the meantime: theirs wins.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok((self.load()?, false)),
            Err(e) => Err(self.io("creating", e)),
        }
    }

    fn io(&self, action: &str, source: io::Error) -> CryptoError {
        CryptoError::Io {
            context: format!("{action} key file {}", self.path.display()),
            source,
        }
    }

    fn parent_dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    fn ensure_parent_dir(&self) -> Result<(), CryptoError> {
        let dir = self.parent_dir();
        if dir.exists() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .map_err(|e| self.io("creating the directory of", e))
    }

    /// Writes `ring` to a new, exclusively created 0600 file next to the key file and
    /// returns its path. Same directory, so the later rename/link stays on one filesystem.
    fn write_temp(&self, ring: &RootKeyring) -> Result<PathBuf, CryptoError> {
        let file_name = self
            .path
            .file_name()
            .map_or_else(|| "root.key".into(), |n| n.to_string_lossy().into_owned());
        let suffix: [u8; 8] = random_bytes()?;
        let suffix = hex::encode(suffix);
        let tmp = self.parent_dir().join(format!(".{file_name}.tmp-{suffix}"));

        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(&tmp)
            .map_err(|e| self.io("creating a temporary file for", e))?;
        let text = ring.to_text();
        let written = file
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_all());
        if let Err(e) = written {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(self.io("writing", e));
        }
        Ok(tmp)
    }

    /// Makes a rename or link into the directory durable across a power loss.
    fn sync_parent_dir(&self) -> Result<(), CryptoError> {
        #[cfg(unix)]
        {
            File::open(self.parent_dir())
                .and_then(|d| d.sync_all())
                .map_err(|e| self.io("syncing the directory of", e))?;
        }
        Ok(())
    }
}

impl KeyProvider for FileKeyProvider {
    fn describe(&self) -> String {
        format!("key file {}", self.path.display())
    }

    /// Reads the key file, refusing it if group or other users have any access: a key
    /// others can read may have leaked, one they can write may have been replaced.
    fn load(&self) -> Result<RootKeyring, CryptoError> {
        let mut file = File::open(&self.path).map_err(|e| self.io("opening", e))?;
        // Check the opened handle, not the path, so the file cannot be swapped in between.
        let meta = file.metadata().map_err(|e| self.io("inspecting", e))?;
        if !meta.is_file() {
            return Err(self.io(
                "reading",
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(CryptoError::InsecureKeyFile {
                    path: self.path.clone(),
                    mode,
                });
            }
        }
        let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
        let mut text = Zeroizing::new(String::with_capacity(capacity));
        file.read_to_string(&mut text)
            .map_err(|e| self.io("reading", e))?;
        RootKeyring::parse(&text)
    }

    /// Replaces the key file atomically: write a 0600 temp file, fsync, rename over the
    /// old file, fsync the directory. A crash leaves either the old or the new keyring,
    /// never a torn one — losing the root key would lose every tenant's data.
    fn store(&self, ring: &RootKeyring) -> Result<(), CryptoError> {
        self.ensure_parent_dir()?;
        let tmp = self.write_temp(ring)?;
        if let Err(e) = fs::rename(&tmp, &self.path) {
            let _ = fs::remove_file(&tmp);
            return Err(self.io("replacing", e));
        }
        self.sync_parent_dir()
    }
}

/// Root keyring from an environment variable (default `WARD_ROOT_KEY`), for containers
/// whose orchestrator injects secrets as variables. Read-only.
#[derive(Debug, Clone)]
pub struct EnvKeyProvider {
    var: String,
}

impl EnvKeyProvider {
    /// A provider reading the variable `var`.
    pub fn new(var: impl Into<String>) -> Self {
        Self { var: var.into() }
    }

    /// The variable's name.
    #[must_use]
    pub fn var(&self) -> &str {
        &self.var
    }
}

impl Default for EnvKeyProvider {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT_KEY_VAR)
    }
}

impl KeyProvider for EnvKeyProvider {
    fn describe(&self) -> String {
        format!("environment variable {}", self.var)
    }

    fn load(&self) -> Result<RootKeyring, CryptoError> {
        let value = std::env::var_os(&self.var).ok_or_else(|| CryptoError::EnvVar {
            name: self.var.clone(),
            reason: "not set",
        })?;
        let text = Zeroizing::new(value.into_string().map_err(|_| CryptoError::EnvVar {
            name: self.var.clone(),
            reason: "not valid UTF-8",
        })?);
        RootKeyring::parse(&text)
    }

    fn store(&self, _ring: &RootKeyring) -> Result<(), CryptoError> {
        Err(CryptoError::ReadOnlyProvider)
    }
}

/// Root keyring printed on stdout by an external program — the plug-in point for HSM and
/// KMS tooling (e.g. a script that asks a KMS to decrypt a wrapped keyring). The program
/// is run directly, without a shell, so arguments are never re-interpreted. Read-only.
#[derive(Debug, Clone)]
pub struct CommandKeyProvider {
    program: OsString,
    args: Vec<OsString>,
}

impl CommandKeyProvider {
    /// A provider running `program` with `args`.
    pub fn new<I, S>(program: impl Into<OsString>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    fn program_name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

impl KeyProvider for CommandKeyProvider {
    /// Names the program only: arguments might carry credentials for the KMS tool.
    fn describe(&self) -> String {
        format!("key command {}", self.program_name())
    }

    fn load(&self) -> Result<RootKeyring, CryptoError> {
        let fail = |message: String| CryptoError::ProviderCommand {
            program: self.program_name(),
            message,
        };
        let output = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| fail(format!("could not be started: {e}")))?;
        let stdout = Zeroizing::new(output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
            let message = match first {
                Some(line) => {
                    let line: String = line.chars().take(MAX_STDERR_CHARS).collect();
                    format!("{} ({line})", output.status)
                }
                None => output.status.to_string(),
            };
            return Err(fail(message));
        }
        let text = std::str::from_utf8(&stdout)
            .map_err(|_| fail("printed output that is not UTF-8".to_owned()))?;
        RootKeyring::parse(text)
    }

    fn store(&self, _ring: &RootKeyring) -> Result<(), CryptoError> {
        Err(CryptoError::ReadOnlyProvider)
    }
}
