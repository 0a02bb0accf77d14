//! Local file store: the current key at `<dir>/<secret_id>` (the path
//! applications read), with `.pending` and `.previous` files next to it and a
//! `.versions.json` sidecar holding the version ids (never key material).
//! Every write is atomic (temp file, fsync, rename, fsync the directory),
//! files are 0600 and created directories 0700. A `.pending` file a person
//! placed by hand (assisted rotation) has no id in the sidecar; it is named
//! by the file itself (see `placed`).
//!
//! Every call is blocking file I/O (reads, writes, renames, fsyncs), so each
//! runs on Tokio's blocking pool (`spawn_blocking`), never on an async worker:
//! a slow disk stalls that one call, not the daemon's timers, admin API and
//! other rotations.
//!
//! This module owns the `FileStore` handle and its `SecretStore` impl;
//! `calls` holds the blocking body of each call and `files` the file work
//! they share.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Base, Pending, Promoted, SecretStore, StoreError};
use crate::policy::Target;

const SUFFIXES: [&str; 3] = [".pending", ".previous", ".versions.json"];

/// Cheap to clone: the files' state lives in `Files`, shared with the
/// blocking tasks that do the I/O.
#[derive(Clone)]
pub struct FileStore {
    files: Arc<Files>,
}

/// The store's configuration; all the blocking work is done by its methods.
struct Files {
    entry: String,
    dir: PathBuf,
}

/// The files of one secret.
struct Paths {
    current: PathBuf,
    pending: PathBuf,
    previous: PathBuf,
    versions: PathBuf,
}

/// Version ids of the three files. `pending` is set only while the pending
/// file is complete, which is what lets `promote` resume after a crash.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Versions {
    current: Option<String>,
    pending: Option<String>,
    previous: Option<String>,
}

impl FileStore {
    pub fn new(entry: &str, dir: &Path) -> Self {
        Self {
            files: Arc::new(Files {
                entry: entry.to_string(),
                dir: dir.to_path_buf(),
            }),
        }
    }

    /// Runs `work` on the blocking pool. A panic inside is resumed here, as
    /// if the call had run inline; a task cancelled by a runtime shutting
    /// down is a transient error (nothing is known about what it did).
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Files) -> Result<T, StoreError> + Send + 'static,
    {
        let files = Arc::clone(&self.files);
        match tokio::task::spawn_blocking(move || work(&files)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Transient {
                store: self.files.entry.clone(),
                message: format!("file operation did not finish: {e}"),
            }),
        }
    }
}

/// Each call clones what its blocking task needs (the target, a key, a
/// version id): the task may outlive the caller's future if that is dropped.
#[async_trait]
impl SecretStore for FileStore {
    fn entry(&self) -> &str {
        &self.files.entry
    }

    async fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        let target = target.clone();
        self.blocking(move |f| f.read_current(&target)).await
    }

    async fn read_previous(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        let target = target.clone();
        self.blocking(move |f| f.read_previous(&target)).await
    }

    async fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError> {
        let target = target.clone();
        self.blocking(move |f| f.read_pending(&target)).await
    }

    async fn stage(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
    ) -> Result<String, StoreError> {
        let (target, token, key) = (target.clone(), token.to_string(), key.clone());
        self.blocking(move |f| f.stage(&target, &token, &key)).await
    }

    /// The file store reads its files again: a read is cheap here, and
    /// `stage` keeps its own checks.
    async fn stage_from(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
        _base: &Base,
    ) -> Result<String, StoreError> {
        self.stage(target, token, key).await
    }

    async fn promote(&self, target: &Target, version_id: &str) -> Result<(), StoreError> {
        let (target, version_id) = (target.clone(), version_id.to_string());
        self.blocking(move |f| f.swap(&target, &version_id, None).map(|_| ()))
            .await
    }

    async fn base(&self, target: &Target) -> Result<Base, StoreError> {
        let target = target.clone();
        self.blocking(move |f| f.base(&target)).await
    }

    async fn promote_if(
        &self,
        target: &Target,
        version_id: &str,
        base: &Base,
    ) -> Result<Promoted, StoreError> {
        let (target, version_id) = (target.clone(), version_id.to_string());
        // Only the fields `swap` compares; `Base` itself is not `Clone`.
        let base = Base {
            version: base.version.clone(),
            value: base.value.clone(),
            key: base.key.clone(),
        };
        self.blocking(move |f| f.swap(&target, &version_id, Some(&base)))
            .await
    }

    async fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError> {
        let target = target.clone();
        self.blocking(move |f| f.current_version(&target)).await
    }

    fn placement(&self, target: &Target) -> String {
        let pending = match self.files.paths(target) {
            Ok(paths) => paths.pending.display().to_string(),
            Err(e) => return e.to_string(),
        };
        format!(
            "write the new key to {pending} atomically (a temp file in the same directory, then rename it){}",
            super::placed_shape(target)
        )
    }

    async fn drop_pending(&self, target: &Target) -> Result<(), StoreError> {
        let target = target.clone();
        self.blocking(move |f| f.drop_pending(&target)).await
    }
}

mod calls;
mod files;
mod placed;
#[cfg(test)]
mod tests;
