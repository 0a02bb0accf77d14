//! [`At`]: problems of one policy, recorded under `policy[i].<field>` and
//! naming the policy once its name is known. Every policy check takes one.

use std::time::Duration;

use super::problems::Problems;
use super::quoted;

/// Records problems under `policy[i].<field>`, naming the policy once known.
pub(super) struct At<'p> {
    pub(super) p: &'p mut Problems,
    pub(super) i: usize,
    pub(super) name: Option<String>,
}

impl At<'_> {
    pub(super) fn path(&self, field: &str) -> String {
        format!("policy[{}].{field}", self.i)
    }

    pub(super) fn push(&mut self, field: &str, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(name) = &self.name {
            message = format!("{message} (policy {name:?})");
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
