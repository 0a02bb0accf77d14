//! Helpers for talking about keys without showing them.

use secrecy::{ExposeSecret, SecretString};

/// A display label for a key that reveals at most a short prefix and suffix,
/// in the style providers use (`sk-or-v1-abc...f12`). Short keys show nothing.
pub fn redacted_label(key: &SecretString) -> String {
    let k = key.expose_secret();
    let chars: Vec<char> = k.chars().collect();
    if chars.len() < 24 {
        return "***".to_string();
    }
    let prefix_len = k.rfind('-').map(|i| i + 1).unwrap_or(0).min(12) + 3;
    let head: String = chars[..prefix_len.min(chars.len() - 3)].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}...{tail}")
}

/// Whether a provider-side redacted label (`sk-or-v1-abc...f12`) could belong to `key`.
pub fn label_matches(label: &str, key: &SecretString) -> bool {
    let k = key.expose_secret();
    match label.split_once("...") {
        Some((head, tail)) if !head.is_empty() && !tail.is_empty() => {
            k.starts_with(head) && k.ends_with(tail) && k.len() > head.len() + tail.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_shows_only_prefix_and_last_three() {
        let key = SecretString::from(
            "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        );
        let label = redacted_label(&key);
        assert_eq!(label, "sk-or-v1-012...def");
        assert!(label_matches(&label, &key));
    }

    #[test]
    fn short_keys_are_fully_hidden() {
        assert_eq!(redacted_label(&SecretString::from("short-key")), "***");
    }

    #[test]
    fn label_does_not_match_other_key() {
        let key = SecretString::from("sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert!(!label_matches("sk-or-v1-bbb...aaa", &key));
        assert!(!label_matches("no-ellipsis", &key));
    }
}
