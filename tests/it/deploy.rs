//! The deployment files in deploy/ (and the Dockerfile) against the code and
//! config they deploy: each test reads a file and fails when it drifts from
//! what rekey does — the Secrets Manager calls it makes, the config it
//! accepts, the port it listens on, the metrics it exports. File-level only:
//! nothing here needs a cluster, a registry or systemd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rekey::config::Config;
use rekey::config::load::{SourceFormat, load_file, load_str};

mod alerts;
mod dynamodb;
mod iam;
mod kubernetes;
mod kubernetes_ha;
mod systemd;

/// A file of this repository, by path from its root.
fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[track_caller]
fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// A YAML document as JSON, through the `config` crate's YAML support.
#[track_caller]
fn yaml(rel: &str) -> serde_json::Value {
    yaml_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

fn yaml_str(text: &str) -> Result<serde_json::Value, config::ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Yaml))
        .build()?
        .try_deserialize()
}

/// The rekey.toml embedded in the Kubernetes ConfigMap, as text.
fn configmap_toml() -> String {
    configmap_toml_in("deploy/kubernetes")
}

/// The rekey.toml embedded in the ConfigMap of the kustomization in `dir`.
fn configmap_toml_in(dir: &str) -> String {
    let configmap = yaml(&format!("{dir}/configmap.yaml"));
    assert_eq!(configmap["kind"], "ConfigMap");
    configmap["data"]["rekey.toml"]
        .as_str()
        .expect("the ConfigMap has data.\"rekey.toml\"")
        .to_string()
}

/// The ConfigMap's rekey.toml, validated by rekey's own loader.
fn configmap_config() -> Config {
    load_str(
        &configmap_toml(),
        SourceFormat::Toml,
        Path::new("/etc/rekey"),
    )
    .unwrap_or_else(|e| panic!("the ConfigMap's rekey.toml is invalid: {e}"))
}

/// config/rekey.example.toml, the config the systemd unit is documented with.
fn example_config() -> Config {
    load_file(&repo("config/rekey.example.toml"))
        .unwrap_or_else(|e| panic!("config/rekey.example.toml is invalid: {e}"))
}

/// Dockerfile instructions, with `\` continuations joined: (INSTRUCTION, rest).
fn dockerfile() -> Vec<(String, String)> {
    let text = read("Dockerfile").replace("\\\n", " ");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((word, rest)) => (word.to_ascii_uppercase(), rest.trim().to_string()),
            None => (l.to_ascii_uppercase(), String::new()),
        })
        .collect()
}

#[test]
fn the_dockerfile_builds_locked_in_one_stage_and_runs_non_root_in_another() {
    let lines = dockerfile();
    let stages: Vec<&str> = lines
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, rest)| rest.as_str())
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    let builder = stages[0]
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("AS"))
        .map(|w| w[1].to_string())
        .expect("the first stage is named (FROM ... AS build)");
    assert!(stages[0].starts_with("rust:"), "{}", stages[0]);

    let build = lines
        .iter()
        .find(|(i, rest)| i == "RUN" && rest.contains("cargo build"))
        .map(|(_, rest)| rest)
        .expect("a RUN cargo build");
    assert!(build.contains("--release"), "{build}");
    assert!(build.contains("--locked"), "{build}");

    let runtime_start = lines.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let runtime = &lines[runtime_start..];
    assert!(
        runtime
            .iter()
            .any(|(i, rest)| i == "COPY" && rest.contains(&format!("--from={builder}"))),
        "the runtime stage copies the binary from the {builder} stage"
    );
    let user = runtime
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, rest)| rest.as_str())
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|uid| uid != 0),
        "USER {user}: numeric (so runAsNonRoot can check it) and not root"
    );
    let has = |instr: &str, needle: &str| {
        runtime
            .iter()
            .any(|(i, rest)| i == instr && rest.contains(needle))
    };
    assert!(has("ENTRYPOINT", "rekey"));
    assert!(has("EXPOSE", "9477"));
}

#[test]
fn the_docker_build_context_holds_everything_cargo_needs() {
    let copied: Vec<String> = dockerfile()
        .into_iter()
        .filter(|(i, rest)| i == "COPY" && !rest.contains("--from"))
        .flat_map(|(_, rest)| {
            let words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let manifest = read("Cargo.toml");
    let mut needed = vec!["Cargo.toml", "Cargo.lock", "src"];
    if manifest.contains("[[bench]]") {
        needed.push("benches");
    }
    let ignored = read(".dockerignore");
    let ignored: Vec<&str> = ignored
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for path in needed {
        assert!(copied.iter().any(|c| c == path), "Dockerfile copies {path}");
        assert!(!ignored.contains(&path), ".dockerignore excludes {path}");
    }
}

#[test]
fn the_configmap_config_passes_rekey_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rekey.toml");
    std::fs::write(&path, configmap_toml()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rekey"))
        .args(["check", "-c", path.to_str().unwrap()])
        .env_remove("REKEY_FAILPOINT")
        .output()
        .expect("rekey runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Its shape is valid; outside the pod its file: credentials (the
    // mounted admin token) cannot be read, which `check` reports as exit 1.
    let references = ["daemon.admin_token: ", "providers.", "notify."];
    let errors = stderr.lines().filter(|l| l.starts_with("error: "));
    for line in errors {
        let what = &line["error: ".len()..];
        assert!(
            references.iter().any(|r| what.starts_with(r)),
            "only unreadable credentials: {line}\n{stdout}\n{stderr}"
        );
    }
    let code = out.status.code();
    assert!(code == Some(0) || code == Some(1), "{stdout}\n{stderr}");
    for policy in &configmap_config().policies {
        assert!(stdout.contains(&format!("  {}: ", policy.name)), "{stdout}");
    }
}

/// `90s`, `1min 30s`... as systemd and humantime both read them.
fn seconds(text: &str) -> Duration {
    humantime::parse_duration(text.trim()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}
