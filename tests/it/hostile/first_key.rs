//! The first key of a brand-new secret is verified before it is written
//! (Secrets Manager makes a secret's first version current whatever the
//! request says), and a closed output pipe never stops a rotation.

use std::process::Stdio;

use rekey::sim::Faults;

use super::assert_no_panic;
use crate::helpers::{TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

#[tokio::test]
async fn a_first_key_that_does_not_verify_is_never_written_to_a_new_secret() {
    let env = TestEnv::with_faults(Faults {
        reject_new_keys: true,
        ..Faults::default()
    })
    .await;
    let id = unique_secret_name("it/first-key");
    let target = format!(r#"{{ store = "aws", secret_id = "{id}", create = true }}"#);
    let verify = r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "2s" }"#;
    env.write_config(&policy("p", &target, verify));

    let run = env.cmd("rotate", &["p", "--now"]).await;
    assert_no_panic(&run, "first key");
    run.assert_code(1);
    let client = sm_client().await;
    let current = client
        .get_secret_value()
        .secret_id(&id)
        .version_stage("AWSCURRENT")
        .send()
        .await;
    assert!(
        current.is_err(),
        "the secret holds no current value: the unverified key was never written"
    );
    assert!(env.live_secrets().is_empty(), "the new key is deleted");

    env.sim.sim.set_faults(Faults::default());
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let out = client
        .get_secret_value()
        .secret_id(&id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .expect("a current value now");
    let current = out.secret_string().unwrap().to_string();
    assert!(env.works(&current));
    assert_eq!(env.live_secrets(), vec![current]);
    env.assert_no_secret_leaked();
}

/// `rekey rotate ... | head -1` with both streams closed at once: every
/// write fails (EPIPE), the rotation still runs to its end.
#[tokio::test]
async fn a_closed_output_pipe_does_not_stop_a_rotation() {
    let env = TestEnv::new().await;
    let target = r#"{ store = "files", secret_id = "k", create = true }"#;
    env.write_config(&policy("p", target, r#"revoke = { grace = "0s" }"#));
    env.cmd("rotate", &["p", "--now"]).await.assert_code(0);
    let first = std::fs::read_to_string(env.path("secrets/k")).unwrap();

    let config = env.config_path();
    let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
    let mut cmd = env.command(&args, &[]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("finished")
        .unwrap();
    assert_eq!(status.code(), Some(0), "the rotation finished and said so");
    let current = std::fs::read_to_string(env.path("secrets/k")).unwrap();
    assert_ne!(current, first, "a new key is current");
    assert_eq!(env.live_secrets(), vec![current], "the old key is revoked");
    assert!(env.journal("p")["in_flight"].is_null());

    let config = env.config_path();
    let args = ["status", "-c", config.to_str().unwrap(), "--json"];
    let mut cmd = env.command(&args, &[]);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().await.unwrap();
    assert_ne!(
        status.code(),
        Some(101),
        "status does not panic on a closed pipe"
    );
}
