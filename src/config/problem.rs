//! What can be wrong with a config: a [`ConfigProblem`] at one field path,
//! and the [`ConfigError`] a load returns (the file unreadable, or every
//! problem found in it). Every config module reports in these terms.

use std::path::PathBuf;

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
    #[error("{file}: {}:\n{}", crate::text::plural(problems.len(), "problem", "problems"), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}
