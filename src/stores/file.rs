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

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Base, Pending, Promoted, SecretStore, StoreError, format};
use crate::policy::Target;

use crate::fsutil as atomic;

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

impl Files {
    /// Refuses ids that would escape `dir` or collide with another secret's side files.
    fn paths(&self, target: &Target) -> Result<Paths, StoreError> {
        let id = Path::new(&target.secret_id);
        let plain = id.components().all(|c| matches!(c, Component::Normal(_)));
        if target.secret_id.is_empty()
            || !plain
            || SUFFIXES.iter().any(|s| target.secret_id.ends_with(s))
        {
            return Err(self.permanent(format!(
                "secret id {:?} must be a relative path without `..` and must not end in .pending, .previous or .versions.json",
                target.secret_id
            )));
        }
        let current = self.dir.join(id);
        let side = |suffix: &str| PathBuf::from(format!("{}{suffix}", current.display()));
        Ok(Paths {
            pending: side(SUFFIXES[0]),
            previous: side(SUFFIXES[1]),
            versions: side(SUFFIXES[2]),
            current,
        })
    }

    fn read(&self, target: &Target, path: &Path) -> Result<Option<String>, StoreError> {
        let bytes = atomic::read(path).map_err(|e| self.io("read", path, e))?;
        bytes
            .map(|b| {
                String::from_utf8(b).map_err(|_| format::shape(target, "value is not UTF-8 text"))
            })
            .transpose()
    }

    fn write(&self, path: &Path, contents: &str) -> Result<(), StoreError> {
        atomic::write(path, contents.as_bytes()).map_err(|e| self.io("write", path, e))
    }

    fn remove(&self, path: &Path) -> Result<(), StoreError> {
        atomic::remove(path).map_err(|e| self.io("remove", path, e))
    }

    fn load_versions(&self, paths: &Paths) -> Result<Versions, StoreError> {
        let bytes =
            atomic::read(&paths.versions).map_err(|e| self.io("read", &paths.versions, e))?;
        let Some(bytes) = bytes else {
            return Ok(Versions::default());
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| self.permanent(format!("{} is corrupt: {e}", paths.versions.display())))
    }

    fn save_versions(&self, paths: &Paths, versions: &Versions) -> Result<(), StoreError> {
        let json = serde_json::to_string(versions).map_err(|e| self.permanent(e.to_string()))?;
        self.write(&paths.versions, &json)
    }

    /// The pending file's key, when the sidecar says the pending file is
    /// complete, or when a person placed it (it has no id of rekey's then).
    fn pending(
        &self,
        target: &Target,
        paths: &Paths,
        versions: &Versions,
    ) -> Result<Option<Pending>, StoreError> {
        let version_id = match &versions.pending {
            Some(id) if !placed::is_placed(id) => id.clone(),
            _ => match self.placed_id(paths)? {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let value = self.read(target, &paths.pending)?;
        let key = format::extract_key(target, value.as_deref())?;
        if key.is_none() && value.is_some_and(|v| !v.trim().is_empty()) {
            // Only a hand-placed file can lack the field: say so rather than
            // look as if nothing were placed.
            let field = target.field.as_deref().unwrap_or_default();
            let what = format!(
                "the pending file holds no {field} (place the whole secret, with the new key in {field})"
            );
            return Err(format::shape(target, &what));
        }
        Ok(key.map(|key| Pending { version_id, key }))
    }

    fn placed_id(&self, paths: &Paths) -> Result<Option<String>, StoreError> {
        placed::id_of(&paths.pending).map_err(|e| self.io("inspect", &paths.pending, e))
    }

    /// Before a placed file is promoted its id goes into the sidecar, so the
    /// crash rule of `promote` holds for it as for a staged one — once it is
    /// sure the file is still the one that was verified.
    fn record_placed(
        &self,
        target: &Target,
        paths: &Paths,
        versions: &mut Versions,
        version_id: &str,
    ) -> Result<(), StoreError> {
        match self.placed_id(paths)? {
            Some(id) if id == version_id => {
                placed::make_private(&paths.pending);
                if versions.pending.as_deref() != Some(version_id) {
                    versions.pending = Some(id);
                    self.save_versions(paths, versions)?;
                }
                Ok(())
            }
            Some(_) => Err(self.permanent(format!(
                "secret {:?}: the placed {} changed after it was verified (it is verified again on the next run)",
                target.secret_id,
                paths.pending.display()
            ))),
            // Recorded, and already renamed over current by a promote that crashed.
            None => Ok(()),
        }
    }

    /// Order, so that a crash at any point leaves `current` old or new, never
    /// missing, and a rerun finishes the job: (1) copy current to previous
    /// and record it; (2) rename pending over current, one atomic step;
    /// (3) record the new current and clear pending. A pending id whose file
    /// is gone therefore means (2) happened, and the rerun only does (3).
    /// With a `base`, (2) happens only while the current file still holds
    /// the value the pending one was built from.
    fn swap(
        &self,
        target: &Target,
        version_id: &str,
        base: Option<&Base>,
    ) -> Result<Promoted, StoreError> {
        let paths = self.paths(target)?;
        let mut versions = self.load_versions(&paths)?;
        if versions.current.as_deref() == Some(version_id) {
            self.clear_pending(&paths, &mut versions)?;
            return Ok(Promoted::Done);
        }
        if placed::is_placed(version_id) {
            self.record_placed(target, &paths, &mut versions, version_id)?;
        }
        if versions.pending.as_deref() != Some(version_id) {
            return Err(self.permanent(format!(
                "secret {:?}: version {version_id} is neither pending nor current",
                target.secret_id
            )));
        }
        if atomic::read(&paths.pending)
            .map_err(|e| self.io("read", &paths.pending, e))?
            .is_some()
        {
            let current = self.read(target, &paths.current)?;
            if let Some(base) = base {
                let was = base.value.as_ref().map(|v| v.expose_secret());
                if current.as_deref() != was {
                    return Ok(Promoted::CurrentMoved);
                }
            }
            match current {
                Some(current) => self.write(&paths.previous, &current)?,
                None => self.remove(&paths.previous)?,
            }
            versions.previous = versions.current.clone();
            self.save_versions(&paths, &versions)?;
            atomic::rename(&paths.pending, &paths.current)
                .map_err(|e| self.io("rename", &paths.pending, e))?;
        }
        versions.current = versions.pending.take();
        self.save_versions(&paths, &versions)?;
        Ok(Promoted::Done)
    }

    /// Drops the pending version: the id goes before the file, so a missing
    /// pending file with an id set always means "renamed to current".
    fn clear_pending(&self, paths: &Paths, versions: &mut Versions) -> Result<(), StoreError> {
        if versions.pending.take().is_some() {
            self.save_versions(paths, versions)?;
        }
        self.remove(&paths.pending)
    }

    fn permanent(&self, message: String) -> StoreError {
        StoreError::Permanent {
            store: self.entry.clone(),
            message,
        }
    }

    fn io(&self, action: &str, path: &Path, err: io::Error) -> StoreError {
        let (store, message) = (
            self.entry.clone(),
            format!("{action} {}: {err}", path.display()),
        );
        match err.kind() {
            io::ErrorKind::PermissionDenied => StoreError::Denied { store, message },
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                StoreError::Transient { store, message }
            }
            _ => StoreError::Permanent { store, message },
        }
    }

    fn not_found(&self, target: &Target) -> StoreError {
        StoreError::NotFound {
            store: self.entry.clone(),
            secret_id: target.secret_id.clone(),
        }
    }
}

/// The store's calls, each blocking; [`FileStore`] runs them off the workers.
impl Files {
    fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        match self.read(target, &self.paths(target)?.current)? {
            None if target.create => Ok(None),
            None => Err(self.not_found(target)),
            Some(value) => format::extract_key(target, Some(&value)),
        }
    }

    fn read_previous(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        let value = self.read(target, &self.paths(target)?.previous)?;
        format::extract_key(target, value.as_deref())
    }

    fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError> {
        let paths = self.paths(target)?;
        let versions = self.load_versions(&paths)?;
        self.pending(target, &paths, &versions)
    }

    fn stage(
        &self,
        target: &Target,
        token: &str,
        key: &SecretString,
    ) -> Result<String, StoreError> {
        let paths = self.paths(target)?;
        let mut versions = self.load_versions(&paths)?;
        if versions.current.as_deref() == Some(token) {
            return Ok(token.to_string());
        }
        if let Some(pending) = self
            .pending(target, &paths, &versions)?
            .filter(|p| p.version_id == token)
        {
            if pending.key.expose_secret() != key.expose_secret() {
                return Err(self.permanent(format!(
                    "token {token} was already used to stage a different key"
                )));
            }
            return Ok(token.to_string());
        }
        let current = self.read(target, &paths.current)?;
        if current.is_none() && !target.create {
            return Err(self.not_found(target));
        }
        // Built before anything is written, so a shape error leaves no trace.
        let value = format::replace_key(target, current.as_deref(), key)?;
        if versions.pending.take().is_some() {
            // Unmark first: a crash while rewriting the file must not leave
            // the old id naming the new content.
            self.save_versions(&paths, &versions)?;
        }
        self.write(&paths.pending, value.expose_secret())?;
        versions.pending = Some(token.to_string());
        self.save_versions(&paths, &versions)?;
        Ok(token.to_string())
    }

    fn base(&self, target: &Target) -> Result<Base, StoreError> {
        let paths = self.paths(target)?;
        let Some(value) = self.read(target, &paths.current)? else {
            return Ok(Base::default());
        };
        let key = format::extract_key(target, Some(&value))?;
        let version = self.load_versions(&paths)?.current;
        Ok(Base {
            version,
            value: Some(SecretString::from(value)),
            key,
        })
    }

    /// The sidecar's current id, or its pending id when the pending file is
    /// gone: the rename of a promote landed and its bookkeeping did not.
    fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError> {
        let paths = self.paths(target)?;
        let versions = self.load_versions(&paths)?;
        if let Some(pending) = versions.pending.filter(|id| !placed::is_placed(id)) {
            let file =
                atomic::read(&paths.pending).map_err(|e| self.io("read", &paths.pending, e))?;
            if file.is_none() {
                return Ok(Some(pending));
            }
        }
        Ok(versions.current)
    }

    fn drop_pending(&self, target: &Target) -> Result<(), StoreError> {
        let paths = self.paths(target)?;
        let mut versions = self.load_versions(&paths)?;
        self.clear_pending(&paths, &mut versions)
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

mod placed;
#[cfg(test)]
mod tests;
