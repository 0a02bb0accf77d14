//! The leak check itself: it must find any 12-character piece of an issued
//! key, or of its sha256, in captured text and in recorded files, and must
//! let a label through.

use rekey::secret::redacted_label;

use crate::helpers::{TestEnv, sha256_hex};

#[tokio::test]
async fn a_label_is_no_leak() {
    let env = TestEnv::new().await;
    let (_, key) = env.seed_key("k");
    env.capture(format!("label={}", redacted_label(&key.clone().into())));
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &key).unwrap();
    env.assert_no_secret_leaked();
}

#[tokio::test]
#[should_panic(expected = "of key #0 appears in captured text #0")]
async fn a_piece_of_twelve_characters_from_the_middle_of_a_key_is_a_leak() {
    let env = TestEnv::new().await;
    let (_, key) = env.seed_key("k");
    env.capture(format!("oops ...{}...", &key[30..42]));
    env.assert_no_secret_leaked();
}

#[tokio::test]
#[should_panic(expected = "of key #0 appears in captured text #0")]
async fn the_label_head_and_one_more_character_is_a_leak() {
    let env = TestEnv::new().await;
    let (_, key) = env.seed_key("k");
    env.capture(key["sk-or-v1-".len() - 8..][..12].to_string());
    env.assert_no_secret_leaked();
}

#[tokio::test]
#[should_panic(expected = "of the sha256 of key #1 appears in")]
async fn a_piece_of_a_keys_hash_in_a_state_file_is_a_leak() {
    let env = TestEnv::new().await;
    env.seed_key("a");
    let (_, key) = env.seed_key("b");
    std::fs::create_dir_all(env.path("state/policies")).unwrap();
    let token = sha256_hex(&key);
    std::fs::write(env.path("state/policies/p.json"), &token[20..40]).unwrap();
    env.assert_no_secret_leaked();
}
