//! File state store: one JSON journal per policy under `<dir>/policies/`,
//! written atomically; leases are `flock`s on `<dir>/locks/<secret>.lock`, so
//! two processes on one host never rotate the same secret at once. A lease
//! dies with its process, so a crashed rotation never blocks the next run.
//! Every journal carries `"format": N` ([`super::JOURNAL_FORMAT`]); a newer format
//! is refused before its content is looked at ([`codec`], shared with the
//! DynamoDB store). Lock files stay empty: only
//! the `flock` on them matters, so they carry no format.
//! Reads, fsync'd writes and lock files are blocking I/O: each call runs on
//! Tokio's blocking pool (`spawn_blocking`), never on an async worker.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Fence, Lease, PolicyState, StateError, StateStore, codec};
use crate::fsutil;
use crate::names::{LeaseKey, PolicyName};

pub struct FileStateStore {
    dir: PathBuf,
}

impl FileStateStore {
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        for sub in ["policies", "locks"] {
            fsutil::create_private_dir(&dir.join(sub)).map_err(|e| io_error(&dir.join(sub), e))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Runs `work` on the blocking pool. A panic inside is resumed here, as
    /// if the call had run inline; a task cancelled by a runtime shutting
    /// down is an I/O error naming `path`.
    async fn blocking<T, F>(path: PathBuf, work: F) -> Result<T, StateError>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> Result<T, StateError> + Send + 'static,
    {
        let shown = path.display().to_string();
        match tokio::task::spawn_blocking(move || work(&path)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StateError::Io {
                path: shown,
                message: format!("file operation did not finish: {e}"),
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn journal_path(&self, policy: &str) -> PathBuf {
        self.dir.join("policies").join(format!("{policy}.json"))
    }

    fn lock_path(&self, lock_key: &str) -> PathBuf {
        let readable: String = lock_key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(80)
            .collect();
        // The hash keeps distinct secrets apart when sanitising maps them to one name.
        self.dir
            .join("locks")
            .join(format!("{readable}-{:016x}.lock", fnv1a(lock_key)))
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn load(&self, policy: &PolicyName) -> Result<PolicyState, StateError> {
        // Counted from outside by the fleet bench (`benches/fleet`).
        tracing::trace!(target: "rekey::state::journal", policy = %policy, "journal read");
        let name = policy.clone();
        Self::blocking(self.journal_path(policy), move |path| load(path, &name)).await
    }

    /// A `flock` cannot be lost while its process lives, so there is
    /// nothing to check the write against.
    async fn save(&self, state: &PolicyState, _lease: &dyn Lease) -> Result<(), StateError> {
        let path = self.journal_path(&state.policy);
        // Serialized here, so the blocking task owns only bytes.
        let bytes = encode(&path, state)?;
        Self::blocking(path, move |path| {
            fsutil::write(path, &bytes).map_err(|e| io_error(path, e))
        })
        .await
    }

    /// Takes the lock named by the secret's identity and then the one an
    /// older rekey would take for it; both or neither.
    async fn try_lease(
        &self,
        key: &LeaseKey,
        legacy_name: &str,
    ) -> Result<Option<Box<dyn Lease>>, StateError> {
        let legacy = self.lock_path(legacy_name);
        let key = key.clone();
        Self::blocking(self.lock_path(&key), move |path| {
            let Some(lock) = try_lock(path)? else {
                return Ok(None);
            };
            let Some(old) = try_lock(&legacy)? else {
                return Ok(None);
            };
            Ok(Some(Box::new(FileLease {
                key,
                _locks: [lock, old],
            }) as Box<dyn Lease>))
        })
        .await
    }

    async fn policies(&self) -> Result<Vec<PolicyName>, StateError> {
        Self::blocking(self.dir.join("policies"), |dir| {
            let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error(dir, e))?;
                let file = entry.file_name();
                let Some(stem) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
                    continue;
                };
                // Temporary and foreign files are not journals.
                if let Ok(name) = PolicyName::parse(stem) {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        })
        .await
    }

    async fn in_flight(&self) -> Result<Vec<PolicyName>, StateError> {
        let mut found = Vec::new();
        for policy in self.policies().await? {
            if self.load(&policy).await?.in_flight.is_some() {
                found.push(policy);
            }
        }
        Ok(found)
    }

    async fn import(&self, state: &PolicyState) -> Result<bool, StateError> {
        let path = self.journal_path(&state.policy);
        let bytes = encode(&path, state)?;
        Self::blocking(path, move |path| {
            if path.exists() {
                return Ok(false);
            }
            fsutil::write(path, &bytes).map_err(|e| io_error(path, e))?;
            Ok(true)
        })
        .await
    }

    async fn held_leases(&self) -> Result<Vec<String>, StateError> {
        Self::blocking(self.dir.join("locks"), |dir| {
            let entries = std::fs::read_dir(dir).map_err(|e| io_error(dir, e))?;
            let mut held = Vec::new();
            for entry in entries {
                let path = entry.map_err(|e| io_error(dir, e))?.path();
                if path.extension().is_some_and(|e| e == "lock") && try_lock(&path)?.is_none() {
                    held.push(path.display().to_string());
                }
            }
            held.sort();
            Ok(held)
        })
        .await
    }

    fn describe(&self) -> String {
        format!("file:{}", self.dir.display())
    }
}

/// The journal at `path`; a fresh state for `policy` when there is none.
fn load(path: &Path, policy: &PolicyName) -> Result<PolicyState, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => parse(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PolicyState::new(policy)),
        Err(e) => Err(io_error(path, e)),
    }
}

/// The journal file's bytes (see [`codec::parse`]).
fn parse(path: &Path, bytes: &[u8]) -> Result<PolicyState, StateError> {
    codec::parse(&path.display().to_string(), bytes)
}

/// A journal's bytes as the file holds them (see [`codec::encode`]).
fn encode(path: &Path, state: &PolicyState) -> Result<Vec<u8>, StateError> {
    codec::encode(&path.display().to_string(), state)
}

/// `flock`s the lock file at `path` without waiting; `None` if it is held.
fn try_lock(path: &Path) -> Result<Option<File>, StateError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(file));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(io_error(path, err))
    }
}

/// Closing the files releases the `flock`s.
struct FileLease {
    key: LeaseKey,
    _locks: [File; 2],
}

impl Lease for FileLease {
    fn key(&self) -> &LeaseKey {
        &self.key
    }

    /// A `flock` is held until this process lets go of it.
    fn ensure(&self, _span: std::time::Duration) -> Result<(), StateError> {
        Ok(())
    }

    fn fence(&self) -> Option<&Fence> {
        None
    }
}

fn io_error(path: &Path, e: std::io::Error) -> StateError {
    StateError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests;
