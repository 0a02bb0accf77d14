//! The store's calls as blocking functions on `Files`, one per
//! `SecretStore` method that touches the disk; `FileStore` runs each on the
//! blocking pool.

use secrecy::{ExposeSecret, SecretString};

use super::{Files, placed};
use crate::fsutil as atomic;
use crate::policy::Target;
use crate::stores::{Base, Pending, StoreError, format};

/// The store's calls, each blocking; [`FileStore`] runs them off the workers.
impl Files {
    pub(super) fn read_current(&self, target: &Target) -> Result<Option<SecretString>, StoreError> {
        match self.read(target, &self.paths(target)?.current)? {
            None if target.create => Ok(None),
            None => Err(self.not_found(target)),
            Some(value) => format::extract_key(target, Some(&value)),
        }
    }

    pub(super) fn read_previous(
        &self,
        target: &Target,
    ) -> Result<Option<SecretString>, StoreError> {
        let value = self.read(target, &self.paths(target)?.previous)?;
        format::extract_key(target, value.as_deref())
    }

    pub(super) fn read_pending(&self, target: &Target) -> Result<Option<Pending>, StoreError> {
        let paths = self.paths(target)?;
        let versions = self.load_versions(&paths)?;
        self.pending(target, &paths, &versions)
    }

    pub(super) fn stage(
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

    pub(super) fn base(&self, target: &Target) -> Result<Base, StoreError> {
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
    pub(super) fn current_version(&self, target: &Target) -> Result<Option<String>, StoreError> {
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

    pub(super) fn drop_pending(&self, target: &Target) -> Result<(), StoreError> {
        let paths = self.paths(target)?;
        let mut versions = self.load_versions(&paths)?;
        self.clear_pending(&paths, &mut versions)
    }
}
