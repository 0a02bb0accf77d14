//! Lease benchmark (issue 12): what keeping the state in a DynamoDB table
//! costs. Full rotations (create, stage, verify, promote, revoke with zero
//! grace) of one policy against the in-process provider simulator and a
//! file secret store, once with the file state and once with the state in a
//! fresh table at moto, behind a proxy that delays every table call by `L`
//! and counts the calls by operation. From those counts and the daemon's
//! steady state (per replica per lease period a Query of expired leases and
//! a heartbeat; journals read only when due, and once per policy at start;
//! renewals every lease/3) it prints how many replicas × policies one
//! on-demand table sustains, and checks the steady-state calls against three daemons.
//!
//! Run with `cargo bench --bench lease`. It needs moto: `REKEY_TEST_MOTO_URL`
//! when set, else it starts `moto_server` itself (and says so, exiting 0,
//! when there is none). No assertions on time: it prints tables.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rekey::app::App;
use rekey::policy::Policy;
use rekey::rotation::{Ctx, Request, RunOutcome, Until, run_policy};
use rekey::sim::{SimHandle, Simulator};
use rekey::state::Trigger;

#[path = "lease/capacity.rs"]
mod capacity;
#[path = "lease/cross_check.rs"]
mod cross_check;
#[path = "lease/moto.rs"]
mod moto;
#[path = "lease/proxy.rs"]
mod proxy;

use capacity::{PerRotation, Sizes};
use proxy::{Counts, Proxy, calls, calls_on};

/// (injected latency per table call in ms, rotations measured)
const ROWS: [(u64, usize); 4] = [(0, 50), (5, 20), (20, 20), (50, 20)];

/// The operations a rotation may call, in the order the table prints them.
const OPERATIONS: [&str; 6] = [
    "GetItem",
    "UpdateItem",
    "TransactWriteItems",
    "Scan",
    "PutItem",
    "Query",
];

/// Where the state lives in one configuration of the bench.
pub enum StateAt<'a> {
    File,
    /// A fresh table reached through `endpoint`, with this lease.
    Table {
        endpoint: &'a str,
        lease: &'a str,
    },
}

/// A config of `policies` policies rotating against the simulator into a
/// file store under `dir`, with the state `state`.
pub fn write_config(
    dir: &Path,
    sim: &SimHandle,
    mgmt: &str,
    state: StateAt<'_>,
    policies: &[String],
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("config dir created");
    let mgmt_file = dir.join("mgmt-key");
    std::fs::write(&mgmt_file, mgmt).expect("management key written");
    let state = match state {
        StateAt::File => format!("state = \"file:{}\"\n", dir.join("state").display()),
        StateAt::Table { endpoint, lease } => format!(
            "state = \"dynamodb:bench-{}\"\n\n[daemon.dynamodb]\nregion = \"us-east-1\"\n\
             endpoint_url = \"{endpoint}\"\ncreate_table = true\nlease = \"{lease}\"\n",
            uuid::Uuid::now_v7().simple()
        ),
    };
    let mut text = format!(
        "[daemon]\ncatch_up_jitter = \"0s\"\n{state}\n[providers.sim]\nkind = \"openrouter\"\n\
         base_url = \"{base_url}\"\nmanagement_key = \"file:{mgmt_file}\"\nrequest_timeout = \"10s\"\n\n\
         [stores.files]\nkind = \"file\"\ndir = \"{secrets}\"\n",
        base_url = sim.base_url,
        mgmt_file = mgmt_file.display(),
        secrets = dir.join("secrets").display(),
    );
    for name in policies {
        text.push_str(&format!(
            r#"
[[policy]]
name = "{name}"
provider = "sim"
max_age = "30d"
key = {{ name = "bench-{{policy}}-{{rotation}}" }}
target = {{ store = "files", secret_id = "{name}", format = "raw", create = true }}
verify = {{ mode = "key-info", timeout = "10s" }}
revoke = {{ grace = "0s" }}
"#
        ));
    }
    let path = dir.join("rekey.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

/// One full rotation, revoke included; the bench is meaningless if it fails.
pub async fn rotate(ctx: &Ctx, policy: &Policy) {
    let outcome = run_policy(
        ctx,
        policy,
        Request::Manual {
            grace: Some(Duration::ZERO),
            trigger: Trigger::Manual,
        },
        Until::Revoked,
    )
    .await
    .expect("rotation succeeds");
    assert!(
        matches!(outcome, RunOutcome::Rotated { .. }),
        "expected a finished rotation"
    );
}

/// The one policy of a single-policy bench setup and its context.
struct Setup {
    app: App,
    policy: Policy,
}

impl Setup {
    async fn build(config_path: &Path) -> Setup {
        let config = rekey::config::load_file(config_path).expect("config is valid");
        let policy = config.policy("bench").expect("policy exists").clone();
        let app = App::build(config).await.expect("app builds");
        Setup { app, policy }
    }

    /// Wall time of each of `n` rotations, in ms.
    async fn time(&self, n: usize) -> Vec<f64> {
        let ctx = self.app.ctx(&self.policy);
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            rotate(&ctx, &self.policy).await;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        times
    }
}

/// mean, p50 and p95 of sorted times.
fn summary(sorted: &[f64]) -> (f64, f64, f64) {
    let at =
        |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    (mean, at(0.5), at(0.95))
}

struct Row {
    latency_ms: u64,
    rotations: usize,
    file: (f64, f64, f64),
    table: (f64, f64, f64),
    counts: Counts,
}

async fn measure(file: &Setup, table: &Setup, proxy: &Proxy) -> Vec<Row> {
    let mut rows = Vec::new();
    for (latency_ms, rotations) in ROWS {
        let file_times = file.time(rotations).await;
        proxy.set_latency_ms(latency_ms);
        proxy.reset();
        let table_times = table.time(rotations).await;
        rows.push(Row {
            latency_ms,
            rotations,
            file: summary(&file_times),
            table: summary(&table_times),
            counts: proxy.counts(),
        });
    }
    proxy.set_latency_ms(0);
    rows
}

fn print_rows(rows: &[Row]) {
    println!(
        "Lease overhead per rotation (create, stage, verify, promote, revoke with grace 0; \
         simulator and file secret store; L = injected latency per table call; wall ms per rotation):"
    );
    println!(
        "{:>5} {:>9} {:>10} {:>9} {:>9} {:>11} {:>10} {:>10} {:>9} {:>6}  table calls per rotation",
        "L ms",
        "rotations",
        "file mean",
        "file p50",
        "file p95",
        "table mean",
        "table p50",
        "table p95",
        "added ms",
        "calls"
    );
    for row in rows {
        let per = |n: u64| n as f64 / row.rotations as f64;
        let by_op = (OPERATIONS.iter())
            .map(|op| format!("{op}={}", per(calls(&row.counts, op))))
            .collect::<Vec<_>>()
            .join(" ");
        let gets = format!(
            "(GetItem: journal {} lease {})",
            per(calls_on(&row.counts, "GetItem", "journal")),
            per(calls_on(&row.counts, "GetItem", "lease"))
        );
        let total: u64 = OPERATIONS.iter().map(|op| calls(&row.counts, op)).sum();
        println!(
            "{:>5} {:>9} {:>10.2} {:>9.2} {:>9.2} {:>11.2} {:>10.2} {:>10.2} {:>9.2} {:>6.1}  {} {}",
            row.latency_ms,
            row.rotations,
            row.file.0,
            row.file.1,
            row.file.2,
            row.table.0,
            row.table.1,
            row.table.2,
            row.table.0 - row.file.0,
            per(total),
            by_op,
            gets
        );
    }
}

/// The journal of `policy` and the lease of its secret as the table holds
/// them (read from moto directly, not through the proxy).
async fn sizes(moto_url: &str, table: &str, policy: &Policy) -> Sizes {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(moto_url)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let size = async |pk: String| {
        let out = (client.get_item())
            .table_name(table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem at moto");
        capacity::item_size(out.item().unwrap_or_else(|| panic!("no item {pk}")))
    };
    Sizes {
        journal: size(format!("journal#{}", policy.name)).await,
        lease: size(format!("lease#{}", &*policy.target.lease)).await,
    }
}

fn table_name(config: &rekey::config::Config) -> String {
    match &config.daemon.state {
        rekey::config::StateLocation::DynamoDb(table) => table.table.clone(),
        rekey::config::StateLocation::File(_) => unreachable!("the table setup has a table state"),
    }
}

async fn bench(moto_url: &str) {
    let mgmt = format!("sk-or-v1-mgmt-{:032x}", rand::random::<u128>());
    let sim = Simulator::new(&mgmt)
        .spawn()
        .await
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let proxy = Proxy::start(moto_url).await;
    let one = ["bench".to_string()];
    let file_config = write_config(&dir.path().join("file"), &sim, &mgmt, StateAt::File, &one);
    let table_state = StateAt::Table {
        endpoint: proxy.url(),
        lease: "30s",
    };
    let table_config = write_config(&dir.path().join("table"), &sim, &mgmt, table_state, &one);
    let file = Setup::build(&file_config).await;
    let table = Setup::build(&table_config).await;
    // Warm-up: the first run creates the first key, which takes a different path.
    for setup in [&file, &table] {
        rotate(&setup.app.ctx(&setup.policy), &setup.policy).await;
    }
    let rows = measure(&file, &table, &proxy).await;
    print_rows(&rows);
    let renewals = cross_check::renewals_per_minute(moto_url, &table.app.config).await;
    println!(
        "Renewals of a held lease (default 30 s lease, every lease/3): {renewals:.2} per minute, \
         measured over two renewals (expected 6)."
    );
    println!();

    let name = table_name(&table.app.config);
    let sizes = sizes(moto_url, &name, &table.policy).await;
    // The L = 0 row has the most rotations; calls per rotation do not depend on L.
    let per_rotation = PerRotation::of(&rows[0].counts, rows[0].rotations, sizes);
    capacity::print_table(sizes, per_rotation);
    println!();
    cross_check::run(moto_url, &sim, &mgmt, dir.path(), sizes).await;
}

fn main() {
    moto::test_credentials();
    let moto = match moto::reach() {
        Ok(moto) => moto,
        Err(why) => {
            println!("lease bench skipped: it needs moto. {why}");
            return;
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(bench(&moto.url));
}
