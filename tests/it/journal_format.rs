//! The journal's format version, for upgrades and roll-backs: every journal
//! names its format; one without it (an older rekey's) loads; one from a
//! newer rekey is refused with what to do, distinct from corruption, and
//! left byte for byte as it was.

use serde_json::Value;

use crate::daemon_proc::journal;
use crate::helpers::{TestEnv, policy};

const TARGET: &str = r#"{ store = "files", secret_id = "k", create = true }"#;

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    (rows.as_array().expect("rows").iter())
        .find(|r| r["policy"] == name)
        .unwrap_or_else(|| panic!("no row {name}: {rows}"))
}

#[tokio::test]
async fn a_journal_from_a_newer_rekey_is_refused_and_left_untouched() {
    let env = TestEnv::new().await;
    let mut config = policy("p", TARGET, "");
    config.push_str(&policy(
        "q",
        r#"{ store = "files", secret_id = "q", create = true }"#,
        "",
    ));
    env.write_config(&config);
    env.cmd("run", &["--once"]).await.assert_code(0);
    assert_eq!(
        journal(&env, "p")["format"],
        1,
        "journals name their format"
    );

    let path = env.path("state/policies/p.json");
    let mut newer = journal(&env, "p");
    newer["format"] = Value::from(3);
    newer["something_new"] = Value::from("a field this rekey does not know");
    let bytes = serde_json::to_vec_pretty(&newer).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let want = format!(
        "journal {} has format 3, written by a newer rekey; this rekey reads formats up to 2 — upgrade rekey or restore the journal backup",
        path.display()
    );

    let once = env.cmd("run", &["--once"]).await;
    once.assert_code(1);
    assert!(once.stderr.contains(&want), "{}", once.stderr);
    assert!(!once.stderr.contains("corrupt"), "{}", once.stderr);
    assert!(
        once.stderr
            .contains("1 policy not rotated: the journal cannot be read"),
        "{}",
        once.stderr
    );
    assert!(!once.stderr.contains("of 0"), "{}", once.stderr);

    let rotate = env.cmd("rotate", &["p", "--now"]).await;
    rotate.assert_code(1);
    assert!(rotate.stderr.contains(&want), "{}", rotate.stderr);

    let table = env.cmd("status", &[]).await;
    table.assert_code(0);
    assert!(table.stdout.contains(&want), "{}", table.stdout);
    assert!(
        !table.stdout.contains("journal corrupt"),
        "{}",
        table.stdout
    );
    let json = env.cmd("status", &["--json"]).await;
    let rows: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(row(&rows, "p")["journal_newer_format"], want.as_str());
    assert!(row(&rows, "p").get("journal_corrupt").is_none(), "{rows}");
    assert!(row(&rows, "q")["current_label"].is_string(), "{rows}");

    assert_eq!(std::fs::read(&path).unwrap(), bytes, "byte for byte");
    let names: Vec<_> = std::fs::read_dir(env.path("state/policies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| n == "p.json" || n == "q.json"),
        "nothing moved aside: {names:?}"
    );
}

#[tokio::test]
async fn a_journal_without_a_format_is_read_as_format_1() {
    let env = TestEnv::new().await;
    env.write_config(&policy("p", TARGET, ""));
    env.cmd("run", &["--once"]).await.assert_code(0);
    let mut older = journal(&env, "p");
    let label = older["current"]["label"].clone();
    older.as_object_mut().unwrap().remove("format");
    let path = env.path("state/policies/p.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&older).unwrap()).unwrap();

    let json = env.cmd("status", &["--json"]).await;
    json.assert_code(0);
    let rows: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(row(&rows, "p")["current_label"], label, "{rows}");

    env.cmd("rotate", &["p", "--now", "--grace", "0"])
        .await
        .assert_code(0);
    assert_eq!(journal(&env, "p")["format"], 1, "rewritten as format 1");
}
