use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::sim::{Api, Simulator};

fn label(key: &str) -> String {
    redacted_label(&SecretString::from(key))
}

/// `label` split at its ellipsis, checked to be `prefix` + at most `head`
/// random characters, then at most `tail` random characters, all taken from
/// the two ends of `key`'s random part.
#[track_caller]
fn assert_reveals_at_most(key: &str, prefix: &str, head: usize, tail: usize) {
    let label = label(key);
    let (shown_head, shown_tail) = label.split_once("...").expect("an ellipsis");
    let random_head = shown_head.strip_prefix(prefix).expect("the fixed prefix");
    assert!(random_head.len() <= head, "{label}: head of {key}");
    assert!(shown_tail.len() <= tail, "{label}: tail of {key}");
    assert!(key.starts_with(shown_head) && key.ends_with(shown_tail));
    let hidden = key.len() - shown_head.len() - shown_tail.len();
    assert!(hidden >= 12.min(key.len() - prefix.len()), "{label}: {key}");
}

#[test]
fn prefixes_are_listed_longest_first_so_the_longest_match_wins() {
    let lengths: Vec<usize> = KNOWN_PREFIXES.iter().map(|p| p.len()).collect();
    assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "{lengths:?}");
    assert_eq!(fixed_prefix("sk-or-v1-abc"), "sk-or-v1-");
    assert_eq!(fixed_prefix("sk-ant-api03-x"), "sk-ant-api03-");
    assert_eq!(fixed_prefix("sk-ant-admin01-x"), "sk-ant-admin01-");
    assert_eq!(fixed_prefix("sk-Ab-Cd"), "sk-");
    assert_eq!(fixed_prefix("key-abc-def"), "");
}

#[test]
fn label_shows_only_prefix_and_three_characters_at_each_end() {
    let key = SecretString::from(
        "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    let label = redacted_label(&key);
    assert_eq!(label, "sk-or-v1-012...def");
    assert!(label_matches(&label, &key));
}

#[test]
fn every_simulator_key_shape_shows_its_fixed_prefix_and_at_most_three_and_three() {
    let sim = Simulator::new("mgmt");
    let prefixes = [
        (Api::OpenRouter, "sk-or-v1-"),
        (Api::ARouter, "lr_live_"),
        (Api::OpenAi, "sk-svcacct-"),
        (Api::LiteLlm, "sk-"),
        (Api::Anthropic, "sk-ant-api03-"),
    ];
    assert_eq!(prefixes.len(), Api::ALL.len(), "every API is covered");
    for (api, prefix) in prefixes {
        for name in ["a", "b", "c"] {
            let (_, secret) = sim.insert_key_in(api, name);
            assert_eq!(fixed_prefix(&secret), prefix, "{api:?}");
            assert_reveals_at_most(&secret, prefix, 3, 3);
            assert!(label_matches(&label(&secret), &secret.into()));
        }
    }
}

#[test]
fn litellm_keys_with_dashes_in_the_random_part_show_only_three_characters() {
    // `sk-` + `secrets.token_urlsafe(16)`: 22 characters of URL-safe base64.
    for key in [
        "sk-Ab-_cd-EfGh_iJ-kLmNo",
        "sk-----------------9_xY",
        "sk-a-b-c-d-e-f-g-h-i-jk",
        "sk-_or-v1-_-_-_-_-_-_-_",
    ] {
        let label = label(key);
        let tail = &key[key.len() - 3..];
        assert_eq!(label, format!("{}...{tail}", fixed_prefix(key)), "{key}");
        assert!(label_matches(&label, &SecretString::from(key)), "{key}");
    }
}

#[test]
fn random_url_safe_keys_never_show_more_than_three_characters_at_an_end() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..2_000 {
        let prefix = KNOWN_PREFIXES[rng.random_range(0..KNOWN_PREFIXES.len())];
        let len = rng.random_range(15..120);
        let random: String = (0..len)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        let key = format!("{prefix}{random}");
        // The random part may itself start like a longer known prefix.
        let prefix = fixed_prefix(&key);
        let head = if key.len() - prefix.len() >= FULL_LABEL_MIN {
            3
        } else {
            0
        };
        assert_reveals_at_most(&key, prefix, head, 3);
    }
}

#[test]
fn short_keys_show_at_most_their_prefix_and_two_labels_may_be_equal() {
    assert_eq!(label("short-key"), "...");
    assert_eq!(label("sk-abc"), "sk-...");
    assert_eq!(label("sk-0123456789abcd"), "sk-...", "14 random characters");
    assert_eq!(label("sk-0123456789abcde"), "sk-...cde");
    assert_eq!(label("sk-0123456789abcde"), label("sk-ffffffffffffcde"));
    assert!(!label_matches(
        &label("sk-abc"),
        &SecretString::from("sk-abc")
    ));
}

#[test]
fn control_characters_in_a_key_do_not_reach_the_label() {
    let key = "sk-or-v1-\n\u{1b}[31m0123456789abcdef0123456789abcdef\r\n";
    assert!(!label(key).chars().any(char::is_control), "{}", label(key));
}

#[test]
fn provider_labels_match_their_own_key_and_no_other() {
    let key = SecretString::from("sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert!(label_matches("sk-or-v1-aaa...aaa", &key));
    assert!(!label_matches("sk-or-v1-bbb...aaa", &key));
    assert!(!label_matches("no-ellipsis", &key));
    assert!(!label_matches("...aaa", &key), "a bare tail names nothing");
    let litellm = SecretString::from("sk-Ab-_cd-EfGh_iJ-kLmNo");
    assert!(label_matches("sk-...mNo", &litellm));
    assert!(label_matches("sk-...kLmNo", &litellm));
    assert!(label_matches("sk-…LmNo", &litellm));
    assert!(!label_matches("sk-...LmNx", &litellm));
}

#[test]
fn scrub_replaces_key_like_words_and_keeps_the_rest() {
    let key = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let token = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";
    let rotation = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let text = format!(
        "called `Result::unwrap()` on an `Err` value: key {key} (token={token}) in {rotation}; already_borrowed_mutably"
    );
    let scrubbed = scrub(&text);
    assert_eq!(
        scrubbed,
        format!(
            "called `Result::unwrap()` on an `Err` value: key sk-or-v1-012...def (token=[redacted]) in {rotation}; already_borrowed_mutably"
        )
    );
    let litellm = "sk-Ab1_cd-EfGh_iJ-kLmNo";
    assert_eq!(scrub(&format!("\"{litellm}\"")), "\"sk-...mNo\"");
}

#[test]
fn provider_labels_are_trimmed_to_three_characters_at_each_end() {
    assert_eq!(trimmed_label("sk-...abcd"), "sk-...bcd");
    assert_eq!(
        trimmed_label("sk-ant-api03-R2D...igAA"),
        "sk-ant-api03-R2D...gAA"
    );
    assert_eq!(
        trimmed_label("sk-or-v1-abcdef…123456"),
        "sk-or-v1-abc...456"
    );
    assert_eq!(
        trimmed_label("sk-abc"),
        "",
        "no ellipsis: not a redacted form"
    );
    let key = SecretString::from("sk-Ab-_cd-EfGh_iJ-kLmNo");
    assert!(label_matches(&trimmed_label("sk-...kLmNo"), &key));
}
