//! Where a credential is read from: the one type every part of the config
//! that names a credential shares (read by `config::secret_ref::resolve`).

use std::path::PathBuf;

/// Where a credential is read from. Never a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
    AwsSm {
        secret_id: String,
        field: Option<String>,
    },
}
