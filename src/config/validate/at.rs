//! [`At`]: problems of one policy (or policy set), recorded under
//! `policy[i].<field>` (`policy_set[i].<field>`) and naming it once its name
//! is known. Every policy check takes one. [`Origin`]: where an expanded
//! policy came from, for the checks across policies.

use std::time::Duration;

use super::problems::Problems;
use super::quoted;
use crate::fleet::MemberId;

/// Records problems under `<section>[i].<field>`, naming the entry once known.
pub(super) struct At<'p> {
    pub(super) p: &'p mut Problems,
    /// `policy` or `policy_set`.
    pub(super) section: &'static str,
    pub(super) i: usize,
    pub(super) name: Option<String>,
}

impl<'p> At<'p> {
    pub(super) fn policy(p: &'p mut Problems, i: usize) -> Self {
        At {
            p,
            section: "policy",
            i,
            name: None,
        }
    }

    pub(super) fn policy_set(p: &'p mut Problems, i: usize) -> Self {
        At {
            p,
            section: "policy_set",
            i,
            name: None,
        }
    }
}

impl At<'_> {
    pub(super) fn path(&self, field: &str) -> String {
        format!("{}[{}].{field}", self.section, self.i)
    }

    pub(super) fn push(&mut self, field: &str, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(name) = &self.name {
            message = format!("{message} ({} {name:?})", self.section);
        }
        self.p.push(self.path(field), message);
    }

    pub(super) fn required<'a>(&mut self, field: &str, raw: Option<&'a str>) -> Option<&'a str> {
        let found = raw.map(str::trim).filter(|s| !s.is_empty());
        if found.is_none() {
            self.push(field, "required");
        }
        found
    }

    /// A positive duration of at most `max`.
    pub(super) fn duration(
        &mut self,
        field: &str,
        raw: Option<&str>,
        max: Duration,
    ) -> Option<Duration> {
        self.p.positive_duration(&self.path(field), raw, max)
    }

    /// `raw` must be one of `allowed` (by name); `None` if absent or not allowed.
    pub(super) fn choice<T: Copy>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        allowed: &[(&str, T)],
    ) -> Option<T> {
        let raw = raw?;
        let found = allowed
            .iter()
            .find(|(name, _)| *name == raw)
            .map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<String> = allowed.iter().map(|(n, _)| format!("{n:?}")).collect();
            self.push(
                field,
                format!("{} is not one of {}", quoted(raw), names.join(", ")),
            );
        }
        found
    }
}

/// Where an expanded policy was written: a `[[policy]]` or a member of a
/// `[[policy_set]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    Policy(usize),
    Member { set: usize, member: MemberId },
}

impl Origin {
    /// The field's path: a member's problems are its set's.
    pub(super) fn path(&self, field: &str) -> String {
        match self {
            Origin::Policy(i) => format!("policy[{i}].{field}"),
            Origin::Member { set, .. } => format!("policy_set[{set}].{field}"),
        }
    }

    /// ` (member "acme")` for a member, nothing for a policy.
    pub(super) fn member_note(&self) -> String {
        match self {
            Origin::Policy(_) => String::new(),
            Origin::Member { member, .. } => format!(" (member {:?})", member.as_str()),
        }
    }
}

/// `policy[3]` or `policy_set[0] member "acme"`.
impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Policy(i) => write!(f, "policy[{i}]"),
            Origin::Member { set, member } => {
                write!(f, "policy_set[{set}] member {:?}", member.as_str())
            }
        }
    }
}
