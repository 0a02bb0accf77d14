//! Three replicas on one table rotate one secret every 5 seconds while a
//! consumer reads AWSCURRENT and calls the provider with it every 100 ms:
//! no consumer call fails, no tick makes more than one key, never more
//! than current + one in grace + one pending live at once, no rotation
//! begins (on any replica) before the previous one completed, and once the
//! replicas stop and the last grace ends exactly one key rekey made is live.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;

use serde_json::Value;

use super::Ha;
use crate::daemon_proc::RunningDaemon;

const PERIOD_SECS: u64 = 5;
const CONSUME_FOR: Duration = Duration::from_secs(20);

/// The schedule tick (Unix seconds / PERIOD) at or before now.
fn tick_now() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    now.as_secs() / PERIOD_SECS
}

/// What the consumer saw.
#[derive(Default, Debug)]
struct Consumed {
    calls: u32,
    failed: Vec<String>,
    /// The most keys live at the simulator at any one sample.
    most_live: usize,
}

/// Every 100 ms for `CONSUME_FOR`: AWSCURRENT (explicit stage), then
/// `GET /key` at the simulator with it, as an application would.
async fn consume(ha: &Ha) -> Consumed {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/key", ha.env.sim.base_url);
    let mut seen = Consumed::default();
    let until = Instant::now() + CONSUME_FOR;
    while Instant::now() < until {
        seen.calls += 1;
        match ha.value("AWSCURRENT").await {
            None => seen.failed.push("AWSCURRENT could not be read".into()),
            Some(key) => {
                let answer = http.get(&url).bearer_auth(&key).send().await;
                match answer.map(|r| r.status()) {
                    Ok(status) if status.is_success() => {}
                    Ok(status) => seen.failed.push(format!("the provider answered {status}")),
                    Err(e) => seen.failed.push(format!("the call failed: {e}")),
                }
            }
        }
        seen.most_live = seen.most_live.max(ha.env.live_secrets().len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Invariant 5 across the replicas, from their logs: each rotation runs
/// from its "begin" to its "rotation complete" (the old key revoked), and
/// the next one begins only after that; only the last may be unfinished.
fn assert_one_at_a_time(logs: &[Value]) {
    let mut spans: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    for line in logs {
        let Some(id) = line["span"]["rotation"].as_str() else {
            continue;
        };
        let at = line["timestamp"].as_str().unwrap_or_default().to_string();
        let span = spans.entry(id.to_string()).or_default();
        match line["fields"]["message"].as_str() {
            Some("begin") => span.0 = Some(at),
            Some("rotation complete") => span.1 = Some(at),
            _ => {}
        }
    }
    let mut rotations: Vec<_> = (spans.into_iter())
        .filter_map(|(id, (begin, end))| Some((begin?, end, id)))
        .collect();
    rotations.sort();
    assert!(
        rotations.len() >= 2,
        "the replicas logged their rotations: {rotations:?}"
    );
    for pair in rotations.windows(2) {
        let (_, end, id) = &pair[0];
        let (next_begin, _, next) = &pair[1];
        let end = end.as_ref().unwrap_or_else(|| {
            panic!("rotation {id} never completed, yet {next} began: {rotations:?}")
        });
        // RFC 3339 UTC timestamps of one format compare as text.
        assert!(
            next_begin >= end,
            "rotation {next} began before {id} completed: {rotations:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_rotate_one_secret_on_a_schedule_without_breaking_a_consumer() {
    let ha = Ha::new().await;
    ha.write_config("schedule = \"*/5 * * * * *\"\nrevoke = { grace = \"1s\" }");
    // A rotation due at start (the tick before it) counts as a tick too.
    let first_tick = tick_now();
    let replicas = [
        RunningDaemon::start(&ha.env, &[]).await,
        RunningDaemon::start(&ha.env, &[]).await,
        RunningDaemon::start(&ha.env, &[]).await,
    ];
    let seen = consume(&ha).await;
    let mut logs = Vec::new();
    for replica in replicas {
        replica.signal(libc::SIGTERM);
        let exited = replica.wait_exit(Duration::from_secs(20)).await;
        assert_eq!(exited.code, Some(0), "a replica exits 0 after SIGTERM");
        logs.extend(
            exited
                .stderr
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok()),
        );
    }
    assert_one_at_a_time(&logs);
    let ticks = tick_now() - first_tick + 1;

    assert!(
        seen.failed.is_empty(),
        "{} of {} consumer calls failed: {:?}",
        seen.failed.len(),
        seen.calls,
        seen.failed
    );
    let creates = ha.creates();
    assert!(
        creates >= 2,
        "the replicas rotated on the schedule ({creates} keys made in {ticks} ticks)"
    );
    assert!(
        creates <= ticks,
        "at most one key per tick: {creates} keys made in {ticks} ticks"
    );
    assert!(
        seen.most_live <= 3,
        "never more than current + one in grace + one pending live at once \
         (two rotations at once would make more): {} were",
        seen.most_live
    );

    // The last grace ends from a replica without the schedule.
    ha.write_config("revoke = { grace = \"1s\" }");
    ha.finish_graces(1).await;
    let current = ha.assert_settled(&[], "after the replicas").await;
    assert_eq!(
        ha.env.live_secrets(),
        vec![current],
        "exactly one live key: the current one"
    );
    let journal = ha.journal().await;
    let history = journal["history"].as_array().map_or(0, Vec::len) as u64;
    assert_eq!(
        history, creates,
        "every key made is one finished rotation: {journal}"
    );
}
