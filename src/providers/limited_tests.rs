//! The limiter on tokio's paused clock: the rate over a window, the
//! concurrency bound, and a 429's hold on every caller.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::config::Rate;
use crate::metrics::Metrics;

fn limits(rate: Option<(u32, u64)>, max_concurrent: Option<u32>) -> ProviderLimits {
    ProviderLimits {
        rate: rate.map(|(count, secs)| Rate {
            count,
            per: Duration::from_secs(secs),
        }),
        max_concurrent,
    }
}

fn pace(limits: ProviderLimits) -> Arc<Pace> {
    pace_counted(limits, Arc::new(Metrics::new()))
}

/// A pace whose waits are counted into `metrics`, as the app wires it.
fn pace_counted(limits: ProviderLimits, metrics: Arc<Metrics>) -> Arc<Pace> {
    let count: WaitCounter =
        Arc::new(move |entry, waited| metrics.provider_throttled(entry, waited));
    Arc::new(Pace::new("p", limits, Some(count)))
}

async fn ok() -> Result<(), ProviderError> {
    Ok(())
}

fn too_many(retry_after: Option<Duration>) -> ProviderError {
    ProviderError::RateLimited {
        provider: "p".into(),
        status: 429,
        retry_after,
    }
}

/// Starts `n` calls at once; returns when each started, relative to `t0`.
async fn start_times(pace: &Arc<Pace>, n: usize) -> Vec<Duration> {
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let pace = pace.clone();
            tokio::spawn(async move {
                pace.run(ok()).await.unwrap();
                t0.elapsed()
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap());
    }
    times.sort();
    times
}

#[tokio::test(start_paused = true)]
async fn n_per_second_is_honoured_over_a_window() {
    let pace = pace(limits(Some((100, 1)), None));
    let times = start_times(&pace, 35).await;
    // A burst of a tenth of the rate goes at once; then one every 10 ms.
    assert!(times[..10].iter().all(|t| t.is_zero()), "{times:?}");
    assert_eq!(times[10], Duration::from_millis(10));
    assert_eq!(times[34], Duration::from_millis(250));
    // No one-second window holds more than 10 + 100 starts (burst + rate).
    for (i, t) in times.iter().enumerate() {
        let window = times[i..]
            .iter()
            .filter(|u| **u < *t + Duration::from_secs(1));
        assert!(window.count() <= 110, "{times:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_under_ten_has_a_burst_of_one() {
    let pace = pace(limits(Some((5, 1)), None));
    let times = start_times(&pace, 3).await;
    assert_eq!(times, [0, 200, 400].map(Duration::from_millis));
}

#[tokio::test(start_paused = true)]
async fn a_per_minute_rate_spaces_calls_by_its_share_of_the_minute() {
    let pace = pace(limits(Some((2, 60)), None));
    let times = start_times(&pace, 4).await;
    let want = [0, 30, 60, 90].map(Duration::from_secs);
    assert_eq!(times, want);
}

#[tokio::test(start_paused = true)]
async fn no_more_than_max_concurrent_calls_are_in_flight() {
    let pace = pace(limits(None, Some(3)));
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (pace, now, peak) = (pace.clone(), now.clone(), peak.clone());
            tokio::spawn(async move {
                let call = async {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, ProviderError>(())
                };
                pace.run(call).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_holds_every_caller_until_then() {
    let metrics = Arc::new(Metrics::new());
    let pace = pace_counted(limits(None, None), metrics.clone());
    let t0 = Instant::now();
    let refused = pace.run(async { Err::<(), _>(too_many(Some(Duration::from_secs(7)))) });
    assert!(refused.await.is_err());
    let times = start_times(&pace, 5).await;
    let held = Duration::from_secs(7);
    assert!(times.iter().all(|t| *t >= held), "{times:?}");
    assert!(t0.elapsed() < held + Duration::from_millis(10));
    let scraped = metrics.render();
    assert!(
        scraped.contains("rekey_provider_throttled_seconds_total{provider=\"p\"} 35"),
        "five callers waited 7 s each: {scraped}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_that_returns_while_a_call_waits_holds_that_call_too() {
    let pace = pace(limits(Some((1, 1)), None));
    pace.run(ok()).await.unwrap();
    // The next call's turn is at 1 s; a 429 at 0 s holds it to 5 s.
    let waiting = {
        let pace = pace.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            pace.run(ok()).await.unwrap();
            t0.elapsed()
        })
    };
    tokio::task::yield_now().await;
    pace.hold(Some(Duration::from_secs(5)), Instant::now());
    assert_eq!(waiting.await.unwrap(), Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_pauses_longer_each_time_up_to_the_cap() {
    let pace = pace(limits(None, None));
    let mut holds = Vec::new();
    for _ in 0..12 {
        let now = Instant::now();
        pace.hold(None, now);
        holds.push(pace.lock().not_before - now);
        tokio::time::advance(MAX_HOLD).await;
    }
    // Jittered into [pause / 2, pause] of 0.5 s, 1 s, 2 s, ... up to the cap.
    assert!(holds[0] >= Duration::from_millis(250) && holds[0] <= Duration::from_millis(500));
    assert!(holds[3] >= Duration::from_secs(2) && holds[3] <= Duration::from_secs(4));
    assert!(holds.iter().all(|h| *h <= MAX_HOLD), "{holds:?}");
    // A success starts the schedule over.
    pace.learn(&Ok::<(), ProviderError>(()));
    let now = Instant::now();
    pace.hold(None, now);
    assert!(pace.lock().not_before - now <= Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_cap_holds_only_up_to_the_cap() {
    let pace = pace(limits(None, None));
    let now = Instant::now();
    pace.hold(Some(Duration::from_secs(3600)), now);
    assert_eq!(pace.lock().not_before - now, MAX_HOLD);
}

#[tokio::test(start_paused = true)]
async fn verification_is_never_paced() {
    struct Refuses;
    #[async_trait]
    impl Provider for Refuses {
        fn entry(&self) -> &str {
            "p"
        }
        async fn create_key(&self, _: &KeySpec) -> Result<CreatedKey, ProviderError> {
            Err(self.unsupported("create", "-"))
        }
        async fn list_keys(&self) -> Result<Vec<KeyInfo>, ProviderError> {
            Err(too_many(Some(Duration::from_secs(30))))
        }
        async fn get_key(&self, _: &str) -> Result<Option<KeyInfo>, ProviderError> {
            Ok(None)
        }
        async fn disable_key(&self, _: &str) -> Result<(), ProviderError> {
            Ok(())
        }
        async fn delete_key(&self, _: &str) -> Result<Deleted, ProviderError> {
            Ok(Deleted::Now)
        }
        async fn verify_key(&self, _: &SecretString, _: &VerifyMode) -> Result<(), ProviderError> {
            Ok(())
        }
    }
    let client = wrap(Arc::new(Refuses), pace(limits(Some((1, 60)), None)));
    assert!(client.paced());
    assert!(client.list_keys().await.is_err());
    let t0 = Instant::now();
    let key = SecretString::from("k");
    client.verify_key(&key, &VerifyMode::Models).await.unwrap();
    assert!(t0.elapsed().is_zero());
    client.get_key("x").await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(60),
        "held by the 429, then the bucket"
    );
}

#[tokio::test(start_paused = true)]
async fn the_queue_delay_is_what_a_call_asked_now_would_wait() {
    let pace = pace(limits(Some((1, 1)), None));
    assert_eq!(
        pace.queue_delay(Instant::now()),
        Duration::ZERO,
        "a token is there"
    );
    pace.run(ok()).await.unwrap();
    let after_one = pace.queue_delay(Instant::now());
    assert_eq!(
        after_one,
        Duration::from_secs(1),
        "the next token is a second away"
    );
    let _ = pace
        .run(async { Err::<(), _>(too_many(Some(Duration::from_secs(7)))) })
        .await;
    let held = pace.queue_delay(Instant::now());
    assert!(
        held >= Duration::from_secs(6),
        "a 429's hold counts: {held:?}"
    );
}

/// A pace dividing the rate among `replicas`, as the app wires it.
fn pace_shared(limits: ProviderLimits, replicas: &Replicas) -> Arc<Pace> {
    Arc::new(Pace::new("p", limits, None).shared(replicas.clone()))
}

#[tokio::test(start_paused = true)]
async fn the_rate_halves_with_two_replicas_and_comes_back_when_one_leaves() {
    let replicas: Replicas = Arc::new(AtomicUsize::new(2));
    let pace = pace_shared(limits(Some((100, 1)), None), &replicas);
    let times = start_times(&pace, 15).await;
    // 50/s here (the other replica takes the other 50): a burst of 5, then
    // one every 20 ms.
    assert!(times[..5].iter().all(|t| t.is_zero()), "{times:?}");
    assert!(times[5..].iter().all(|t| !t.is_zero()), "{times:?}");
    assert_eq!(times[5], Duration::from_millis(20));
    assert_eq!(times[14], Duration::from_millis(200));

    tokio::time::advance(Duration::from_secs(10)).await;
    replicas.store(1, Ordering::Relaxed);
    let times = start_times(&pace, 15).await;
    // Alone again: the whole 100/s, burst 10.
    assert!(times[..10].iter().all(|t| t.is_zero()), "{times:?}");
    assert_eq!(times[10], Duration::from_millis(10));
    assert_eq!(times[14], Duration::from_millis(50));
}

#[tokio::test(start_paused = true)]
async fn more_replicas_than_the_burst_still_let_one_call_through_at_a_time() {
    let replicas: Replicas = Arc::new(AtomicUsize::new(5));
    let pace = pace_shared(limits(Some((2, 1)), None), &replicas);
    let times = start_times(&pace, 3).await;
    // 2/s shared by 5: 0.4/s here, one call per 2.5 s, a burst of one.
    let want = [0, 2500, 5000].map(Duration::from_millis);
    assert_eq!(times, want);
}

#[tokio::test(start_paused = true)]
async fn a_count_of_zero_replicas_reads_as_one_and_concurrency_stays_per_process() {
    let replicas: Replicas = Arc::new(AtomicUsize::new(0));
    let pace = pace_shared(limits(Some((2, 60)), None), &replicas);
    let times = start_times(&pace, 3).await;
    assert_eq!(times, [0, 30, 60].map(Duration::from_secs));

    replicas.store(4, Ordering::Relaxed);
    let pace = pace_shared(limits(None, Some(3)), &replicas);
    let times = start_times(&pace, 6).await;
    assert!(
        times.iter().all(|t| t.is_zero()),
        "no rate, no share: {times:?}"
    );
    assert_eq!(
        pace.permits.as_ref().map(Semaphore::available_permits),
        Some(3)
    );
}
