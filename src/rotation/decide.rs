//! "Should this policy rotate now?" as an ordered chain of pure checks, each
//! giving a reason (cert-manager style). No I/O: the caller passes the
//! journal and the time.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Backoff;
use crate::policy::Policy;
use crate::state::{PolicyState, Step, Trigger};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rotation is in flight and its next step may run now.
    Resume,
    /// Start a new rotation for this reason.
    Rotate(Trigger),
    /// Nothing to do before `until` (None: never, e.g. no schedule applies).
    Wait {
        until: Option<DateTime<Utc>>,
        why: WaitReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitReason {
    /// Promoted; the old key is revoked when the grace has passed.
    InGrace,
    /// A recent failure: backing off before the next attempt.
    Backoff,
    /// The key is fresh; the next rotation is at the next due time.
    NotDue,
    /// After the grace, the old key is still in use (`revoke.wait_idle`):
    /// its use is read again at `until`.
    OldKeyBusy,
}

/// The pure decision for one policy at `now`.
pub fn decide(policy: &Policy, state: &PolicyState, now: DateTime<Utc>) -> Decision {
    let promoted = (state.in_flight.as_ref()).filter(|r| r.step == Step::Promoted);
    let backoff = state.retry_not_before.filter(|at| *at > now);
    // Hooks run right after promote, and are retried during the grace.
    let hooks_pending = promoted.is_some_and(|r| {
        r.rollback.is_none() && (r.after_promote.hooks_done as usize) < policy.on_promote.len()
    });
    if hooks_pending && backoff.is_none() {
        return Decision::Resume;
    }
    if let Some(at) = promoted.and_then(|r| r.revoke_after).filter(|at| *at > now) {
        let (until, why) = match backoff {
            Some(retry) if hooks_pending => (retry.min(at), WaitReason::Backoff),
            _ => (at, WaitReason::InGrace),
        };
        return Decision::Wait {
            until: Some(until),
            why,
        };
    }
    if let Some(at) = backoff {
        return Decision::Wait {
            until: Some(at),
            why: WaitReason::Backoff,
        };
    }
    let watched = promoted.and_then(|r| r.after_promote.idle.as_ref());
    if let Some(at) = watched.map(|w| w.next_check).filter(|at| *at > now) {
        return Decision::Wait {
            until: Some(at),
            why: WaitReason::OldKeyBusy,
        };
    }
    if state.in_flight.is_some() {
        return Decision::Resume;
    }
    let Some(current) = &state.current else {
        return Decision::Rotate(Trigger::FirstKey);
    };
    let born = current.created_at;
    if policy
        .max_age
        .is_some_and(|age| now >= crate::clock::later(born, age))
    {
        return Decision::Rotate(Trigger::Overdue);
    }
    let tick = policy.next_tick(born);
    if tick.is_some_and(|tick| tick <= now) {
        return Decision::Rotate(Trigger::Schedule);
    }
    Decision::Wait {
        until: next_due(policy, state),
        why: WaitReason::NotDue,
    }
}

/// When the current key falls due: the earlier of the next cron tick after it
/// was created and its `max_age` deadline. `None` for a policy with no key yet
/// (due now) is reported by [`decide`], not here.
pub fn next_due(policy: &Policy, state: &PolicyState) -> Option<DateTime<Utc>> {
    let born = state.current.as_ref()?.created_at;
    let by_age = policy.max_age.map(|age| crate::clock::later(born, age));
    let by_cron = policy.next_tick(born);
    [by_age, by_cron].into_iter().flatten().min()
}

/// Delay before retrying after `failures` consecutive failures: `min`, doubled
/// per further failure, capped at `max` — exact, never jittered (documented).
pub fn failure_backoff(failures: u32, backoff: Backoff) -> Duration {
    crate::backoff::Backoff::from(backoff).delay(failures.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::*;
    use crate::schedule::Schedule;
    use crate::state::{KeyRecord, Rotation};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn policy(schedule: Option<&str>, max_age: Option<Duration>) -> Policy {
        Policy {
            name: "p".parse().unwrap(),
            provider: "or".into(),
            schedule: schedule.map(|s| Box::new(Schedule::parse(s, None).unwrap())),
            max_age,
            key: KeyTemplate {
                name: "rekey-{policy}-{rotation}".into(),
                ..KeyTemplate::default()
            },
            target: Target {
                store: "s".into(),
                secret_id: "x".into(),
                lease: crate::names::LeaseKey::aws("test", "x"),
                format: Format::Raw,
                field: None,
                create: true,
            },
            verify: VerifySpec {
                mode: VerifyMode::KeyInfo,
                timeout: Duration::from_secs(5),
                base_url: None,
            },
            revoke: RevokeSpec {
                grace: Duration::from_secs(60),
                mode: RevokeMode::Delete,
                consumer_refresh: None,
                wait_idle: None,
                max_wait: Duration::from_secs(86_400),
                on_busy: OnBusy::Revoke,
            },
            adopt: AdoptSpec::default(),
            project_id: None,
            notify: Vec::new(),
            on_promote: Vec::new().into(),
            set: None,
        }
    }

    fn with_key(created: &str) -> PolicyState {
        let mut s = PolicyState::new(&"p".parse().unwrap());
        s.current = Some(KeyRecord {
            id: Some("k".into()),
            label: "l".into(),
            created_at: at(created),
            adopted: false,
        });
        s
    }

    fn in_flight(step: Step, revoke_after: Option<&str>) -> PolicyState {
        let mut s = with_key("2026-01-01T00:00:00Z");
        s.in_flight = Some(Rotation {
            id: "r".parse().unwrap(),
            trigger: Trigger::Schedule,
            started_at: at("2026-01-01T00:00:00Z"),
            step,
            grace: Duration::from_secs(60),
            old_key: None,
            new_key: None,
            version_id: None,
            verified_at: None,
            revoke_after: revoke_after.map(at),
            revoke_failures: 0,
            rollback: None,
            unconfirmed_create: None,
            restages: 0,
            after_promote: Default::default(),
        });
        s
    }

    #[test]
    fn the_chain_gives_the_first_reason_that_applies() {
        let daily = Some("0 3 * * *");
        let day = Some(Duration::from_secs(86_400));
        let now = at("2026-03-10T12:00:00Z");
        let mut backing_off = with_key("2026-01-01T00:00:00Z");
        backing_off.retry_not_before = Some(at("2026-03-10T13:00:00Z"));
        let mut backoff_over = backing_off.clone();
        backoff_over.retry_not_before = Some(at("2026-03-10T11:00:00Z"));
        let cases: Vec<(&str, Policy, PolicyState, Decision)> = vec![
            (
                "no key yet",
                policy(daily, None),
                PolicyState::new(&"p".parse().unwrap()),
                Decision::Rotate(Trigger::FirstKey),
            ),
            (
                "in grace",
                policy(daily, None),
                in_flight(Step::Promoted, Some("2026-03-10T12:30:00Z")),
                Decision::Wait {
                    until: Some(at("2026-03-10T12:30:00Z")),
                    why: WaitReason::InGrace,
                },
            ),
            (
                "grace over",
                policy(daily, None),
                in_flight(Step::Promoted, Some("2026-03-10T11:00:00Z")),
                Decision::Resume,
            ),
            (
                "crashed mid-way",
                policy(daily, None),
                in_flight(Step::Staged, None),
                Decision::Resume,
            ),
            (
                "backing off",
                policy(daily, None),
                backing_off,
                Decision::Wait {
                    until: Some(at("2026-03-10T13:00:00Z")),
                    why: WaitReason::Backoff,
                },
            ),
            (
                "backoff over",
                policy(None, day),
                backoff_over,
                Decision::Rotate(Trigger::Overdue),
            ),
            (
                "older than max_age",
                policy(daily, day),
                with_key("2026-03-09T11:00:00Z"),
                Decision::Rotate(Trigger::Overdue),
            ),
            (
                "cron tick passed",
                policy(daily, None),
                with_key("2026-03-10T02:00:00Z"),
                Decision::Rotate(Trigger::Schedule),
            ),
            (
                "fresh key",
                policy(daily, day),
                with_key("2026-03-10T04:00:00Z"),
                Decision::Wait {
                    until: Some(at("2026-03-11T03:00:00Z")),
                    why: WaitReason::NotDue,
                },
            ),
            (
                "max_age earlier than the tick",
                policy(Some("0 3 1 * *"), day),
                with_key("2026-03-10T04:00:00Z"),
                Decision::Wait {
                    until: Some(at("2026-03-11T04:00:00Z")),
                    why: WaitReason::NotDue,
                },
            ),
        ];
        for (name, policy, state, want) in cases {
            assert_eq!(decide(&policy, &state, now), want, "{name}");
        }
    }

    #[test]
    fn a_daemon_down_across_a_tick_catches_up() {
        let p = policy(Some("0 3 * * *"), None);
        let state = with_key("2026-03-01T03:00:00Z");
        assert_eq!(
            decide(&p, &state, at("2026-03-05T09:00:00Z")),
            Decision::Rotate(Trigger::Schedule)
        );
    }

    #[test]
    fn failure_backoff_doubles_and_is_capped() {
        let b = Backoff {
            min: Duration::from_secs(60),
            max: Duration::from_secs(600),
        };
        let got: Vec<u64> = (1..=6).map(|n| failure_backoff(n, b).as_secs()).collect();
        assert_eq!(got, vec![60, 120, 240, 480, 600, 600]);
        assert_eq!(failure_backoff(u32::MAX, b).as_secs(), 600);
    }

    #[test]
    fn a_set_member_falls_due_its_spread_offset_after_each_tick() {
        let mut member = policy(Some("0 3 * * *"), None);
        member.set = Some(crate::fleet::SetMember {
            set: "tenant-{member}".into(),
            member: crate::fleet::MemberId::parse("acme").unwrap(),
            on_remove: crate::fleet::OnRemove::Keep,
            offset: Duration::from_secs(2 * 3600),
        });
        // A key made between the tick (03:00) and the member's 05:00 is due at 05:00.
        let early = with_key("2026-03-10T04:00:00Z");
        assert_eq!(next_due(&member, &early), Some(at("2026-03-10T05:00:00Z")));
        let rotated = with_key("2026-03-10T05:00:00Z");
        assert_eq!(
            next_due(&member, &rotated),
            Some(at("2026-03-11T05:00:00Z"))
        );
        assert!(matches!(
            decide(&member, &early, at("2026-03-10T04:59:59Z")),
            Decision::Wait { .. }
        ));
        assert_eq!(
            decide(&member, &early, at("2026-03-10T05:00:00Z")),
            Decision::Rotate(Trigger::Schedule)
        );
    }

    #[test]
    fn pending_hooks_are_retried_during_the_grace_and_a_busy_old_key_waits_for_its_next_read() {
        let mut p = policy(Some("0 3 * * *"), None);
        p.on_promote = vec![crate::policy::Hook {
            action: crate::policy::HookAction::Exec(vec!["true".into()]),
            timeout: Duration::from_secs(1),
        }]
        .into();
        let now = at("2026-03-10T12:00:00Z");
        let mut state = in_flight(Step::Promoted, Some("2026-03-10T12:30:00Z"));
        assert_eq!(decide(&p, &state, now), Decision::Resume, "hooks first");
        state.retry_not_before = Some(at("2026-03-10T12:01:00Z"));
        assert_eq!(
            decide(&p, &state, now),
            Decision::Wait {
                until: Some(at("2026-03-10T12:01:00Z")),
                why: WaitReason::Backoff
            },
            "a failed hook is retried after the backoff, inside the grace"
        );
        state.in_flight.as_mut().unwrap().after_promote.hooks_done = 1;
        assert!(matches!(
            decide(&p, &state, now),
            Decision::Wait {
                why: WaitReason::InGrace,
                ..
            }
        ));
        let mut watch = crate::state::IdleWatch::new(at("2026-03-10T12:30:00Z"));
        watch.next_check = at("2026-03-10T12:45:00Z");
        let rotation = state.in_flight.as_mut().unwrap();
        rotation.after_promote.idle = Some(watch);
        let later = at("2026-03-10T12:40:00Z");
        assert_eq!(
            decide(&p, &state, later),
            Decision::Wait {
                until: Some(at("2026-03-10T12:45:00Z")),
                why: WaitReason::OldKeyBusy
            }
        );
        assert_eq!(
            decide(&p, &state, at("2026-03-10T12:45:00Z")),
            Decision::Resume
        );
    }
}
