//! The blocking file work behind one secret: where its files are, reading
//! and atomically writing them, the `.versions.json` sidecar, the swap that
//! promotes `.pending`, and how I/O errors become `StoreError`s.

use std::io;
use std::path::{Component, Path, PathBuf};

use secrecy::ExposeSecret;

use super::{Files, Paths, SUFFIXES, Versions, placed};
use crate::fsutil as atomic;
use crate::policy::Target;
use crate::stores::{Base, Pending, Promoted, StoreError, format};

impl Files {
    /// Refuses ids that would escape `dir` or collide with another secret's side files.
    pub(super) fn paths(&self, target: &Target) -> Result<Paths, StoreError> {
        let id = Path::new(target.secret_id.as_str());
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

    pub(super) fn read(&self, target: &Target, path: &Path) -> Result<Option<String>, StoreError> {
        let bytes = atomic::read(path).map_err(|e| self.io("read", path, e))?;
        bytes
            .map(|b| {
                String::from_utf8(b).map_err(|_| format::shape(target, "value is not UTF-8 text"))
            })
            .transpose()
    }

    pub(super) fn write(&self, path: &Path, contents: &str) -> Result<(), StoreError> {
        atomic::write(path, contents.as_bytes()).map_err(|e| self.io("write", path, e))
    }

    pub(super) fn remove(&self, path: &Path) -> Result<(), StoreError> {
        atomic::remove(path).map_err(|e| self.io("remove", path, e))
    }

    pub(super) fn load_versions(&self, paths: &Paths) -> Result<Versions, StoreError> {
        let bytes =
            atomic::read(&paths.versions).map_err(|e| self.io("read", &paths.versions, e))?;
        let Some(bytes) = bytes else {
            return Ok(Versions::default());
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| self.permanent(format!("{} is corrupt: {e}", paths.versions.display())))
    }

    pub(super) fn save_versions(
        &self,
        paths: &Paths,
        versions: &Versions,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(versions).map_err(|e| self.permanent(e.to_string()))?;
        self.write(&paths.versions, &json)
    }

    /// The pending file's key, when the sidecar says the pending file is
    /// complete, or when a person placed it (it has no id of rekey's then).
    pub(super) fn pending(
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

    pub(super) fn placed_id(&self, paths: &Paths) -> Result<Option<String>, StoreError> {
        placed::id_of(&paths.pending).map_err(|e| self.io("inspect", &paths.pending, e))
    }

    /// Before a placed file is promoted its id goes into the sidecar, so the
    /// crash rule of `promote` holds for it as for a staged one — once it is
    /// sure the file is still the one that was verified.
    pub(super) fn record_placed(
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
    pub(super) fn swap(
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
    pub(super) fn clear_pending(
        &self,
        paths: &Paths,
        versions: &mut Versions,
    ) -> Result<(), StoreError> {
        if versions.pending.take().is_some() {
            self.save_versions(paths, versions)?;
        }
        self.remove(&paths.pending)
    }

    pub(super) fn permanent(&self, message: String) -> StoreError {
        StoreError::Permanent {
            store: self.entry.clone(),
            message,
        }
    }

    pub(super) fn io(&self, action: &str, path: &Path, err: io::Error) -> StoreError {
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

    pub(super) fn not_found(&self, target: &Target) -> StoreError {
        StoreError::NotFound {
            store: self.entry.clone(),
            secret_id: target.secret_id.to_string(),
            detail: None,
        }
    }
}
