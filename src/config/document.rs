//! Checks on the config text before any parser builds a tree from it: its
//! size, and for YAML, anchors/aliases and nesting depth. A YAML loader
//! expands every alias into a copy, so a few hundred bytes of nested aliases
//! ("billion laughs") become gigabytes; and the tree conversion behind the
//! `config` crate recurses once per nesting level. Both are refused here,
//! from the parser's event stream, before anything is expanded.

use std::io::Read;
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};

use super::bounds::{MAX_CONFIG_BYTES, MAX_NESTING};

/// The syntax of a config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Toml,
    Yaml,
}

impl SourceFormat {
    /// By extension: `.toml`, `.yaml` or `.yml`.
    pub fn from_path(path: &Path) -> Option<SourceFormat> {
        match path.extension()?.to_str()? {
            "toml" => Some(SourceFormat::Toml),
            "yaml" | "yml" => Some(SourceFormat::Yaml),
            _ => None,
        }
    }

    pub(super) fn file_format(self) -> config::FileFormat {
        match self {
            SourceFormat::Toml => config::FileFormat::Toml,
            SourceFormat::Yaml => config::FileFormat::Yaml,
        }
    }
}

/// Reads `path`, refusing a file past [`MAX_CONFIG_BYTES`] without reading it all.
pub(super) fn read_bounded(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if file.metadata().is_ok_and(|m| m.len() > MAX_CONFIG_BYTES) {
        return Err(too_big());
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    check_size(&text)?;
    Ok(text)
}

fn check_size(text: &str) -> Result<(), String> {
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big());
    }
    Ok(())
}

fn too_big() -> String {
    format!(
        "the file is larger than {} MiB; a config is never that big",
        MAX_CONFIG_BYTES >> 20
    )
}

/// Size for every format; anchors, aliases and depth for YAML. A syntax
/// error is left to the real parse, which reports it with its position.
pub(super) fn check(text: &str, format: SourceFormat) -> Result<(), String> {
    check_size(text)?;
    match format {
        SourceFormat::Toml => Ok(()),
        SourceFormat::Yaml => check_yaml(text),
    }
}

fn check_yaml(text: &str) -> Result<(), String> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        let Ok((event, mark)) = parser.next_token() else {
            return Ok(());
        };
        let at = || format!("line {}, column {}", mark.line(), mark.col() + 1);
        let anchored = match event {
            Event::StreamEnd => return Ok(()),
            Event::Alias(_) => {
                return Err(format!(
                    "{}: YAML aliases (*name) are not supported; write the value out",
                    at()
                ));
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "{}: nested deeper than {MAX_NESTING} levels; a config is never that deep",
                        at()
                    ));
                }
                anchor > 0
            }
            Event::SequenceEnd | Event::MappingEnd => {
                depth = depth.saturating_sub(1);
                false
            }
            Event::Scalar(_, _, anchor, _) => anchor > 0,
            _ => false,
        };
        if anchored {
            return Err(format!(
                "{}: YAML anchors (&name) are not supported; write the value out",
                at()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_billion_laughs_document_is_refused_before_it_is_expanded() {
        let mut bomb = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let err = check(&bomb, SourceFormat::Yaml).unwrap_err();
        assert!(err.starts_with("line 1, column 7: YAML anchors"), "{err}");
    }

    #[test]
    fn an_alias_alone_is_refused_with_its_position() {
        let text = "daemon:\n  state: file:/s\nother: [*x]\n";
        let err = check(text, SourceFormat::Yaml);
        assert_eq!(
            err,
            Ok(()),
            "an unknown anchor is the parser's syntax error"
        );
        let text = "x: !!str &x a\nother: *x\n";
        let err = check(text, SourceFormat::Yaml).unwrap_err();
        assert!(err.starts_with("line 1, column 13: YAML anchors"), "{err}");
    }

    #[test]
    fn ampersands_and_stars_inside_strings_are_values_not_anchors() {
        let text = "daemon:\n  state: \"file:/s&a\"\n  admin_listen: '*b'\nx: a&b*c\n";
        assert_eq!(check(text, SourceFormat::Yaml), Ok(()));
    }

    #[test]
    fn deep_nesting_is_refused_in_yaml() {
        let deep = "[".repeat(40) + &"]".repeat(40);
        let err = check(&deep, SourceFormat::Yaml).unwrap_err();
        assert!(err.contains("nested deeper than"), "{err}");
        let fine = "a: [[[1]]]\n";
        assert_eq!(check(fine, SourceFormat::Yaml), Ok(()));
    }

    #[test]
    fn a_file_past_the_size_bound_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.toml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let err = read_bounded(&path).unwrap_err();
        assert!(err.contains("larger than 16 MiB"), "{err}");
    }
}
