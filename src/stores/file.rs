//! Local file store: current, pending and previous files, atomic writes, mode 0600. (Filled in by the store work.)

use async_trait::async_trait;
use secrecy::SecretString;

use super::{Pending, SecretStore, StoreError};
use crate::policy::Target;

pub struct FileStore {
    entry: String,
}

impl FileStore {
    pub fn new(entry: &str, _dir: &std::path::Path) -> Self {
        Self {
            entry: entry.to_string(),
        }
    }
}

#[async_trait]
impl SecretStore for FileStore {
    fn entry(&self) -> &str {
        &self.entry
    }
    async fn read_current(&self, _t: &Target) -> Result<Option<SecretString>, StoreError> {
        todo!()
    }
    async fn read_previous(&self, _t: &Target) -> Result<Option<SecretString>, StoreError> {
        todo!()
    }
    async fn read_pending(&self, _t: &Target) -> Result<Option<Pending>, StoreError> {
        todo!()
    }
    async fn stage(
        &self,
        _t: &Target,
        _token: &str,
        _key: &SecretString,
    ) -> Result<String, StoreError> {
        todo!()
    }
    async fn promote(&self, _t: &Target, _version_id: &str) -> Result<(), StoreError> {
        todo!()
    }
    async fn drop_pending(&self, _t: &Target) -> Result<(), StoreError> {
        todo!()
    }
}
