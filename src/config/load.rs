//! Loading (TOML/YAML via the `config` crate, `REKEY_*` env overrides) and
//! validation into typed [`Config`]. Every problem is collected, each naming
//! its field path. (Filled in by the config work.)

use std::path::{Path, PathBuf};

use super::Config;

/// One thing wrong with a config, at one field path (`policy[2].schedule`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

pub fn load_file(_path: &Path) -> Result<Config, ConfigError> {
    todo!("config loading")
}
