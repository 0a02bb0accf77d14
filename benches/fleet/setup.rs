//! One fleet: a temp dir, an in-process simulator (OpenRouter API) on a free
//! port, and a config of N policies on the file store and the file state.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rekey::sim::{Faults, SimHandle, Simulator};

pub struct Fleet {
    /// Removed when the fleet is dropped.
    _dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub config: PathBuf,
}

/// The name of the `i`th policy (its secret has the same id).
pub fn policy_name(i: usize) -> String {
    format!("p{i:05}")
}

/// A fresh fleet of `n` policies, none with a key yet; `provider_lines`
/// are added to `[providers.sim]` (e.g. `rate_limit`).
pub async fn fleet(n: usize, faults: Faults, provider_lines: &str) -> Fleet {
    let mgmt = format!("sk-or-v1-mgmt-{:032x}", rand::random::<u128>());
    let sim = Simulator::new(&mgmt)
        .with_faults(faults)
        .spawn()
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let mgmt_file = dir.path().join("mgmt-key");
    std::fs::write(&mgmt_file, &mgmt).expect("management key written");
    std::fs::set_permissions(&mgmt_file, std::fs::Permissions::from_mode(0o600))
        .expect("management key mode 0600");
    let mut text = format!(
        "[daemon]\nstate = \"file:{state}\"\nadmin_listen = \"127.0.0.1:0\"\n\
         catch_up_jitter = \"0s\"\n\n[providers.sim]\nkind = \"openrouter\"\n\
         base_url = \"{base_url}\"\nmanagement_key = \"file:{mgmt_file}\"\n\
         request_timeout = \"10s\"\n{provider_lines}\n\n\
         [stores.files]\nkind = \"file\"\ndir = \"{secrets}\"\n",
        state = dir.path().join("state").display(),
        base_url = sim.base_url,
        mgmt_file = mgmt_file.display(),
        secrets = dir.path().join("secrets").display(),
    );
    for i in 0..n {
        let name = policy_name(i);
        text.push_str(&format!(
            r#"
[[policy]]
name = "{name}"
provider = "sim"
max_age = "30d"
key = {{ name = "fleet-{{policy}}-{{rotation}}" }}
target = {{ store = "files", secret_id = "{name}", format = "raw", create = true }}
verify = {{ mode = "key-info", timeout = "10s" }}
revoke = {{ grace = "0s" }}
"#
        ));
    }
    let config = dir.path().join("rekey.toml");
    std::fs::write(&config, text).expect("config written");
    Fleet {
        _dir: dir,
        sim,
        config,
    }
}

impl Fleet {
    /// Changes the last policy's `max_age`, so a reload has a policy to apply.
    pub fn edit_one(&self) {
        let text = std::fs::read_to_string(&self.config).expect("config read");
        let at = text.rfind("max_age = \"30d\"").expect("a policy");
        let edited = format!("{}max_age = \"31d\"{}", &text[..at], &text[at + 15..]);
        std::fs::write(&self.config, edited).expect("config written");
    }

    /// Management calls the simulator received (429s included).
    pub fn management_calls(&self) -> u64 {
        let counts = self.sim.sim.call_counts();
        ["create", "list", "get", "update", "delete"]
            .iter()
            .map(|e| counts.get(*e).copied().unwrap_or(0))
            .sum()
    }
}
