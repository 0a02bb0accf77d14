//! A journal's bytes, the same for every state store: `"format": N` first,
//! then the state's fields. A newer format is refused before its content is
//! looked at. `at` names where the journal lives, for messages (a file's
//! path, a table item).

use serde::{Deserialize, Serialize};

use super::{JOURNAL_FORMAT, PolicyState, StateError};

/// A journal as written: the format first, then the state's fields.
#[derive(Serialize)]
struct Versioned<'a> {
    format: u32,
    #[serde(flatten)]
    state: &'a PolicyState,
}

/// Only the format of a journal, read before the rest.
#[derive(Deserialize)]
struct Header {
    format: Option<u64>,
}

/// A journal's bytes as written: the format first, then the state.
pub fn encode(at: &str, state: &PolicyState) -> Result<Vec<u8>, StateError> {
    let versioned = Versioned {
        format: state.format(),
        state,
    };
    serde_json::to_vec_pretty(&versioned).map_err(|e| StateError::Corrupt {
        path: at.to_string(),
        message: e.to_string(),
    })
}

/// A journal's bytes: refused whole when a newer rekey wrote them (its
/// fields may mean what this one cannot know), else parsed.
pub fn parse(at: &str, bytes: &[u8]) -> Result<PolicyState, StateError> {
    let corrupt = |e: serde_json::Error| StateError::Corrupt {
        path: at.to_string(),
        message: e.to_string(),
    };
    let header: Header = serde_json::from_slice(bytes).map_err(corrupt)?;
    let format = header.format.unwrap_or(1);
    if format > u64::from(JOURNAL_FORMAT) {
        return Err(StateError::NewerFormat {
            path: at.to_string(),
            format,
            known: JOURNAL_FORMAT,
        });
    }
    serde_json::from_slice(bytes).map_err(corrupt)
}
