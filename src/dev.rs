//! `rekey dev`: the whole cycle on one machine, no cloud account. Starts the
//! provider simulator on loopback, writes a config with a file store under a
//! directory it names, and runs the daemon exactly as `rekey run` does
//! (admin API on a free loopback port, config reload, graceful shutdown).
//!
//! A directory used before keeps its `rekey.toml` (a user's edits are the
//! point of a named directory): the simulator comes back on the port that
//! config names, with the same management key. `--reset` writes everything
//! fresh.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::commands;
use crate::config::Config;
use crate::sim::{Faults, Simulator};

pub async fn run(dir: Option<PathBuf>, reset: bool) -> ExitCode {
    let dir = dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("rekey-dev-{}", std::process::id())));
    match prepare(&dir, reset).await {
        Ok(code) => code,
        Err(message) => {
            crate::errln!("error: rekey dev: {message}");
            ExitCode::from(commands::FAILURE)
        }
    }
}

/// The files of a dev directory.
struct Files {
    config: PathBuf,
    management_key: PathBuf,
    admin_token: PathBuf,
    audit_log: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            config: dir.join("rekey.toml"),
            management_key: dir.join("management-key"),
            admin_token: dir.join("admin-token"),
            audit_log: dir.join("audit.jsonl"),
        }
    }
}

async fn prepare(dir: &Path, reset: bool) -> Result<ExitCode, String> {
    crate::fsutil::create_private_dir(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let files = Files::in_dir(dir);
    let keep = !reset && files.config.exists();
    let management_key = secret_file(&files.management_key, "sim-mgmt", keep)?;
    secret_file(&files.admin_token, "dev-admin", keep)?;
    let listener = if keep {
        crate::outln!(
            "keeping your edited {} (use --reset for a fresh one)",
            files.config.display()
        );
        let config = match commands::load(&files.config) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        };
        bind_kept(&config, &files.config).await?
    } else {
        TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot bind the simulator on 127.0.0.1: {e}"))?
    };
    let sim = spawn_sim(&management_key, listener)?;
    if !keep {
        let text = dev_config(dir, &sim.base_url, &files);
        crate::fsutil::write(&files.config, text.as_bytes()).map_err(|e| e.to_string())?;
    }
    serve(dir, &files, &sim.base_url).await
}

/// Loads the config, starts the daemon as `rekey run` does, prints the banner.
async fn serve(dir: &Path, files: &Files, sim_url: &str) -> Result<ExitCode, String> {
    let config = match commands::load(&files.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let audit_log = config.daemon.audit_log.clone();
    let app = match commands::build(config).await {
        Ok(app) => app,
        Err(code) => return Ok(code),
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    let service = match commands::start_service(&files.config, app).await {
        Ok(service) => service,
        Err(code) => return Ok(code),
    };
    let admin = service.admin_addr().map_err(|e| e.to_string())?;
    banner(
        dir,
        files,
        sim_url,
        &admin.to_string(),
        audit_log.as_deref(),
    );
    service.run().await;
    crate::outln!("stopped; files kept in {}", dir.display());
    Ok(ExitCode::from(commands::OK))
}

fn banner(dir: &Path, files: &Files, sim_url: &str, admin: &str, audit_log: Option<&Path>) {
    crate::outln!("rekey dev");
    crate::outln!("  simulator:  {sim_url}");
    crate::outln!("  config:     {}", files.config.display());
    crate::outln!(
        "  secret:     {} (what an application reads)",
        dir.join("secrets/demo.env").display()
    );
    crate::outln!("  journal:    {}", dir.join("state").display());
    crate::outln!(
        "  hook log:   {} (the on_promote hook's lines)",
        dir.join("hooks.log").display()
    );
    match audit_log {
        Some(path) => crate::outln!("  audit log:  {} (one JSON line per step)", path.display()),
        None => crate::outln!("  audit log:  off (daemon.audit_log is not set)"),
    }
    crate::outln!("  admin API:  http://{admin}/v1/status (also /metrics, /healthz, /readyz)");
    crate::outln!(
        "  rotate now: curl -X POST -H \"Authorization: Bearer $(cat {})\" http://{admin}/v1/policies/demo/rotate",
        files.admin_token.display()
    );
    crate::outln!(
        "  rotating policy \"demo\" every 20 seconds (grace 5s, then until the old key is idle 5s); edits to the config apply live; Ctrl-C stops."
    );
}

/// A random secret in `path`, written unless `keep` and the file exists.
fn secret_file(path: &Path, prefix: &str, keep: bool) -> Result<String, String> {
    if keep && let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().to_string());
    }
    let value = format!("{prefix}-{:032x}", rand::random::<u128>());
    crate::fsutil::write(path, value.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(value)
}

/// The simulator's address in a kept config: the first provider on loopback.
async fn bind_kept(config: &Config, path: &Path) -> Result<TcpListener, String> {
    let addr = config
        .providers
        .values()
        .find_map(|p| loopback_addr(&p.base_url))
        .ok_or_else(|| {
            format!(
                "{} names no provider on http://127.0.0.1:PORT for the simulator; fix it or use --reset",
                path.display()
            )
        })?;
    TcpListener::bind(&addr).await.map_err(|e| {
        format!(
            "the simulator cannot listen on {addr}, named in {}: {e}; stop what uses that port or use --reset",
            path.display()
        )
    })
}

/// `127.0.0.1:PORT` from `http://127.0.0.1:PORT/...` (or localhost).
fn loopback_addr(base_url: &str) -> Option<String> {
    let rest = base_url.strip_prefix("http://")?;
    let host_port = rest.split('/').next()?;
    let (host, port) = host_port.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    matches!(host, "127.0.0.1" | "localhost").then(|| format!("127.0.0.1:{port}"))
}

/// The running simulator: stops when dropped.
struct Sim {
    base_url: String,
    _stop: oneshot::Sender<()>,
}

fn spawn_sim(management_key: &str, listener: TcpListener) -> Result<Sim, String> {
    // A short propagation delay shows verification retrying, as real providers need.
    let faults = Faults {
        propagation_delay_ms: 1500,
        ..Faults::default()
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = Simulator::new(management_key).with_faults(faults);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stopped.await;
        };
        if let Err(err) = server.serve(listener, stopped).await {
            tracing::warn!(error = %err, "simulator stopped with an error");
        }
    });
    Ok(Sim {
        base_url: format!("http://{addr}/api/v1"),
        _stop: stop,
    })
}

fn dev_config(dir: &Path, base_url: &str, files: &Files) -> String {
    format!(
        r#"# Written by `rekey dev`; kept on the next `rekey dev --dir` (--reset rewrites it).
[daemon]
state = "file:{state}"
admin_listen = "127.0.0.1:0"
admin_token = "file:{token}"
audit_log = "{audit}"
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
revoke = {{ grace = "5s", mode = "delete", wait_idle = "5s", max_wait = "1m" }}
# Told after each promote (no shell unless you run one; never the key itself).
on_promote = [
  {{ exec = ["sh", "-c", 'echo "$REKEY_POLICY: key $REKEY_KEY_ID ($REKEY_KEY_LABEL) is current" >> "{hooks}"'], timeout = "5s" }},
]
"#,
        hooks = dir.join("hooks.log").display(),
        state = dir.join("state").display(),
        secrets = dir.join("secrets").display(),
        key_file = files.management_key.display(),
        token = files.admin_token.display(),
        audit = files.audit_log.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_address_is_read_from_a_loopback_base_url() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:4242/api/v1").as_deref(),
            Some("127.0.0.1:4242")
        );
        assert_eq!(
            loopback_addr("http://localhost:80").as_deref(),
            Some("127.0.0.1:80")
        );
        assert_eq!(loopback_addr("https://openrouter.ai/api/v1"), None);
        assert_eq!(loopback_addr("http://10.0.0.1:80/x"), None);
    }
}
