//! Helpers for talking about keys without showing them: the redacted label
//! rekey records and prints for a key, matching a provider's own redacted
//! form against a key (adoption), and scrubbing key-like words out of free
//! text that may carry one by mistake (panic messages).

use secrecy::{ExposeSecret, SecretString};

/// Fixed, non-random key prefixes of the providers rekey knows, longest
/// first (the first that fits wins). Nothing else is ever taken for a
/// prefix: a `-` inside the random part (URL-safe base64) says nothing
/// about where that part starts.
const KNOWN_PREFIXES: [&str; 11] = [
    "sk-ant-admin01-",
    "sk-ant-api03-",
    "sk-svcacct-",
    "sk-or-v1-",
    "sk-admin-",
    "sk-proj-",
    "sk-None-",
    "lr_live_",
    "lr_mgmt_",
    "sk-ant-",
    "sk-",
];

/// A random part at least this long shows 3 characters at each end.
const FULL_LABEL_MIN: usize = 24;
/// A random part at least this long (and shorter than [`FULL_LABEL_MIN`])
/// shows its last 3 characters only; shorter ones show none. Either way at
/// least 12 random characters stay hidden.
const TAIL_LABEL_MIN: usize = 15;
/// Characters shown at one end of the random part.
const SHOWN: usize = 3;

/// The provider's fixed prefix of `key` (`sk-or-v1-`, `lr_live_`...), the
/// longest of [`KNOWN_PREFIXES`] it starts with; empty when none fits.
pub fn fixed_prefix(key: &str) -> &'static str {
    (KNOWN_PREFIXES.into_iter())
        .find(|p| key.starts_with(p))
        .unwrap_or("")
}

/// The label rekey records and prints for a key: its fixed provider prefix
/// (see [`fixed_prefix`]) plus at most 3 characters at each end of the
/// random part after it, so that a label never narrows the search for a key
/// in any useful way:
///
/// - random part of 24 characters or more: `sk-or-v1-abc...f12`;
/// - 15 to 23 characters (LiteLLM's `sk-` + 22 URL-safe base64): the last 3
///   only, `sk-...f12`;
/// - shorter: the prefix alone, `sk-...`.
///
/// Labels are for people and for matching a provider's own hint; they are
/// not unique, and nothing may decide "same key" by comparing them.
pub fn redacted_label(key: &SecretString) -> String {
    let key = key.expose_secret();
    let prefix = fixed_prefix(key);
    let random: Vec<char> = key[prefix.len()..].chars().map(printable).collect();
    let (head, tail) = match random.len() {
        n if n >= FULL_LABEL_MIN => (&random[..SHOWN], &random[n - SHOWN..]),
        n if n >= TAIL_LABEL_MIN => (&random[..0], &random[n - SHOWN..]),
        _ => (&random[..0], &random[..0]),
    };
    let (head, tail): (String, String) = (head.iter().collect(), tail.iter().collect());
    format!("{prefix}{head}...{tail}")
}

/// A control character in a label would let a key forge log lines.
fn printable(c: char) -> char {
    if c.is_control() { '?' } else { c }
}

/// Whether a provider-side redacted label (`sk-or-v1-abc...f12`,
/// `sk-...abcd`, `sk-ant-api03-R2D...igAA`) could belong to `key`: the key
/// starts with the part before the ellipsis, ends with the part after it,
/// and has characters in between. Both parts must be present.
pub fn label_matches(label: &str, key: &SecretString) -> bool {
    let k = key.expose_secret();
    let parts = label.split_once("...").or_else(|| label.split_once('…'));
    match parts {
        Some((head, tail)) if !head.is_empty() && !tail.is_empty() => {
            k.starts_with(head) && k.ends_with(tail) && k.len() > head.len() + tail.len()
        }
        _ => false,
    }
}

/// A provider's own redacted form of a key cut down to rekey's rule (see
/// [`redacted_label`]): its fixed prefix plus at most 3 characters at each
/// end (LiteLLM's `sk-...abcd` becomes `sk-...bcd`). A label without an
/// ellipsis is not a redacted form anyone can vouch for: it becomes empty.
pub fn trimmed_label(provider_label: &str) -> String {
    let parts = (provider_label.split_once("...")).or_else(|| provider_label.split_once('…'));
    let Some((head, tail)) = parts else {
        return String::new();
    };
    let prefix = fixed_prefix(head);
    let head: String = head[prefix.len()..]
        .chars()
        .take(SHOWN)
        .map(printable)
        .collect();
    let tail: Vec<char> = tail.chars().map(printable).collect();
    let tail: String = tail[tail.len().saturating_sub(SHOWN)..].iter().collect();
    format!("{prefix}{head}...{tail}")
}

/// A word in free text this long or longer, with letters and digits in
/// it, may be a key (or a key's hash) and is not repeated as it is.
const KEY_LIKE_MIN: usize = 20;

/// `text` with every word that may be a key replaced: one with a known key
/// prefix by its [`redacted_label`], any other long word of letters and
/// digits (a hash, a key of unknown shape) by `[redacted]`. A word is a run
/// of ASCII letters, digits, `-` and `_`. UUIDs (rotation ids) are kept.
/// Used where text of unknown origin is logged, such as a panic message.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            word.push(c);
            continue;
        }
        out.push_str(&scrub_word(&word));
        word.clear();
        out.push(c);
    }
    out.push_str(&scrub_word(&word));
    out
}

fn scrub_word(word: &str) -> String {
    let letters = word.chars().any(|c| c.is_ascii_alphabetic());
    let digits = word.chars().any(|c| c.is_ascii_digit());
    let key_like = word.len() >= KEY_LIKE_MIN && letters && digits && !is_uuid(word);
    match key_like {
        false => word.to_string(),
        true if !fixed_prefix(word).is_empty() => {
            redacted_label(&SecretString::from(word.to_string()))
        }
        true => "[redacted]".to_string(),
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(word: &str) -> bool {
    let groups: Vec<&str> = word.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
#[cfg(feature = "sim")]
mod tests;
