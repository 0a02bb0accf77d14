//! A table of the config tree: its entries in a `Vec` sorted by key.
//!
//! A `BTreeMap` sizes every node for eleven entries, so each small table
//! (`key = { name = "..." }`) cost ~0.6 KiB: at 10,000 policies, five tables
//! each, ~32 MiB of short-lived heap whose holes the long-lived config was
//! then scattered through. Tables here have a handful of keys; a sorted
//! `Vec` sized to them keeps the `BTreeMap`'s order (and so the order in
//! which problems are reported) at a tenth of the size.

use super::Node;

#[derive(Debug, Clone, PartialEq, Default)]
pub(in crate::config) struct Table(Vec<(String, Node)>);

impl Table {
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.position(key).ok().map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`, replacing any value it had (as a map's `insert` does).
    pub fn insert(&mut self, key: String, node: Node) {
        match self.position(&key) {
            Ok(i) => self.0[i].1 = node,
            Err(i) => self.0.insert(i, (key, node)),
        }
    }

    /// The value of `key`, `empty()` put there first if it has none.
    pub fn or_insert_with(&mut self, key: &str, empty: impl FnOnce() -> Node) -> &mut Node {
        let i = match self.position(key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (key.to_string(), empty()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Entries in any order; a key given twice keeps its last value.
impl FromIterator<(String, Node)> for Table {
    fn from_iter<I: IntoIterator<Item = (String, Node)>>(entries: I) -> Self {
        let mut entries: Vec<(String, Node)> = entries.into_iter().collect();
        // Stable: of equal keys, the last given is the last here.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.reverse();
        entries.dedup_by(|later, kept| later.0 == kept.0);
        entries.reverse();
        entries.shrink_to_fit();
        Table(entries)
    }
}

impl IntoIterator for Table {
    type Item = (String, Node);
    type IntoIter = std::vec::IntoIter<(String, Node)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
