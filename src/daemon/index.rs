//! The daemon's memory between passes: when to look at each policy next (a
//! sorted index of instants) and what its journal said when it was last
//! read, trimmed to what the per-policy gauges need. A pass reads the
//! journals of the policies whose instant has come and of those that
//! changed (a rotation ended, a reload touched them, a crashed replica's
//! lease expired) — not every journal — so the cost of an idle pass does
//! not grow with the number of idle policies.

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Unbounded};

use chrono::{DateTime, Utc};

use crate::names::PolicyName;
use crate::state::{
    HistoryEntry, KeyRecord, Outcome, OutcomeKind, PolicyState, Retirement, Rotation,
};

#[derive(Default)]
pub(super) struct DueIndex {
    /// (when to look, policy), earliest first.
    queue: BTreeSet<(DateTime<Utc>, PolicyName)>,
    at: HashMap<PolicyName, DateTime<Utc>>,
    /// Each policy's journal as last read, for the gauges between reads.
    seen: HashMap<PolicyName, Seen>,
}

impl DueIndex {
    /// Look at `policy` at `when` (replacing any earlier plan for it).
    pub(super) fn look_at(&mut self, policy: &PolicyName, when: DateTime<Utc>) {
        if let Some(old) = self.at.insert(policy.clone(), when) {
            self.queue.remove(&(old, policy.clone()));
        }
        self.queue.insert((when, policy.clone()));
    }

    /// Look at `policy` no later than `when`: an earlier plan stands.
    pub(super) fn look_by(&mut self, policy: &PolicyName, when: DateTime<Utc>) {
        match self.at.get(policy) {
            Some(at) if *at <= when => {}
            _ => self.look_at(policy, when),
        }
    }

    /// Nothing planned for `policy` (a rotation of it runs: its end says
    /// when to look again).
    pub(super) fn unplan(&mut self, policy: &PolicyName) {
        if let Some(old) = self.at.remove(policy) {
            self.queue.remove(&(old, policy.clone()));
        }
    }

    /// A policy gone from the config: forgotten entirely.
    pub(super) fn forget(&mut self, policy: &PolicyName) {
        self.unplan(policy);
        self.seen.remove(policy);
    }

    /// Forgets every policy `keep` says no to (gone from the config).
    pub(super) fn retain(&mut self, keep: impl Fn(&PolicyName) -> bool) {
        self.queue.retain(|(_, name)| keep(name));
        self.at.retain(|name, _| keep(name));
        self.seen.retain(|name, _| keep(name));
    }

    /// The earliest policy to look at by `now` that comes after `after` in
    /// the index's order: a pass walks the due ones one at a time (and
    /// stops at the concurrency limit) without copying them all out.
    pub(super) fn next_due(
        &self,
        now: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, PolicyName)>,
    ) -> Option<(DateTime<Utc>, PolicyName)> {
        let mut rest = match after {
            Some(after) => self.queue.range((Excluded(after.clone()), Unbounded)),
            None => self.queue.range::<(DateTime<Utc>, PolicyName), _>(..),
        };
        rest.next().filter(|(at, _)| *at <= now).cloned()
    }

    /// When the next planned look is.
    pub(super) fn earliest(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(at, _)| *at)
    }

    pub(super) fn is_planned(&self, policy: &PolicyName) -> bool {
        self.at.contains_key(policy)
    }

    pub(super) fn planned(&self) -> usize {
        self.at.len()
    }

    /// Keeps what a read of the journal said (trimmed), for the gauges.
    pub(super) fn saw(&mut self, state: &PolicyState) {
        self.seen.insert(state.policy.clone(), Seen::of(state));
    }

    /// The journal could not be read: no gauge is fed from an old reading.
    pub(super) fn unseen(&mut self, policy: &PolicyName) {
        self.seen.remove(policy);
    }

    /// The policies whose journal, as last read, had a rotation in flight.
    pub(super) fn in_flight(&self) -> impl Iterator<Item = &PolicyName> {
        (self.seen.iter())
            .filter(|(_, seen)| seen.in_flight.is_some())
            .map(|(name, _)| name)
    }

    /// Each journal as last read, trimmed (see [`Seen`]).
    pub(super) fn seen(&self) -> impl Iterator<Item = PolicyState> + '_ {
        self.seen.iter().map(|(name, seen)| seen.state(name))
    }
}

/// What the gauges and the shutdown warning read of a journal: everything
/// but the history, of which only the newest successful rotation is kept.
/// What most policies do not have (a rotation in flight, a retirement) is
/// boxed: a whole `PolicyState` is ~650 bytes, ~6.5 MiB at 10,000 policies.
struct Seen {
    current: Option<KeyRecord>,
    in_flight: Option<Box<Rotation>>,
    failures: u32,
    retry_not_before: Option<DateTime<Utc>>,
    last_result: Option<Box<Outcome>>,
    last_rotated: Option<Box<HistoryEntry>>,
    awaiting_key_since: Option<DateTime<Utc>>,
    retirement: Option<Box<Retirement>>,
}

impl Seen {
    fn of(state: &PolicyState) -> Seen {
        let last_rotated = (state.history.iter().rev())
            .find(|h| h.kind == OutcomeKind::Rotated)
            .cloned();
        Seen {
            current: state.current.clone(),
            in_flight: state.in_flight.clone().map(Box::new),
            failures: state.failures,
            retry_not_before: state.retry_not_before,
            last_result: state.last_result.clone().map(Box::new),
            last_rotated: last_rotated.map(Box::new),
            awaiting_key_since: state.awaiting_key_since,
            retirement: state.retirement.clone().map(Box::new),
        }
    }

    fn state(&self, policy: &PolicyName) -> PolicyState {
        PolicyState {
            policy: policy.clone(),
            current: self.current.clone(),
            in_flight: self.in_flight.as_deref().cloned(),
            failures: self.failures,
            retry_not_before: self.retry_not_before,
            last_result: self.last_result.as_deref().cloned(),
            history: self.last_rotated.as_deref().cloned().into_iter().collect(),
            awaiting_key_since: self.awaiting_key_since,
            retirement: self.retirement.as_deref().cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> PolicyName {
        PolicyName::parse(s).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn due_lists_policies_whose_instant_has_come_earliest_first() {
        let mut index = DueIndex::default();
        index.look_at(&name("b"), at("2026-01-01T00:00:02Z"));
        index.look_at(&name("a"), at("2026-01-01T00:00:03Z"));
        index.look_at(&name("c"), at("2026-01-01T00:00:01Z"));
        index.look_at(&name("d"), at("2026-01-01T00:00:09Z"));
        assert_eq!(index.earliest(), Some(at("2026-01-01T00:00:01Z")));
        let now = at("2026-01-01T00:00:03Z");
        let first = index.next_due(now, None).unwrap();
        assert_eq!(first.1, name("c"));
        let second = index.next_due(now, Some(&first)).unwrap();
        assert_eq!(second.1, name("b"));
        let third = index.next_due(now, Some(&second)).unwrap();
        assert_eq!(third.1, name("a"));
        assert_eq!(index.next_due(now, Some(&third)), None, "d is not due yet");
    }

    #[test]
    fn a_new_plan_replaces_the_old_one_and_look_by_keeps_the_earlier() {
        let mut index = DueIndex::default();
        index.look_at(&name("a"), at("2026-01-01T00:00:01Z"));
        index.look_at(&name("a"), at("2026-01-01T00:00:05Z"));
        assert_eq!(index.next_due(at("2026-01-01T00:00:04Z"), None), None);
        assert_eq!(index.planned(), 1);
        index.look_by(&name("a"), at("2026-01-01T00:00:09Z"));
        assert_eq!(index.earliest(), Some(at("2026-01-01T00:00:05Z")));
        index.look_by(&name("a"), at("2026-01-01T00:00:02Z"));
        assert_eq!(index.earliest(), Some(at("2026-01-01T00:00:02Z")));
        index.unplan(&name("a"));
        assert_eq!(index.earliest(), None);
        assert!(!index.is_planned(&name("a")));
    }

    #[test]
    fn retain_forgets_the_plans_and_readings_of_the_others() {
        let mut index = DueIndex::default();
        index.look_at(&name("a"), at("2026-01-01T00:00:01Z"));
        index.look_at(&name("b"), at("2026-01-01T00:00:02Z"));
        index.retain(|n| *n == name("b"));
        assert_eq!(index.planned(), 1);
        assert_eq!(index.earliest(), Some(at("2026-01-01T00:00:02Z")));
    }
}
