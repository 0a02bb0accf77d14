//! `rekey dev`: the whole cycle on one machine, no cloud account. Starts the
//! provider simulator on loopback, writes a config with a file store under a
//! directory it names, and runs the daemon exactly as `rekey run` does
//! (admin API on a free loopback port, config reload, graceful shutdown).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::commands;
use crate::sim::{Faults, Simulator};

pub async fn run(dir: Option<PathBuf>) -> ExitCode {
    let dir = dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("rekey-dev-{}", std::process::id())));
    match prepare(&dir).await {
        Ok(code) => code,
        Err(message) => {
            crate::errln!("error: rekey dev: {message}");
            ExitCode::from(commands::FAILURE)
        }
    }
}

async fn prepare(dir: &Path) -> Result<ExitCode, String> {
    crate::fsutil::create_private_dir(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let management_key = format!("sim-mgmt-{:032x}", rand::random::<u128>());
    let key_file = dir.join("management-key");
    crate::fsutil::write(&key_file, management_key.as_bytes()).map_err(|e| e.to_string())?;
    // A short propagation delay shows verification retrying, as real providers need.
    let faults = Faults {
        propagation_delay_ms: 1500,
        ..Faults::default()
    };
    let sim = Simulator::new(&management_key)
        .with_faults(faults)
        .spawn()
        .await
        .map_err(|e| e.to_string())?;
    let config_path = dir.join("rekey.toml");
    let text = dev_config(dir, &sim.base_url, &key_file);
    crate::fsutil::write(&config_path, text.as_bytes()).map_err(|e| e.to_string())?;
    let config = match commands::load(&config_path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let app = match commands::build(config).await {
        Ok(app) => app,
        Err(code) => return Ok(code),
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    let service = match commands::start_service(&config_path, app).await {
        Ok(service) => service,
        Err(code) => return Ok(code),
    };
    let admin = service.admin_addr().map_err(|e| e.to_string())?;
    crate::outln!("rekey dev");
    crate::outln!("  simulator:  {}", sim.base_url);
    crate::outln!("  config:     {}", config_path.display());
    crate::outln!(
        "  secret:     {} (what an application reads)",
        dir.join("secrets/demo.env").display()
    );
    crate::outln!("  journal:    {}", dir.join("state").display());
    crate::outln!("  admin API:  http://{admin}/v1/status (also /metrics, /healthz, /readyz)");
    crate::outln!(
        "  rotating policy \"demo\" every 20 seconds (grace 5s); edits to the config apply live; Ctrl-C stops."
    );
    service.run().await;
    drop(sim);
    crate::outln!("stopped; files kept in {}", dir.display());
    Ok(ExitCode::from(commands::OK))
}

fn dev_config(dir: &Path, base_url: &str, key_file: &Path) -> String {
    format!(
        r#"# Written by `rekey dev`.
[daemon]
state = "file:{state}"
admin_listen = "127.0.0.1:0"
catch_up_jitter = "0s"
failure_backoff = {{ min = "5s", max = "1m" }}

[providers.sim]
kind = "openrouter"
base_url = "{base_url}"
management_key = "file:{key_file}"

[stores.local]
kind = "file"
dir = "{secrets}"

[[policy]]
name = "demo"
provider = "sim"
schedule = "*/20 * * * * *"
key = {{ name = "rekey-dev-{{rotation}}", limit = 5, limit_reset = "daily" }}
target = {{ store = "local", secret_id = "demo.env", format = "env", field = "OPENROUTER_API_KEY", create = true }}
verify = {{ mode = "chat", model = "openai/gpt-4o-mini", timeout = "30s" }}
revoke = {{ grace = "5s", mode = "delete" }}
"#,
        state = dir.join("state").display(),
        secrets = dir.join("secrets").display(),
        key_file = key_file.display(),
    )
}
