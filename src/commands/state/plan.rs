//! What `state migrate` decides before it writes anything: each journal's
//! verdict (move, already there, refused and why) and the leases held.

use crate::clock::rfc3339;
use crate::state::{PolicyState, Rotation, StateError, StateStore, Step};

/// What happens to one policy's journal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Verdict {
    Move,
    AlreadyThere,
    Refused(String),
}

/// Everything decided before anything is written.
pub(super) struct Plan {
    /// Journals in the source, in name order, with their verdict.
    pub(super) journals: Vec<(PolicyState, Verdict)>,
    /// Leases held on either side, as the store names them.
    pub(super) leases: Vec<String>,
}

impl Plan {
    pub(super) fn blocked(&self) -> bool {
        !self.leases.is_empty()
            || (self.journals.iter()).any(|(_, v)| matches!(v, Verdict::Refused(_)))
    }
}

/// Reads both sides and decides each journal's fate.
pub(super) async fn plan(
    from: &dyn StateStore,
    to: Option<&dyn StateStore>,
) -> Result<Plan, StateError> {
    let mut leases = held(from, "source").await?;
    let in_target = match to {
        Some(to) => {
            leases.extend(held(to, "target").await?);
            to.policies().await?
        }
        None => Vec::new(),
    };
    let mut journals = Vec::new();
    for policy in from.policies().await? {
        let state = match from.load(&policy).await {
            Ok(state) => state,
            Err(e) => {
                let refused = Verdict::Refused(format!("its journal cannot be read: {e}"));
                journals.push((PolicyState::new(&policy), refused));
                continue;
            }
        };
        let there = match (to, in_target.contains(&policy)) {
            (Some(to), true) => Some(to.load(&policy).await),
            _ => None,
        };
        let verdict = verdict(&state, there);
        journals.push((state, verdict));
    }
    Ok(Plan { journals, leases })
}

async fn held(store: &dyn StateStore, side: &str) -> Result<Vec<String>, StateError> {
    let held = store.held_leases().await?;
    Ok(held
        .into_iter()
        .map(|lease| format!("{side} {}: lease held: {lease}", store.describe()))
        .collect())
}

/// Whether `state` may move, given what the target holds for its policy.
pub(super) fn verdict(
    state: &PolicyState,
    there: Option<Result<PolicyState, StateError>>,
) -> Verdict {
    if let Some(why) = state.in_flight.as_ref().and_then(unfinished) {
        return Verdict::Refused(why);
    }
    match there {
        None => Verdict::Move,
        Some(Ok(existing)) if existing == *state => Verdict::AlreadyThere,
        Some(Ok(_)) => Verdict::Refused(
            "the target already holds a different journal for it (never overwritten)".into(),
        ),
        Some(Err(e)) => Verdict::Refused(format!("the target's journal cannot be read: {e}")),
    }
}

/// Why a rotation in flight cannot move yet: only a promoted rotation
/// waiting out its grace is complete enough to be copied.
pub(super) fn unfinished(rotation: &Rotation) -> Option<String> {
    let id = &rotation.id;
    if let Some(why) = &rotation.rollback {
        return Some(format!("rotation {id} is being rolled back ({why})"));
    }
    if let Some(create) = &rotation.unconfirmed_create {
        return Some(format!(
            "rotation {id} has a create not yet confirmed since {}",
            rfc3339(create.since)
        ));
    }
    (rotation.step < Step::Promoted).then(|| {
        format!(
            "rotation {id} is at step {}, not yet promoted",
            rotation.step.as_str()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{PolicyName, RotationId};
    use crate::state::{Trigger, UnconfirmedCreate};

    fn rotation(step: Step) -> Rotation {
        Rotation {
            id: RotationId::parse("r1").unwrap(),
            trigger: Trigger::Schedule,
            started_at: chrono::Utc::now(),
            step,
            grace: std::time::Duration::from_secs(60),
            old_key: None,
            new_key: None,
            version_id: None,
            verified_at: None,
            revoke_after: None,
            revoke_failures: 0,
            rollback: None,
            unconfirmed_create: None,
            restages: 0,
            after_promote: Default::default(),
        }
    }

    #[test]
    fn only_a_promoted_rotation_with_nothing_pending_may_move() {
        for step in [Step::Begun, Step::Created, Step::Staged, Step::Verified] {
            let why = unfinished(&rotation(step)).expect("refused");
            assert!(why.contains(step.as_str()), "{why}");
        }
        assert_eq!(unfinished(&rotation(Step::Promoted)), None);
        let mut rolling_back = rotation(Step::Promoted);
        rolling_back.rollback = Some("verify failed".into());
        assert!(unfinished(&rolling_back).unwrap().contains("rolled back"));
        let mut unconfirmed = rotation(Step::Promoted);
        unconfirmed.unconfirmed_create = Some(UnconfirmedCreate {
            since: chrono::Utc::now(),
            cause: "timeout".into(),
        });
        assert!(
            unfinished(&unconfirmed)
                .unwrap()
                .contains("not yet confirmed")
        );
    }

    #[test]
    fn an_identical_target_journal_is_skipped_and_a_different_one_refused() {
        let policy = PolicyName::parse("p").unwrap();
        let state = PolicyState::new(&policy);
        assert_eq!(verdict(&state, None), Verdict::Move);
        assert_eq!(
            verdict(&state, Some(Ok(state.clone()))),
            Verdict::AlreadyThere
        );
        let mut other = state.clone();
        other.failures = 1;
        assert!(
            matches!(verdict(&state, Some(Ok(other))), Verdict::Refused(w) if w.contains("different journal"))
        );
    }
}
