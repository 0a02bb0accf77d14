//! One test environment per scenario: a temp dir, an in-process simulator on
//! a free port, a config pointing at it (and at moto), and the real `rekey`
//! binary. Everything the binary prints is kept, so that every scenario can
//! check no issued key ever appeared in output, journal or status.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rekey::sim::{Api, Faults, SimHandle, Simulator};

pub const MGMT_ENV: &str = "REKEY_IT_MANAGEMENT_KEY";

/// One provider as the tests drive it: which simulated API, the lines its
/// `[providers.sim]` entry needs beyond kind, base_url and management_key,
/// and the lines every policy for it needs (verify mode, project_id...).
#[derive(Debug, Clone)]
pub struct Case {
    pub api: Api,
    pub provider_lines: String,
    pub policy_lines: String,
}

impl Case {
    pub fn openrouter() -> Case {
        Case {
            api: Api::OpenRouter,
            provider_lines: String::new(),
            policy_lines: String::new(),
        }
    }

    /// Assisted: no key parameters (no name either), verified with `GET /v1/models`.
    pub fn anthropic() -> Case {
        Case {
            api: Api::Anthropic,
            provider_lines: String::new(),
            policy_lines: "key = {}\nverify = { mode = \"models\", timeout = \"5s\" }".into(),
        }
    }

    /// A person places the new key as pending; rekey cannot create one.
    pub fn assisted(&self) -> bool {
        self.api == Api::Anthropic
    }

    /// ARouter as its API reference documents it (`/api/v1/keys`, `hash`).
    pub fn arouter() -> Case {
        Case {
            api: Api::ARouter,
            provider_lines: String::new(),
            policy_lines: r#"verify = { mode = "key-info", timeout = "10s" }"#.to_string(),
        }
    }

    /// ARouter as its rotation guide documents it (`/v1/keys`, `key_...` ids).
    pub fn arouter_guide() -> Case {
        Case {
            api: Api::ARouter,
            provider_lines: r#"api = "guide""#.to_string(),
            policy_lines: r#"verify = { mode = "models", timeout = "10s" }"#.to_string(),
        }
    }

    /// A LiteLLM proxy, its master key as management key.
    pub fn litellm() -> Case {
        Case {
            api: Api::LiteLlm,
            provider_lines: String::new(),
            policy_lines: r#"verify = { mode = "models", timeout = "10s" }"#.to_string(),
        }
    }

    /// OpenAI: keys are service accounts in the simulator's project,
    /// verified with a free `GET /models`.
    pub fn openai() -> Case {
        Case {
            api: Api::OpenAi,
            provider_lines: String::new(),
            policy_lines: format!(
                "project_id = \"{}\"\nverify = {{ mode = \"models\", timeout = \"10s\" }}",
                rekey::sim::SIM_OPENAI_PROJECT
            ),
        }
    }
}

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub mgmt_key: String,
    captured: Mutex<Vec<String>>,
}

#[derive(Debug)]
pub struct Run {
    /// `None` when the process died of a signal (a failpoint abort).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with_faults(Faults::default()).await
    }

    pub async fn with_faults(faults: Faults) -> Self {
        let mgmt_key = format!("sk-or-v1-mgmt-{:032x}", rand::random::<u128>());
        let sim = Simulator::new(&mgmt_key)
            .with_faults(faults)
            .spawn()
            .await
            .expect("simulator starts");
        TestEnv {
            dir: tempfile::tempdir().expect("temp dir"),
            sim,
            mgmt_key,
            captured: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("rekey.toml")
    }

    /// Writes `rekey.toml`: daemon, provider `sim` (OpenRouter), stores
    /// `files` and `aws` (moto), followed by `policies` (TOML `[[policy]]` tables).
    pub fn write_config(&self, policies: &str) {
        self.write_config_case(&Case::openrouter(), policies)
    }

    /// Like [`TestEnv::write_config`], with provider `sim` speaking `case`'s API.
    pub fn write_config_case(&self, case: &Case, policies: &str) {
        let aws = match std::env::var("REKEY_TEST_MOTO_URL") {
            Ok(url) => format!(
                "[stores.aws]\nkind = \"aws-secrets-manager\"\nregion = \"us-east-1\"\nendpoint_url = \"{url}\"\n"
            ),
            Err(_) => String::new(),
        };
        let text = format!(
            r#"[daemon]
state = "file:{state}"
admin_listen = "127.0.0.1:0"
catch_up_jitter = "0s"
failure_backoff = {{ min = "1s", max = "2s" }}

[providers.sim]
kind = "{kind}"
base_url = "{base}"
management_key = "env:{MGMT_ENV}"
request_timeout = "5s"
{provider_lines}

[stores.files]
kind = "file"
dir = "{secrets}"

{aws}
{policies}"#,
            state = self.path("state").display(),
            secrets = self.path("secrets").display(),
            kind = case.api.as_str(),
            base = self.sim.url(case.api),
            provider_lines = case.provider_lines,
        );
        std::fs::write(self.config_path(), text).expect("config written");
    }

    /// Runs `rekey <args>` with the management key in its environment.
    pub async fn rekey(&self, args: &[&str]) -> Run {
        self.rekey_env(args, &[]).await
    }

    pub async fn rekey_env(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let child = self
            .command(args, envs)
            .spawn()
            .expect("rekey binary starts");
        let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("rekey finished within 2 minutes")
            .expect("rekey output");
        self.keep(out)
    }

    pub fn command(&self, args: &[&str], envs: &[(&str, &str)]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(binary());
        cmd.args(args)
            .env(MGMT_ENV, &self.mgmt_key)
            .env("RUST_LOG", "info")
            .env_remove("REKEY_FAILPOINT")
            .env_remove("REKEY_FAILPOINT_ACTION")
            .envs(envs.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    pub fn keep(&self, out: std::process::Output) -> Run {
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut captured = self.captured.lock().unwrap();
        captured.push(run.stdout.clone());
        captured.push(run.stderr.clone());
        run
    }

    /// Keeps `text` (an audit log, a webhook body, a metrics scrape) for
    /// [`TestEnv::assert_no_secret_leaked`].
    pub fn capture(&self, text: String) {
        self.captured.lock().unwrap().push(text);
    }

    /// `rekey <cmd> -c <config> <rest...>`
    pub async fn cmd(&self, cmd: &str, rest: &[&str]) -> Run {
        let config = self.config_path();
        let mut args = vec![cmd, "-c", config.to_str().unwrap()];
        args.extend_from_slice(rest);
        self.rekey(&args).await
    }

    /// Seeds a key at the simulator, as if a person had made it. Returns (hash, secret).
    pub fn seed_key(&self, name: &str) -> (String, String) {
        self.sim.sim.insert_key(name)
    }

    /// Seeds a key at `api`, as if a person had made it in its console. Returns (id, secret).
    pub fn seed_key_in(&self, api: Api, name: &str) -> (String, String) {
        self.sim.sim.insert_key_in(api, name)
    }

    /// Keys that exist and are not disabled (Anthropic: `inactive` or `archived`).
    pub fn live_secrets(&self) -> Vec<String> {
        let keys = self.sim.sim.keys().into_iter();
        keys.filter(|k| !k.disabled).map(|k| k.secret).collect()
    }

    pub fn works(&self, secret: &str) -> bool {
        self.sim.sim.key_works(secret)
    }

    pub fn journal(&self, policy: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(&format!("state/policies/{policy}.json")))
            .expect("journal exists");
        serde_json::from_str(&text).expect("journal is JSON")
    }

    /// Invariants 1 and 3 once a rotation has settled: the current key works,
    /// and every key alive at the provider is the current one or one still
    /// in its grace period.
    #[track_caller]
    pub fn assert_settled(&self, current: &str, in_grace: &[&str]) {
        assert!(
            self.works(current),
            "the store's current key works at the provider"
        );
        for live in self.live_secrets() {
            assert!(
                live == current || in_grace.contains(&live.as_str()),
                "a key is alive that is neither current nor in grace (an orphan)"
            );
        }
    }

    /// A rollback on the file store secret `k`: `rotate` failed naming the
    /// rollback, `old` is still current and the only live key, nothing is
    /// pending, and the journal says `rolled_back`.
    #[track_caller]
    pub fn assert_rolled_back_on_file_k(&self, run: &Run, old: &str) {
        run.assert_code(1);
        assert!(run.stderr.contains("rolled back"), "{}", run.stderr);
        assert_eq!(
            std::fs::read_to_string(self.path("secrets/k")).unwrap(),
            old
        );
        assert!(
            !self.path("secrets/k.pending").exists(),
            "the pending version is dropped"
        );
        assert_eq!(
            self.live_secrets(),
            vec![old.to_string()],
            "the new key is deleted at the provider"
        );
        self.assert_settled(old, &[]);
        assert_eq!(self.journal("p")["last_result"]["kind"], "rolled_back");
    }

    /// Invariant 4: no piece of 12 characters of any key the simulator
    /// ever issued (nor of the management key), and no piece of any such
    /// key's sha256 (LiteLLM's `token`), appears in anything rekey printed,
    /// in anything captured (audit records, webhook bodies, metrics), nor in
    /// any file of the test's directory other than the store's secret values
    /// (state journals, audit logs, store sidecars). Only a label's part is
    /// allowed: pieces within the key's fixed prefix plus its first 3
    /// random characters.
    #[track_caller]
    pub fn assert_no_secret_leaked(&self) {
        let mut haystacks: Vec<(String, String)> = (self.captured.lock().unwrap().iter())
            .enumerate()
            .map(|(i, text)| (format!("captured text #{i}"), text.clone()))
            .collect();
        for file in self.recorded_files() {
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into();
            haystacks.push((file.display().to_string(), text));
        }
        let pieces = KeyPieces::new(&self.sim.sim.issued_secrets(), &self.mgmt_key);
        for (name, text) in &haystacks {
            if let Some(found) = pieces.find_in(text) {
                panic!("{found} appears in {name}");
            }
        }
    }

    /// Every file under the test's directory that rekey may write and that
    /// must not hold a key: all but the file store's values (current,
    /// `.pending`, `.previous` and their temp files) and the management key
    /// file tests write for in-process daemons.
    fn recorded_files(&self) -> Vec<PathBuf> {
        let secrets = self.path("secrets");
        let holds_a_key = |path: &Path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let value = path.starts_with(&secrets) && !name.contains(".versions.json");
            value || name == "management.key"
        };
        let files = files_under(self.dir.path()).into_iter();
        files.filter(|path| !holds_a_key(path)).collect()
    }
}

/// The fixed prefixes of the simulator's key shapes, longest first: the
/// part of a key (plus 3 characters) a label may show.
const SIM_KEY_PREFIXES: [&str; 5] = [
    "sk-ant-api03-",
    "sk-svcacct-",
    "sk-or-v1-",
    "lr_live_",
    "sk-",
];
/// A piece of a key this long anywhere is a leak.
const PIECE: usize = 12;

/// Every 12-byte piece of the keys to look for, each with what it is a
/// piece of; looked up once per position of a text, so a check costs one
/// pass over the text whatever the number of keys. A bitmap of the pieces'
/// first two bytes skips most positions without hashing.
struct KeyPieces {
    pieces: std::collections::HashMap<Vec<u8>, String>,
    starts: Vec<bool>,
}

impl KeyPieces {
    fn new(issued: &[String], mgmt_key: &str) -> KeyPieces {
        let mut found = KeyPieces {
            pieces: std::collections::HashMap::new(),
            starts: vec![false; 1 << 16],
        };
        let keys = issued.iter().map(String::as_str).chain([mgmt_key]);
        for (k, key) in keys.enumerate() {
            let prefix = SIM_KEY_PREFIXES.iter().find(|p| key.starts_with(**p));
            let label_head = prefix.map_or(0, |p| p.len() + 3);
            for (at, piece) in windows(key.as_bytes()) {
                if at + PIECE > label_head {
                    found.add(piece, format!("bytes {at}.. of key #{k}"));
                }
            }
            let token = sha256_hex(key);
            for (at, piece) in windows(token.as_bytes()) {
                found.add(piece, format!("bytes {at}.. of the sha256 of key #{k}"));
            }
        }
        found
    }

    fn add(&mut self, piece: &[u8], what: String) {
        self.starts[start_of(piece)] = true;
        self.pieces.insert(piece.to_vec(), what);
    }

    /// What the first piece found in `text` is a piece of.
    fn find_in(&self, text: &str) -> Option<&str> {
        (windows(text.as_bytes()))
            .filter(|(_, w)| self.starts[start_of(w)])
            .find_map(|(_, w)| self.pieces.get(w).map(String::as_str))
    }
}

/// A window's first two bytes as an index into the bitmap.
fn start_of(window: &[u8]) -> usize {
    let second = window.get(1).copied().unwrap_or(0);
    usize::from(window[0]) << 8 | usize::from(second)
}

/// Every window of `PIECE` bytes with its offset; a shorter text is one window.
fn windows(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let size = PIECE.min(bytes.len());
    bytes.windows(size.max(1)).enumerate()
}

pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary under test: `REKEY_TEST_BIN` when set (a build cache shared
/// by several checkouts can replace `target/debug/rekey` mid-run), else Cargo's.
pub fn binary() -> String {
    std::env::var("REKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rekey").to_string())
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The key in a file-store secret, by format.
pub fn extract(content: &str, format: &str, field: &str) -> Option<String> {
    match format {
        "raw" => Some(content.to_string()).filter(|s| !s.is_empty()),
        "json" => serde_json::from_str::<serde_json::Value>(content)
            .ok()?
            .get(field)?
            .as_str()
            .map(str::to_string),
        "env" => content
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}=")))
            .map(str::to_string),
        _ => panic!("unknown format {format}"),
    }
}

/// A `[[policy]]` table with sensible test defaults; `extra` adds lines
/// (a `verify = ...` or `key = ...` line in it replaces the default one).
pub fn policy(name: &str, target: &str, extra: &str) -> String {
    let verify = if extra.contains("verify =") {
        ""
    } else {
        r#"verify = { mode = "chat", model = "openai/gpt-4o-mini", timeout = "10s" }"#
    };
    let key = if extra.lines().any(|l| l.starts_with("key =")) {
        ""
    } else {
        r#"key = { name = "it-{policy}-{rotation}" }"#
    };
    format!(
        r#"
[[policy]]
name = "{name}"
provider = "sim"
max_age = "30d"
{key}
target = {target}
{verify}
{extra}
"#
    )
}

/// Points the written config's management key at a file (mode 0600) in
/// the env's directory, for a config an in-process `App` loads: this
/// process has no environment variable for it.
pub fn management_key_from_file(env: &TestEnv) {
    let key_file = env.path("mgmt.key");
    std::fs::write(&key_file, &env.mgmt_key).unwrap();
    let only_owner = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&key_file, only_owner).unwrap();
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replace(
        &format!("env:{MGMT_ENV}"),
        &format!("file:{}", key_file.display()),
    );
    std::fs::write(env.config_path(), text).unwrap();
}
