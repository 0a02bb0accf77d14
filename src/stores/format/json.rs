//! The `json` format: one string field of a top-level JSON object, spliced in
//! place. Re-serialising the document would respell numbers (`1.10`, integers
//! past `u64`), reorder keys and reflow whitespace that other tools own, so
//! only the bytes of the one field's value change.

use std::ops::Range;

use super::shape;
use crate::policy::Target;
use crate::stores::StoreError;

const NOT_OBJECT: &str = "current value is not a JSON object";

struct Member {
    name: String,
    key: Range<usize>,
    value: Range<usize>,
}

struct Object {
    open: usize,
    members: Vec<Member>,
}

/// The string value of `name`, `None` when absent, null or the document is empty.
pub(super) fn field(target: &Target, doc: &str, name: &str) -> Result<Option<String>, StoreError> {
    if doc.trim().is_empty() {
        return Ok(None);
    }
    let object = parse(target, doc)?;
    let Some(member) = object.members.iter().rev().find(|m| m.name == name) else {
        return Ok(None);
    };
    // The serde error would quote the offending value, so it is not passed on.
    serde_json::from_str::<Option<String>>(&doc[member.value.clone()])
        .map_err(|_| shape(target, &format!("field {name:?} is not a string")))
}

/// `doc` with `name` set to `key`: every member named `name` is replaced in
/// place, or one is appended in the document's own separator style.
pub(super) fn with_field(
    target: &Target,
    doc: &str,
    name: &str,
    key: &str,
) -> Result<String, StoreError> {
    if doc.trim().is_empty() {
        return Ok(format!(
            "{{{}:{}}}",
            quote(target, name)?,
            quote(target, key)?
        ));
    }
    let object = parse(target, doc)?;
    let matching: Vec<&Member> = object.members.iter().filter(|m| m.name == name).collect();
    if matching.is_empty() {
        return append(doc, &object, name, key, target);
    }
    let value = quote(target, key)?;
    let mut out = String::with_capacity(doc.len() + value.len());
    let mut at = 0;
    for m in matching {
        out.push_str(&doc[at..m.value.start]);
        out.push_str(&value);
        at = m.value.end;
    }
    out.push_str(&doc[at..]);
    Ok(out)
}

fn append(
    doc: &str,
    object: &Object,
    name: &str,
    key: &str,
    target: &Target,
) -> Result<String, StoreError> {
    let (name, key) = (quote(target, name)?, quote(target, key)?);
    let (at, text) = match object.members.as_slice() {
        [] => (object.open + 1, format!("{name}:{key}")),
        [.., last] => {
            // Copy the spacing the document already uses after `,` and `:`.
            let separator = match object.members.len() {
                1 => format!(",{}", &doc[object.open + 1..last.key.start]),
                n => doc[object.members[n - 2].value.end..last.key.start].to_string(),
            };
            let colon = &doc[last.key.end..last.value.start];
            (last.value.end, format!("{separator}{name}{colon}{key}"))
        }
    };
    Ok(format!("{}{text}{}", &doc[..at], &doc[at..]))
}

fn quote(target: &Target, s: &str) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|_| StoreError::Permanent {
        store: target.store.to_string(),
        message: format!(
            "secret {:?}: could not encode a JSON string",
            target.secret_id
        ),
    })
}

fn parse(target: &Target, doc: &str) -> Result<Object, StoreError> {
    // Validate with serde first, so the scanner below only ever sees valid JSON.
    serde_json::from_str::<serde::de::IgnoredAny>(doc)
        .ok()
        .and_then(|_| scan_object(doc.as_bytes()))
        .ok_or_else(|| shape(target, NOT_OBJECT))
}

fn scan_object(b: &[u8]) -> Option<Object> {
    let open = skip_ws(b, 0);
    if b.get(open) != Some(&b'{') {
        return None;
    }
    let mut object = Object {
        open,
        members: Vec::new(),
    };
    let mut i = skip_ws(b, open + 1);
    if b.get(i) == Some(&b'}') {
        return Some(object);
    }
    loop {
        let key = i..string_end(b, i)?;
        let name = serde_json::from_slice(&b[key.clone()]).ok()?;
        let colon = skip_ws(b, key.end);
        let start = skip_ws(b, colon + 1);
        let value = start..value_end(b, start)?;
        i = skip_ws(b, value.end);
        object.members.push(Member { name, key, value });
        match b.get(i)? {
            b',' => i = skip_ws(b, i + 1),
            b'}' => return Some(object),
            _ => return None,
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// One past the closing quote of the string starting at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => string_end(b, start),
        b'{' | b'[' => {
            let (mut depth, mut j) = (0usize, start);
            loop {
                match b.get(j)? {
                    b'"' => j = string_end(b, j)? - 1,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let len = b[start..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace());
            Some(start + len.unwrap_or(b.len() - start))
        }
    }
}
