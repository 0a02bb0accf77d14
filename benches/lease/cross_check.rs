//! Measurements against running code that the capacity arithmetic leans
//! on: the renewal cadence of a held lease, and the steady-state table
//! calls of three in-process daemons sharing one table (no journal read
//! while nothing is due; a Query of expired leases and a heartbeat per
//! replica per lease period).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rekey::app::App;
use rekey::config::{Config, DynamoConfig, StateLocation};
use rekey::daemon::{Daemon, Mode};
use rekey::names::LeaseKey;
use rekey::sim::SimHandle;
use rekey::state::StateStore;
use rekey::state::dynamodb::DynamoStateStore;

use crate::capacity::{LEASE_S, Sizes, predicted_per_s, read_units};
use crate::proxy::{Proxy, calls, calls_on};
use crate::{StateAt, rotate, write_config};

const REPLICAS: usize = 3;
const POLICIES: usize = 50;
/// Counting starts this far into the run, between two lease scans (at
/// start, then once per lease period), and lasts two lease periods, so the
/// window holds exactly two scans and two heartbeats per replica.
const SETTLE: Duration = Duration::from_secs(15);
const WINDOW: Duration = Duration::from_secs(60);
/// How long a held 30 s lease gets to show two renewals (due at 10 s, 20 s).
const RENEWAL_DEADLINE: Duration = Duration::from_secs(40);

/// Holds a 30 s lease in the table of `config` until it has been renewed
/// twice, and returns the renewals per minute that cadence makes.
pub async fn renewals_per_minute(moto_url: &str, config: &Config) -> f64 {
    let StateLocation::DynamoDb(table) = &config.daemon.state else {
        unreachable!("the table setup has a table state");
    };
    let proxy = Proxy::start(moto_url).await;
    let store = DynamoStateStore::open(&DynamoConfig {
        endpoint_url: Some(proxy.url().to_string()),
        create_table: false,
        lease: Duration::from_secs(30),
        ..table.clone()
    })
    .await
    .expect("the bench table opens");
    let key = LeaseKey::aws("us-east-1", "bench/renewal");
    let lease = (store.try_lease(&key, "bench-renewal").await)
        .expect("the table answers")
        .expect("nobody else holds the bench's own lease");
    let deadline = Instant::now() + RENEWAL_DEADLINE;
    // The acquire is the first UpdateItem; two renewals follow it.
    while proxy.seen_at("UpdateItem").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "a held 30 s lease was not renewed twice within {RENEWAL_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let at = proxy.seen_at("UpdateItem");
    lease.release().await;
    let span = at[2].duration_since(at[0]).as_secs_f64();
    60.0 / (span / 2.0)
}

/// Three daemons on fifty policies whose keys are fresh (nothing due):
/// journal reads, Queries and PutItems per second measured over two lease
/// periods, against the model (0, 2 × replicas / lease, replicas / lease).
pub async fn run(moto_url: &str, sim: &SimHandle, mgmt: &str, dir: &Path, sizes: Sizes) {
    let proxy = Proxy::start(moto_url).await;
    let names: Vec<String> = (0..POLICIES).map(|i| format!("p{i:02}")).collect();
    let state = StateAt::Table {
        endpoint: proxy.url(),
        lease: "30s",
    };
    let config_path = write_config(&dir.join("cross"), sim, mgmt, state, &names);
    let warm = App::build(load(&config_path)).await.expect("app builds");
    for policy in &warm.config.policies {
        rotate(&warm.ctx(policy), policy).await;
    }
    let mut apps = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..REPLICAS {
        let app = Arc::new(App::build(load(&config_path)).await.expect("app builds"));
        let daemon = Daemon::new(app.clone());
        runs.push(tokio::spawn(async move { daemon.run(Mode::Forever).await }));
        apps.push(app);
    }
    // The measurement itself is time-based: this waits out a fixed window.
    tokio::time::sleep(SETTLE).await;
    proxy.reset();
    let start = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let counts = proxy.counts();
    let seconds = start.elapsed().as_secs_f64();
    for app in &apps {
        app.cancel.cancel();
    }
    for run in runs {
        let _ = tokio::time::timeout(Duration::from_secs(30), run).await;
    }
    let per_s = |n: u64| n as f64 / seconds;
    let measured = per_s(calls_on(&counts, "GetItem", "journal"));
    let (queries, puts) = (
        per_s(calls(&counts, "Query")),
        per_s(calls(&counts, "PutItem")),
    );
    let (computed, computed_queries, computed_puts) = predicted_per_s(REPLICAS as f64, LEASE_S);
    let other: u64 = ["UpdateItem", "TransactWriteItems", "Scan"]
        .iter()
        .map(|op| calls(&counts, op))
        .sum::<u64>()
        + calls_on(&counts, "GetItem", "lease");
    println!(
        "Cross-check: {REPLICAS} in-process daemons, {POLICIES} policies, lease {LEASE_S:.0} s, \
         nothing due, counted over {seconds:.0} s at the proxy:"
    );
    println!(
        "  journal GetItem/s measured {measured:.2}, computed {computed:.2} (read only when due; \
         {} RCU each at a full journal); Query/s measured {queries:.3}, computed {computed_queries:.3} \
         (2 x R / lease); PutItem/s measured {puts:.3}, computed {computed_puts:.3} (R / lease); \
         other table calls in the window: {other}",
        read_units(sizes.journal),
    );
}

fn load(path: &Path) -> Config {
    rekey::config::load_file(path).expect("config is valid")
}
