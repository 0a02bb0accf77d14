//! Invariant 4 for panics: the binary's panic hook logs a panic as one
//! structured error line (message and location, no backtrace), and a key
//! formatted into a panic message by some bug does not reach the output.

use crate::helpers::{TestEnv, policy, sha256_hex};

/// The JSON log line the panic hook wrote, if any.
fn panic_line(stderr: &str) -> Option<serde_json::Value> {
    (stderr.lines())
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["fields"]["message"] == "panic")
}

/// Rotates policy `p` (its current key made by hand) with a panic injected
/// at `create` whose message carries that key and its sha256, as a bug
/// formatting a key into a panic would; returns the run's stderr.
async fn panic_with_a_key_in_its_message(env: &TestEnv, log_format: &str) -> String {
    let (_, old) = env.seed_key("made-by-hand");
    std::fs::create_dir_all(env.path("secrets")).unwrap();
    std::fs::write(env.path("secrets/k"), &old).unwrap();
    env.write_config(&policy("p", r#"{ store = "files", secret_id = "k" }"#, ""));
    let carried = format!("while holding \"{old}\" (token={})", sha256_hex(&old));
    let config = env.config_path();
    let config = config.to_str().unwrap();
    let args = [
        "--log-format",
        log_format,
        "rotate",
        "-c",
        config,
        "p",
        "--now",
    ];
    let failpoint = [
        ("REKEY_FAILPOINT", "create"),
        ("REKEY_FAILPOINT_ACTION", "panic"),
        ("REKEY_FAILPOINT_PANIC_TEXT", carried.as_str()),
        ("RUST_BACKTRACE", "1"),
    ];
    let run = env.rekey_env(&args, &failpoint).await;
    assert_ne!(run.code, Some(0), "a panicked rotation does not succeed");
    assert!(
        !run.stderr.contains("panicked at"),
        "the default hook's text is replaced"
    );
    assert!(
        !run.stderr.contains("stack backtrace"),
        "no backtrace is printed"
    );
    run.stderr
}

#[tokio::test]
async fn a_panic_is_one_json_error_line_with_its_location_and_no_piece_of_a_key() {
    let env = TestEnv::new().await;
    let stderr = panic_with_a_key_in_its_message(&env, "json").await;
    let line = panic_line(&stderr).unwrap_or_else(|| panic!("no panic line in:\n{stderr}"));
    assert_eq!(line["level"], "ERROR");
    let message = line["fields"]["panic.message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("failpoint create: injected panic while holding \"sk-or-v1-"),
        "{message}"
    );
    assert!(message.contains("(token=[redacted])"), "{message}");
    let location = line["fields"]["panic.location"]
        .as_str()
        .unwrap_or_default();
    assert!(location.starts_with("src/failpoint.rs:"), "{location}");
    env.assert_no_secret_leaked();
}

#[tokio::test]
async fn a_panic_in_the_pretty_log_format_is_an_error_line_without_a_piece_of_a_key() {
    let env = TestEnv::new().await;
    let stderr = panic_with_a_key_in_its_message(&env, "pretty").await;
    let line = stderr
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("panic"));
    let line = line.unwrap_or_else(|| panic!("no panic line in:\n{stderr}"));
    assert!(line.contains("failpoint create: injected panic"), "{line}");
    env.assert_no_secret_leaked();
}
