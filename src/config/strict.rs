//! Strict typing of the merged config document. The `config` crate layers
//! the file and the `REKEY_*` environment, but its own deserializer coerces
//! (`1.5` into an integer, `true` into a string, `"nan"` into a float). Here
//! the merged tree is read again by a serde deserializer that hands each
//! field exactly the type it declares: a wrong type is refused with the field
//! path, never converted. Values from the environment are text by nature, so
//! they are parsed as the field's type (an integer field needs an integer).
//! No message ever carries the value itself: a value in the wrong field may
//! be a key.
//!
//! The reader does not stop at the first problem: an unknown field is
//! recorded and left out, a value of the wrong type is recorded and read as
//! the type's empty value, so one run reports every shape problem (the
//! README promises every problem at once). The partly read document still
//! goes to `validate`, whose problems at a field already reported here are
//! dropped by the loader.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::bounds::MAX_TEXT_LEN;
use super::validate::{may_quote, quoted};

/// The document as parsed, with where each leaf came from.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    /// Text from a `REKEY_*` variable: parsed as whatever the field needs.
    Env(String),
    Table(BTreeMap<String, Node>),
    List(Vec<Node>),
}

impl Node {
    /// `merged` is the layered document; `env` the environment layer alone,
    /// which marks the leaves that came from a variable.
    pub(super) fn from_config(merged: config::Value, env: Option<&Node>) -> Node {
        use config::ValueKind as K;
        match merged.kind {
            K::Nil => Node::Nil,
            K::Boolean(b) => Node::Bool(b),
            K::I64(n) => Node::Int(n.into()),
            K::I128(n) => Node::Int(n),
            K::U64(n) => Node::Int(n.into()),
            // Past i128: no field takes such a number; keep it an integer that fails the range check.
            K::U128(n) => Node::Int(i128::try_from(n).unwrap_or(i128::MAX)),
            K::Float(f) => Node::Float(f),
            K::String(s) if matches!(env, Some(Node::Text(_))) => Node::Env(s),
            K::String(s) => Node::Text(s),
            K::Table(table) => Node::Table(
                table
                    .into_iter()
                    .map(|(k, v)| {
                        let env = match env {
                            Some(Node::Table(t)) => t.get(&k),
                            _ => None,
                        };
                        let node = Node::from_config(v, env);
                        (k, node)
                    })
                    .collect(),
            ),
            K::Array(items) => Node::List(
                items
                    .into_iter()
                    .map(|v| Node::from_config(v, None))
                    .collect(),
            ),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Nil => "an empty value",
            Node::Bool(_) => "boolean",
            Node::Int(_) => "integer",
            Node::Float(_) => "floating point number",
            Node::Text(_) | Node::Env(_) => "string",
            Node::Table(_) => "table",
            Node::List(_) => "list",
        }
    }
}

/// A shape problem: where (a dotted field path; empty until known) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShapeError {
    pub path: String,
    pub message: String,
}

impl ShapeError {
    fn at(path: &str, message: impl Into<String>) -> Self {
        ShapeError {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Errors raised by serde's generated code know no path: they get the
    /// innermost one they pass through.
    fn or_at(mut self, path: &str) -> Self {
        if self.path.is_empty() {
            self.path = path.to_string();
        }
        self
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ShapeError {}

impl de::Error for ShapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ShapeError::at("", msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        ShapeError::at(
            "",
            format!("invalid type: {}, expected {exp}", kind_of(&unexp)),
        )
    }

    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        ShapeError::at(
            "",
            format!("invalid value: {}, expected {exp}", kind_of(&unexp)),
        )
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ShapeError::at(
            "",
            format!(
                "unknown field {}; expected one of {}",
                quoted(field),
                expected.join(", ")
            ),
        )
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        ShapeError::at(
            "",
            format!("unknown value; expected one of {}", expected.join(", ")),
        )
    }
}

/// serde's `Unexpected` displays the value (`string "sk-..."`): keep its kind only.
fn kind_of(unexp: &de::Unexpected) -> &'static str {
    use de::Unexpected as U;
    match unexp {
        U::Bool(_) => "boolean",
        U::Unsigned(_) | U::Signed(_) => "integer",
        U::Float(_) => "floating point number",
        U::Char(_) | U::Str(_) => "string",
        U::Bytes(_) => "bytes",
        U::Unit | U::Option => "an empty value",
        U::Seq => "list",
        U::Map => "table",
        _ => "value",
    }
}

/// Reads `node` into `T` strictly; every error names its field path.
#[cfg(test)]
pub(super) fn from_node<T: de::DeserializeOwned>(node: Node) -> Result<T, Vec<ShapeError>> {
    match read(node) {
        (Some(value), problems) if problems.is_empty() => Ok(value),
        (_, problems) => Err(problems),
    }
}

/// Reads `node` into `T`, going on past each problem: the value read (absent
/// only if a problem could not be passed over) and every problem found.
pub(super) fn read<T: de::DeserializeOwned>(node: Node) -> (Option<T>, Vec<ShapeError>) {
    let problems = Problems::default();
    let strict = Strict {
        node,
        path: String::new(),
        problems: problems.clone(),
    };
    let value = T::deserialize(strict);
    let mut found = problems.take();
    match value {
        Ok(value) => (Some(value), found),
        Err(e) => {
            found.push(e.or_at(""));
            (None, found)
        }
    }
}

/// The problems found so far, shared by every level of one read.
#[derive(Clone, Default)]
struct Problems(Rc<RefCell<Vec<ShapeError>>>);

impl Problems {
    fn push(&self, problem: ShapeError) {
        self.0.borrow_mut().push(problem);
    }

    fn take(&self) -> Vec<ShapeError> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

struct Strict {
    node: Node,
    path: String,
    problems: Problems,
}

impl Strict {
    /// Records `problem` and goes on with the type's empty value, so the
    /// fields after this one are still read.
    fn passed_over<T>(&self, problem: ShapeError, empty: T) -> T {
        self.problems.push(problem);
        empty
    }

    /// Drops the fields `fields` does not name, recording each as unknown.
    fn known_only(&self, table: BTreeMap<String, Node>, fields: &[&str]) -> BTreeMap<String, Node> {
        let (known, unknown): (BTreeMap<_, _>, BTreeMap<_, _>) = table
            .into_iter()
            .partition(|(key, _)| fields.contains(&key.as_str()));
        for key in unknown.keys() {
            self.problems.push(unknown_field(&self.path, key, fields));
        }
        known
    }

    fn wrong(&self, expected: &str) -> ShapeError {
        ShapeError::at(
            &self.path,
            format!("invalid type: {}, expected {expected}", self.node.kind()),
        )
    }

    fn env_not(&self, expected: &str) -> ShapeError {
        ShapeError::at(
            &self.path,
            format!("the environment's value is not {expected} (value not shown)"),
        )
    }

    /// The node, leaving the reader able to record problems at its path.
    fn take_node(&mut self) -> Node {
        std::mem::replace(&mut self.node, Node::Nil)
    }

    fn table(&self, table: BTreeMap<String, Node>) -> TableAccess {
        TableAccess::new(table, self.path.clone(), self.problems.clone())
    }

    fn list(&self, items: Vec<Node>) -> ListAccess {
        ListAccess::new(items, self.path.clone(), self.problems.clone())
    }

    fn integer(&self) -> Result<i128, ShapeError> {
        match &self.node {
            Node::Int(n) => Ok(*n),
            Node::Env(s) => s
                .trim()
                .parse::<i64>()
                .map(i128::from)
                .map_err(|_| self.env_not("an integer")),
            _ => Err(self.wrong("an integer")),
        }
    }

    fn float(&self) -> Result<f64, ShapeError> {
        let value = match &self.node {
            Node::Float(f) => *f,
            // An integer is a number: `limit = 500` for a float field is fine.
            #[allow(clippy::cast_precision_loss)]
            Node::Int(n) => *n as f64,
            Node::Env(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| self.env_not("a number"))?,
            _ => return Err(self.wrong("a number")),
        };
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ShapeError::at(
                &self.path,
                "must be a finite number (nan and inf are not allowed)",
            ))
        }
    }
}

/// `daemon.max_concurent_rotations: unknown field; did you mean
/// "max_concurrent_rotations"?` A field name that looks like a key is not
/// shown, not even in the path.
fn unknown_field(table: &str, key: &str, fields: &[&str]) -> ShapeError {
    let shown = if may_quote(key) {
        key
    } else {
        "<field not shown>"
    };
    let message = match closest(key, fields) {
        Some(near) => format!("unknown field; did you mean {near:?}?"),
        None => format!("unknown field; expected one of {}", fields.join(", ")),
    };
    ShapeError::at(&child_path(table, shown), message)
}

/// The known field one or two edits away from `key`, if any: a typo, not
/// a different word. Of equals, the one of the same length wins (`modle` is
/// `model` swapped, not `mode` with a letter more), then the first.
fn closest<'a>(key: &str, fields: &[&'a str]) -> Option<&'a str> {
    let len = key.chars().count();
    fields
        .iter()
        .map(|field| (edit_distance(key, field), *field))
        .filter(|(distance, _)| *distance <= 2 && *distance < len)
        .min_by_key(|(distance, field)| (*distance, field.chars().count().abs_diff(len)))
        .map(|(_, field)| field)
}

/// Edit distance over characters (optimal string alignment): the fewest
/// insertions, deletions, substitutions and swaps of two neighbours that
/// turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

macro_rules! integer {
    ($($method:ident => $visit:ident: $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
            let n = self.integer().and_then(|n| <$t>::try_from(n).map_err(|_| {
                ShapeError::at(&self.path, format!("integer out of range ({} to {})", <$t>::MIN, <$t>::MAX))
            }));
            let n = n.unwrap_or_else(|e| self.passed_over(e, 0));
            visitor.$visit(n).map_err(|e: ShapeError| e.or_at(&self.path))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Strict {
    type Error = ShapeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let path = self.path.clone();
        match self.node {
            Node::Nil => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Int(n) => visitor.visit_i128(n),
            Node::Float(f) => visitor.visit_f64(f),
            Node::Text(s) | Node::Env(s) => visitor.visit_string(s),
            Node::Table(t) => visitor.visit_map(TableAccess::new(t, path.clone(), self.problems)),
            Node::List(l) => visitor.visit_seq(ListAccess::new(l, path.clone(), self.problems)),
        }
        .map_err(|e: ShapeError| e.or_at(&path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let b = match &self.node {
            Node::Bool(b) => *b,
            Node::Env(s) if s.trim().eq_ignore_ascii_case("true") => true,
            Node::Env(s) if s.trim().eq_ignore_ascii_case("false") => false,
            Node::Env(_) => self.passed_over(self.env_not("true or false"), false),
            _ => self.passed_over(self.wrong("a boolean"), false),
        };
        visitor
            .visit_bool(b)
            .map_err(|e: ShapeError| e.or_at(&self.path))
    }

    integer! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let f = self.float().unwrap_or_else(|e| self.passed_over(e, 0.0));
        visitor
            .visit_f64(f)
            .map_err(|e: ShapeError| e.or_at(&self.path))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let text = match &self.node {
            Node::Text(s) | Node::Env(s) if s.chars().count() > MAX_TEXT_LEN => {
                let long =
                    ShapeError::at(&self.path, format!("longer than {MAX_TEXT_LEN} characters"));
                self.passed_over(long, String::new())
            }
            Node::Text(s) | Node::Env(s) => s.clone(),
            _ => self.passed_over(self.wrong("a string"), String::new()),
        };
        visitor
            .visit_string(text)
            .map_err(|e: ShapeError| e.or_at(&self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ShapeError> {
        let path = self.path.clone();
        match self.node {
            Node::Nil => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e: ShapeError| e.or_at(&path))
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ShapeError> {
        let items = match self.take_node() {
            Node::List(items) => items,
            other => {
                self.node = other;
                self.passed_over(self.wrong("a list"), Vec::new())
            }
        };
        visitor
            .visit_seq(self.list(items))
            .map_err(|e: ShapeError| e.or_at(&self.path))
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, ShapeError> {
        let table = match self.take_node() {
            Node::Table(t) => t,
            other => {
                self.node = other;
                self.passed_over(self.wrong("a table"), BTreeMap::new())
            }
        };
        visitor
            .visit_map(self.table(table))
            .map_err(|e: ShapeError| e.or_at(&self.path))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ShapeError> {
        if let Node::Table(table) = &mut self.node {
            let table = std::mem::take(table);
            self.node = Node::Table(self.known_only(table, fields));
        }
        self.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct enum identifier ignored_any
    }
}

struct TableAccess {
    entries: std::collections::btree_map::IntoIter<String, Node>,
    pending: Option<(String, Node)>,
    path: String,
    problems: Problems,
}

impl TableAccess {
    fn new(table: BTreeMap<String, Node>, path: String, problems: Problems) -> Self {
        TableAccess {
            entries: table.into_iter(),
            pending: None,
            path,
            problems,
        }
    }
}

impl<'de> de::MapAccess<'de> for TableAccess {
    type Error = ShapeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ShapeError> {
        let Some((key, node)) = self.entries.next() else {
            return Ok(None);
        };
        let parsed = seed
            .deserialize(key.clone().into_deserializer())
            .map_err(|e: ShapeError| e.or_at(&self.path))?;
        self.pending = Some((key, node));
        Ok(Some(parsed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ShapeError> {
        let Some((key, node)) = self.pending.take() else {
            return Err(ShapeError::at(&self.path, "value without a key"));
        };
        let path = child_path(&self.path, &key);
        let problems = self.problems.clone();
        seed.deserialize(Strict {
            node,
            path,
            problems,
        })
    }
}

struct ListAccess {
    items: std::iter::Enumerate<std::vec::IntoIter<Node>>,
    path: String,
    problems: Problems,
}

impl ListAccess {
    fn new(items: Vec<Node>, path: String, problems: Problems) -> Self {
        ListAccess {
            items: items.into_iter().enumerate(),
            path,
            problems,
        }
    }
}

impl<'de> de::SeqAccess<'de> for ListAccess {
    type Error = ShapeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ShapeError> {
        let Some((i, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        let problems = self.problems.clone();
        seed.deserialize(Strict {
            node,
            path,
            problems,
        })
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawConfig;

    fn table(entries: &[(&str, Node)]) -> Node {
        Node::Table(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// The first problem only: each case below has one.
    fn daemon(field: &str, value: Node) -> Result<RawConfig, ShapeError> {
        from_node(table(&[("daemon", table(&[(field, value)]))])).map_err(|mut e| e.remove(0))
    }

    #[test]
    fn a_float_is_not_an_integer_and_a_boolean_is_not_a_string() {
        let err = daemon("max_concurrent_rotations", Node::Float(1.5)).unwrap_err();
        assert_eq!(err.path, "daemon.max_concurrent_rotations");
        assert_eq!(
            err.message,
            "invalid type: floating point number, expected an integer"
        );
        let err = daemon("state", Node::Bool(true)).unwrap_err();
        assert_eq!(
            (err.path.as_str(), err.message.as_str()),
            ("daemon.state", "invalid type: boolean, expected a string")
        );
    }

    #[test]
    fn environment_text_is_parsed_as_the_fields_type() {
        let ok = daemon("max_concurrent_rotations", Node::Env("4".into())).unwrap();
        assert_eq!(ok.daemon.unwrap().max_concurrent_rotations, Some(4));
        for bad in ["1.5", "four", "sk-or-v1-abc"] {
            let err = daemon("max_concurrent_rotations", Node::Env(bad.into())).unwrap_err();
            assert_eq!(err.path, "daemon.max_concurrent_rotations");
            assert!(!err.message.contains(bad), "{}", err.message);
        }
        let state = daemon("state", Node::Env("true".into())).unwrap();
        assert_eq!(state.daemon.unwrap().state.as_deref(), Some("true"));
    }

    #[test]
    fn nan_and_infinity_are_refused_for_floats_from_the_file_and_the_environment() {
        let key = |limit: Node| {
            table(&[(
                "policy",
                Node::List(vec![table(&[("key", table(&[("limit", limit)]))])]),
            )])
        };
        for bad in [
            Node::Float(f64::NAN),
            Node::Float(f64::INFINITY),
            Node::Env("nan".into()),
            Node::Env("-inf".into()),
        ] {
            let err = from_node::<RawConfig>(key(bad)).unwrap_err();
            assert_eq!(err.len(), 1);
            assert_eq!(err[0].path, "policy[0].key.limit");
        }
        let ok: RawConfig = from_node(key(Node::Int(500))).unwrap();
        assert_eq!(ok.policy[0].key.as_ref().unwrap().limit, Some(500.0));
    }

    #[test]
    fn an_unknown_field_is_reported_at_its_path_with_the_closest_known_field() {
        let err = daemon("max_concurent_rotations", Node::Int(1)).unwrap_err();
        assert_eq!(err.path, "daemon.max_concurent_rotations");
        assert_eq!(
            err.message,
            "unknown field; did you mean \"max_concurrent_rotations\"?"
        );
        let top = from_node::<RawConfig>(table(&[("bogus", Node::Nil)])).unwrap_err();
        assert_eq!(top[0].path, "bogus");
        assert_eq!(
            top[0].message,
            "unknown field; expected one of daemon, providers, stores, policy, notify"
        );
    }

    #[test]
    fn a_field_name_that_looks_like_a_key_is_not_shown() {
        let err = daemon("sk-or-v1-0123456789abcdef0123456789", Node::Int(1)).unwrap_err();
        assert_eq!(err.path, "daemon.<field not shown>");
    }

    #[test]
    fn every_problem_is_reported_in_one_read() {
        let doc = table(&[
            (
                "daemon",
                table(&[
                    ("stat", Node::Text("x".into())),
                    ("max_concurrent_rotations", Node::Bool(true)),
                ]),
            ),
            (
                "policy",
                Node::List(vec![table(&[
                    ("nmae", Node::Text("a".into())),
                    ("verify", table(&[("modle", Node::Text("x".into()))])),
                ])]),
            ),
            ("notify", Node::Int(3)),
        ]);
        let (raw, problems) = read::<RawConfig>(doc);
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "daemon.stat",
                "daemon.max_concurrent_rotations",
                "notify",
                "policy[0].nmae",
                "policy[0].verify.modle",
            ]
        );
        assert!(raw.is_some(), "the rest of the document is still read");
    }

    #[test]
    fn the_edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("modle", "model"), 1, "a swap is one edit");
        assert_eq!(edit_distance("max_concurent", "max_concurrent"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(closest("modle", &["mode", "model"]), Some("model"));
        assert_eq!(closest("mod", &["mode", "model"]), Some("mode"));
        assert_eq!(closest("schedul", &["schedule"]), Some("schedule"));
        assert_eq!(closest("colour", &["state", "name"]), None);
        assert_eq!(
            closest("a", &["api"]),
            None,
            "too short to be a typo of anything"
        );
    }

    #[test]
    fn an_integer_out_of_range_is_refused_not_wrapped() {
        let err = daemon("max_concurrent_rotations", Node::Int(i128::from(u64::MAX))).unwrap_err();
        assert!(err.message.contains("out of range"), "{}", err.message);
    }
}
