//! `rekey sim --faults F.json` reads the `after_effect` knobs at start, and
//! refuses a file whose knob is wrong before it serves anything.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{Answer, MANAGEMENT_KEY, http};
use crate::helpers::binary;

fn sim_command(faults: &std::path::Path) -> Command {
    let mut command = Command::new(binary());
    command
        .args(["sim", "--listen", "127.0.0.1:0", "--faults"])
        .arg(faults)
        .env("REKEY_SIM_MANAGEMENT_KEY", MANAGEMENT_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_simulator_binary_starts_with_after_effect_knobs_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.json");
    let knobs = json!({ "after_effect": { "create": { "mode": "unavailable", "count": 1 } } });
    std::fs::write(&faults, knobs.to_string()).unwrap();
    let mut child = sim_command(&faults).spawn().expect("rekey sim starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    let first = first
        .expect("rekey sim says where it listens")
        .unwrap()
        .unwrap();
    let base = first
        .trim()
        .strip_prefix("simulator listening on ")
        .expect("the listening line")
        .to_string();

    let create = http()
        .post(format!("{base}/keys"))
        .bearer_auth(MANAGEMENT_KEY);
    let create = || create.try_clone().unwrap().json(&json!({ "name": "k" }));
    assert_eq!(
        Answer::of(create()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(Answer::of(create()).await.status, StatusCode::CREATED);
    let origin = base.trim_end_matches("/api/v1");
    let state = Answer::of(http().get(format!("{origin}/_sim/state")))
        .await
        .json();
    assert_eq!(state["keys"].as_array().map(Vec::len), Some(2), "{state}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_faults_file_with_a_hang_but_no_hang_ms_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let faults = dir.path().join("faults.json");
    let knobs = json!({ "after_effect": { "create": { "mode": "hang" } } });
    std::fs::write(&faults, knobs.to_string()).unwrap();
    let run = sim_command(&faults).output();
    let out = tokio::time::timeout(Duration::from_secs(30), run).await;
    let out = out.expect("rekey sim exits").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("after_effect.create") && stderr.contains("hang_ms"),
        "{stderr}"
    );
}
