//! A TOML text as the strict reader's tree, read straight from the `toml`
//! parser's tables, with the path of every date/time in it.
//!
//! The parser holds the whole document twice while it works (a token list,
//! ~14 bytes of it per byte of text, and its own tables): at 10,000
//! policies that was ~76 MiB on top of the tree. So a document laid out the
//! usual way (settings first, then one `[[policy]]` or `[[policy_set]]`
//! section after another) is parsed a section at a time, each section a
//! document of its own whose one element is appended to its list. A
//! section may only add to its own list: when one defines anything else,
//! when the settings already hold a `policy` or `policy_set` key, or when a
//! piece does not parse, the whole text is parsed at once instead, so the
//! result and every error message (its line and column) are the whole
//! document's.

use toml::de::{DeTable, DeValue};
use toml_parser::lexer::TokenKind;

use super::strict::Node;

/// A tree and the paths of its dates, or the parser's message.
type Read = Result<(Node, Vec<String>), String>;

/// The lists whose sections are read one at a time.
const LISTS: [&str; 2] = ["policy", "policy_set"];

/// The tree of `text` and the paths of its dates. No field takes a date,
/// so each is reported as a wrong type; the tree holds it as text, so
/// nothing else reports it again.
pub(super) fn toml_tree(text: &str) -> Read {
    match by_sections(text) {
        Some(read) => Ok(read),
        None => whole(text),
    }
}

fn whole(text: &str) -> Read {
    let doc = DeTable::parse(text).map_err(|e| e.to_string())?;
    let mut datetimes = Vec::new();
    let tree = table_node(doc.into_inner(), "", &mut datetimes)?;
    Ok((tree, datetimes))
}

/// The document read a section at a time, or `None` when it must be read whole.
fn by_sections(text: &str) -> Option<(Node, Vec<String>)> {
    let starts = section_starts(text);
    let first = starts.first()?.0;
    // (top-level key, path) of each date: ordered by key at the end, as the
    // whole parse walks its (sorted) tables.
    let mut dates: Vec<(String, String)> = Vec::new();
    let mut entries = Vec::new();
    for (key, value) in DeTable::parse(&text[..first]).ok()?.into_inner() {
        let key = key.into_inner().into_owned();
        let mut found = Vec::new();
        let node = value_node(value.into_inner(), key.clone(), &mut found).ok()?;
        dates.extend(found.into_iter().map(|path| (key.clone(), path)));
        entries.push((key, node));
    }
    let mut tree = Node::Table(entries.into_iter().collect());
    let Node::Table(top) = &mut tree else {
        return None;
    };
    if LISTS.iter().any(|list| top.contains_key(list)) {
        return None;
    }
    let ends = starts.iter().skip(1).map(|(at, _)| *at).chain([text.len()]);
    for ((start, list), end) in starts.iter().zip(ends) {
        let section = DeTable::parse(&text[*start..end]).ok()?.into_inner();
        if section.len() != 1 {
            return None;
        }
        let (key, value) = section.into_iter().next()?;
        let (DeValue::Array(items), true) = (value.into_inner(), key.get_ref() == list) else {
            return None;
        };
        let Node::List(nodes) = top.or_insert_with(list, || Node::List(Vec::new())) else {
            return None;
        };
        for item in items {
            let path = format!("{list}[{}]", nodes.len());
            let mut found = Vec::new();
            nodes.push(value_node(item.into_inner(), path, &mut found).ok()?);
            dates.extend(found.into_iter().map(|path| (list.to_string(), path)));
        }
    }
    dates.sort_by(|a, b| a.0.cmp(&b.0));
    Some((tree, dates.into_iter().map(|(_, path)| path).collect()))
}

/// Where each `[[policy]]` or `[[policy_set]]` header line starts, by a
/// pass of the lexer (no token list is kept): a `[` first on its line and
/// outside any array or inline table begins a header.
fn section_starts(text: &str) -> Vec<(usize, &'static str)> {
    let mut starts = Vec::new();
    let mut depth = 0usize;
    let mut line_start = true;
    let mut in_header = false;
    for token in toml_parser::Source::new(text).lex() {
        let kind = token.kind();
        if in_header {
            in_header = kind != TokenKind::Newline;
            line_start = !in_header;
            continue;
        }
        match kind {
            TokenKind::Newline => line_start = true,
            TokenKind::Whitespace | TokenKind::Comment => {}
            TokenKind::LeftSquareBracket if depth == 0 && line_start => {
                let at = token.span().start();
                if let Some(list) = header_list(&text[at..]) {
                    starts.push((at, list));
                }
                in_header = true;
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => {
                depth += 1;
                line_start = false;
            }
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.saturating_sub(1);
                line_start = false;
            }
            _ => line_start = false,
        }
    }
    starts
}

/// `[[policy]]` → `policy` (spaces inside the brackets allowed); any
/// other header is `None`.
fn header_list(line: &str) -> Option<&'static str> {
    let inner = line.strip_prefix("[[")?;
    let key = inner[..inner.find("]]")?].trim();
    LISTS.into_iter().find(|list| *list == key)
}

fn table_node(table: DeTable<'_>, path: &str, datetimes: &mut Vec<String>) -> Result<Node, String> {
    let mut nodes = Vec::new();
    for (key, value) in table {
        let key = key.into_inner().into_owned();
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let node = value_node(value.into_inner(), here, datetimes)?;
        nodes.push((key, node));
    }
    Ok(Node::Table(nodes.into_iter().collect()))
}

fn value_node(
    value: DeValue<'_>,
    path: String,
    datetimes: &mut Vec<String>,
) -> Result<Node, String> {
    Ok(match value {
        DeValue::String(s) => Node::Text(s.into_owned()),
        DeValue::Boolean(b) => Node::Bool(b),
        // Past i128 no field takes it either: an integer that fails the range check.
        DeValue::Integer(n) => Node::Int(i128::from_str_radix(n.as_str(), n.radix()).unwrap_or(
            if n.as_str().starts_with('-') {
                i128::MIN
            } else {
                i128::MAX
            },
        )),
        DeValue::Float(f) => {
            let float: f64 = f
                .as_str()
                .parse()
                .map_err(|_| format!("{path}: not a valid floating point number"))?;
            if float.is_infinite() && !f.as_str().contains("inf") {
                return Err(format!("{path}: floating-point number overflowed"));
            }
            Node::Float(float)
        }
        DeValue::Datetime(datetime) => {
            let text = datetime.to_string();
            datetimes.push(path);
            Node::Text(text)
        }
        DeValue::Array(items) => {
            let mut nodes = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                nodes.push(value_node(
                    item.into_inner(),
                    format!("{path}[{i}]"),
                    datetimes,
                )?);
            }
            Node::List(nodes)
        }
        DeValue::Table(table) => table_node(table, &path, datetimes)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as the whole-document parse gives it, and as read here.
    fn both(text: &str) -> (Read, Read) {
        (whole(text), toml_tree(text))
    }

    #[test]
    fn sections_read_one_at_a_time_make_the_whole_documents_tree() {
        let text = "[daemon]\nstate = \"file:/s\" # [[policy]]\nlist = [\n[1, 2],\n]\n\n\
                    [[policy]]\nname = \"a\"\nat = 2026-01-01\n[policy.verify]\nmodel = \"m\"\n\n\
                    [[policy_set]]\nname = \"s\"\n[[ policy ]]\nname = \"\"\"\n[[policy]]\n\"\"\"\n\
                    [[policy]]\nname = \"c\"\n";
        assert_eq!(
            section_starts(text)
                .iter()
                .map(|(_, l)| *l)
                .collect::<Vec<_>>(),
            ["policy", "policy_set", "policy", "policy"],
            "headers inside comments, strings and arrays are not sections"
        );
        let (whole, read) = both(text);
        let (tree, datetimes) = read.unwrap();
        assert_eq!((tree.clone(), datetimes.clone()), whole.unwrap());
        assert_eq!(datetimes, ["policy[0].at"]);
        let Node::Table(top) = tree else { panic!() };
        let Some(Node::List(policies)) = top.get("policy") else {
            panic!()
        };
        assert_eq!(policies.len(), 3);
    }

    #[test]
    fn dates_come_in_the_whole_documents_order() {
        for text in [
            "[stores.f]\ndir = 2026-01-01\n[[policy]]\nname = 2026-01-02\n",
            "[[policy_set]]\nname = 2026-01-01\n[[policy]]\nname = 2026-01-02\n",
            "a = 2026-01-03\n[[policy]]\nx = 2026-01-04\n[[policy]]\ny = 2026-01-05\n",
        ] {
            assert!(by_sections(text).is_some(), "read by sections: {text}");
            let (whole, read) = both(text);
            assert_eq!(read, whole, "{text}");
        }
    }

    #[test]
    fn a_document_sections_cannot_read_alone_is_read_whole() {
        for text in [
            // A section that defines a table of its own.
            "[[policy]]\nname = \"a\"\n[daemon]\nstate = \"x\"\n[[policy]]\nname = \"b\"\n",
            // A list the settings already hold.
            "policy = [{ name = \"a\" }]\n[[policy]]\nname = \"b\"\n",
            // A duplicate key inside a section: the error names the document's line.
            "[daemon]\n[[policy]]\nname = \"a\"\n[[policy]]\nname = \"b\"\nname = \"c\"\n",
        ] {
            let (whole, read) = both(text);
            assert_eq!(read, whole, "{text}");
        }
        let err = toml_tree(
            "[daemon]\n[[policy]]\nname = \"a\"\n[[policy]]\nname = \"b\"\nname = \"c\"\n",
        )
        .unwrap_err();
        assert!(err.contains("line 6"), "{err}");
    }

    #[test]
    fn every_toml_date_is_found_with_its_path() {
        let text =
            "[daemon]\nstate = \"file:/s\"\n[[policy]]\nname = 2026-01-01\nschedule = 01:02:03\n";
        let (tree, datetimes) = toml_tree(text).unwrap();
        assert_eq!(datetimes, ["policy[0].name", "policy[0].schedule"]);
        let Node::Table(top) = tree else {
            panic!("{tree:?}")
        };
        let Some(Node::List(policies)) = top.get("policy") else {
            panic!("{top:?}")
        };
        let Node::Table(policy) = &policies[0] else {
            panic!("{policies:?}")
        };
        assert_eq!(policy.get("name"), Some(&Node::Text("2026-01-01".into())));
        assert!(toml_tree("a = \"2026-01-01\"\n").unwrap().1.is_empty());
    }
}
