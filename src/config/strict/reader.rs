//! The strict serde deserializer over a [`Node`]: each field gets exactly
//! the type it declares, and every problem is recorded with its field path
//! while the reading goes on (see the parent module).

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::suggest::closest;
use super::{Node, ShapeError, Table};
use crate::config::bounds::MAX_TEXT_LEN;
use crate::config::validate::may_quote;

/// Reads `node` into `T` strictly; every error names its field path.
#[cfg(test)]
pub(in crate::config) fn from_node<T: de::DeserializeOwned>(
    node: Node,
) -> Result<T, Vec<ShapeError>> {
    match read(node) {
        (Some(value), problems) if problems.is_empty() => Ok(value),
        (_, problems) => Err(problems),
    }
}

/// Reads `node` into `T`, going on past each problem: the value read (absent
/// only if a problem could not be passed over) and every problem found.
pub(in crate::config) fn read<T: de::DeserializeOwned>(node: Node) -> (Option<T>, Vec<ShapeError>) {
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
    fn known_only(&self, table: Table, fields: &[&str]) -> Table {
        let mut known = Vec::with_capacity(table.len());
        for (key, node) in table {
            if fields.contains(&key.as_str()) {
                known.push((key, node));
            } else {
                self.problems.push(unknown_field(&self.path, &key, fields));
            }
        }
        known.into_iter().collect()
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

    fn table(&self, table: Table) -> TableAccess {
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
                self.passed_over(self.wrong("a table"), Table::default())
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
    entries: std::vec::IntoIter<(String, Node)>,
    pending: Option<(String, Node)>,
    path: String,
    problems: Problems,
}

impl TableAccess {
    fn new(table: Table, path: String, problems: Problems) -> Self {
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
