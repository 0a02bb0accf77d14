//! Fleet benchmark: loading and validating a config whose one
//! `[[policy_set]]` has 10,000 members read from a file, the work behind
//! `rekey check` and `rekey rotate ONE` before any call goes out. The target
//! is well under one second in a release build; expansion is linear, so the
//! 20,000-member row takes about twice as long.
//!
//! Run with `cargo bench --bench set_load`. It prints one row per member count.

use std::time::{Duration, Instant};

use rekey::config::load::load_file_with_env;

/// (members, loads measured)
const ROWS: [(usize, u32); 3] = [(1_000, 10), (10_000, 5), (20_000, 3)];

const CONFIG: &str = r#"[daemon]
state = "file:state"

[providers.or]
kind = "openrouter"
management_key = "env:OR_KEY"

[stores.local]
kind = "file"
dir = "secrets"

[[policy_set]]
name = "tenant-{member}"
members = "file:tenants.txt"
provider = "or"
schedule = "0 3 * * *"
timezone = "Europe/Berlin"
spread = "4h"
key = { name = "tenant-{member}-{rotation}", limit = 50, limit_reset = "monthly" }
target = { store = "local", secret_id = "tenants/{member}", create = true }
revoke = { grace = "1h" }
"#;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("rekey.toml");
    std::fs::write(&config, CONFIG).expect("config written");
    println!("| members | mean ms / load |");
    println!("|---|---|");
    for (members, loads) in ROWS {
        let ids: String = (0..members).map(|i| format!("t{i}\n")).collect();
        std::fs::write(dir.path().join("tenants.txt"), ids).expect("members written");
        let mut total = Duration::ZERO;
        for _ in 0..loads {
            let started = Instant::now();
            let loaded = load_file_with_env(&config, Vec::new()).expect("the config loads");
            total += started.elapsed();
            assert_eq!(loaded.policies.len(), members);
        }
        let mean = total.as_secs_f64() * 1000.0 / f64::from(loads);
        println!("| {members} | {mean:.1} |");
    }
}
