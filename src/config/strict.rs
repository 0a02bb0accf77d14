//! Strict typing of the merged config document. The `config` crate reads
//! YAML and the `REKEY_*` environment, but its own deserializer coerces
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

use std::fmt;

use serde::de;

use super::validate::quoted;

mod reader;
mod suggest;
mod table;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(super) use reader::from_node;
pub(super) use reader::read;
pub(super) use table::Table;

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
    Table(Table),
    List(Vec<Node>),
}

impl Node {
    /// A value of the `config` crate as a tree.
    pub(super) fn from_config(value: config::Value) -> Node {
        use config::ValueKind as K;
        match value.kind {
            K::Nil => Node::Nil,
            K::Boolean(b) => Node::Bool(b),
            K::I64(n) => Node::Int(n.into()),
            K::I128(n) => Node::Int(n),
            K::U64(n) => Node::Int(n.into()),
            // Past i128: no field takes such a number; keep it an integer that fails the range check.
            K::U128(n) => Node::Int(i128::try_from(n).unwrap_or(i128::MAX)),
            K::Float(f) => Node::Float(f),
            K::String(s) => Node::Text(s),
            K::Table(table) => Node::Table(
                table
                    .into_iter()
                    .map(|(k, v)| (k, Node::from_config(v)))
                    .collect(),
            ),
            K::Array(items) => Node::List(items.into_iter().map(Node::from_config).collect()),
        }
    }

    /// The environment's layer: its text leaves are marked as coming from a variable.
    pub(super) fn into_env(self) -> Node {
        match self {
            Node::Text(s) => Node::Env(s),
            Node::Table(t) => Node::Table(t.into_iter().map(|(k, v)| (k, v.into_env())).collect()),
            Node::List(items) => Node::List(items.into_iter().map(Node::into_env).collect()),
            other => other,
        }
    }

    /// `over` laid over this tree: tables merge key by key, lists element
    /// by element; anything else replaces what is here (a table replaces a
    /// value that is not one), as the `config` crate layers them.
    pub(super) fn overlay(&mut self, over: Node) {
        match (self, over) {
            (Node::Table(here), Node::Table(over)) => {
                for (key, value) in over {
                    match here.get_mut(&key) {
                        Some(node) => node.overlay(value),
                        None => {
                            here.insert(key, value);
                        }
                    }
                }
            }
            // A variable indexing a list (`REKEY_POLICY[0]__MAX_AGE`) sets
            // that element: the environment's list holds it at its index,
            // with empty values before it.
            (Node::List(here), Node::List(over)) => {
                for (i, item) in over.into_iter().enumerate() {
                    match here.get_mut(i) {
                        Some(_) if item == Node::Nil => {}
                        Some(node) => node.overlay(item),
                        None => here.push(item),
                    }
                }
            }
            (here, over) => *here = over,
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
