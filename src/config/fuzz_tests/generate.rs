//! The fuzz's documents: a valid base document, setting a field in it, and
//! emitters for TOML and YAML (with their escaping, so every case is a
//! well-formed document and reaches the loader's checks). What goes into
//! the fields is `hostile`'s.

use rand::Rng;
use rand::rngs::StdRng;

/// A generated value, emitted as TOML or YAML.
#[derive(Debug, Clone)]
pub(super) enum G {
    S(String),
    I(i64),
    F(f64),
    B(bool),
    L(Vec<G>),
    T(Vec<(String, G)>),
}

fn s(text: &str) -> G {
    G::S(text.to_string())
}

fn t(entries: &[(&str, G)]) -> G {
    G::T(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

pub(super) fn base() -> G {
    let policy = |name: &str, target: G| {
        t(&[
            ("name", s(name)),
            ("provider", s("or")),
            // No schedule in the base: sampling its intervals for the grace
            // check costs milliseconds per case in debug; the fuzz sets one
            // in some cases.
            ("max_age", s("35d")),
            (
                "key",
                t(&[
                    ("name", s("{policy}-{rotation}")),
                    ("limit", G::F(50.0)),
                    ("expires_after", s("60d")),
                ]),
            ),
            ("target", target),
            ("verify", t(&[("timeout", s("2m"))])),
            ("revoke", t(&[("grace", s("1h")), ("mode", s("delete"))])),
            ("notify", G::L(vec![s("n")])),
        ])
    };
    t(&[
        (
            "daemon",
            t(&[
                ("state", s("file:/var/lib/rekey")),
                ("max_concurrent_rotations", G::I(8)),
                ("catch_up_jitter", s("30s")),
                ("failure_backoff", t(&[("min", s("5m")), ("max", s("1d"))])),
            ]),
        ),
        (
            "providers",
            t(&[(
                "or",
                t(&[
                    ("kind", s("openrouter")),
                    ("management_key", s("env:OR_KEY")),
                    ("request_timeout", s("30s")),
                ]),
            )]),
        ),
        (
            "stores",
            t(&[
                (
                    "aws",
                    t(&[
                        ("kind", s("aws-secrets-manager")),
                        ("region", s("us-east-1")),
                    ]),
                ),
                (
                    "local",
                    t(&[("kind", s("file")), ("dir", s("/srv/secrets"))]),
                ),
            ]),
        ),
        (
            "notify",
            t(&[("n", t(&[("url", s("env:HOOK")), ("retries", G::I(3))]))]),
        ),
        (
            "policy",
            G::L(vec![
                policy(
                    "a",
                    t(&[
                        ("store", s("aws")),
                        ("secret_id", s("prod/llm")),
                        ("format", s("json")),
                        ("field", s("KEY")),
                    ]),
                ),
                policy(
                    "b",
                    t(&[
                        ("store", s("local")),
                        ("secret_id", s("llm")),
                        ("create", G::B(true)),
                    ]),
                ),
            ]),
        ),
        (
            "policy_set",
            G::L(vec![t(&[
                ("name", s("t-{member}")),
                ("members", G::L(vec![s("acme"), s("globex")])),
                ("on_remove", s("revoke")),
                ("provider", s("or")),
                ("max_age", s("35d")),
                ("key", t(&[("name", s("t-{member}-{rotation}"))])),
                (
                    "target",
                    t(&[("store", s("aws")), ("secret_id", s("t/{member}"))]),
                ),
            ])]),
        ),
    ])
}

/// Sets `path` (dotted; `#` = a random element) to `value`, creating tables on the way.
pub(super) fn set(doc: &mut G, path: &[&str], value: G, rng: &mut StdRng) {
    let Some((head, rest)) = path.split_first() else {
        *doc = value;
        return;
    };
    match doc {
        G::L(items) if *head == "#" && !items.is_empty() => {
            let i = rng.random_range(0..items.len());
            set(&mut items[i], rest, value, rng);
        }
        G::T(entries) => match entries.iter().position(|(k, _)| k == head) {
            Some(i) => set(&mut entries[i].1, rest, value, rng),
            None => {
                let mut fresh = G::T(Vec::new());
                set(&mut fresh, rest, value, rng);
                entries.push((head.to_string(), fresh));
            }
        },
        // A scalar or list on the way: replaced by a table holding the rest.
        other => {
            let mut fresh = G::T(Vec::new());
            set(&mut fresh, path, value, rng);
            *other = fresh;
        }
    }
}

fn escape(text: &str, yaml: bool) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || (yaml && !c.is_ascii()) => {
                let n = u32::from(c);
                if n > 0xFFFF {
                    out.push_str(&format!("\\U{n:08X}"));
                } else {
                    out.push_str(&format!("\\u{n:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn emit(value: &G, yaml: bool) -> String {
    match value {
        G::S(text) => escape(text, yaml),
        G::I(n) => n.to_string(),
        G::F(f) if f.is_nan() => (if yaml { ".nan" } else { "nan" }).to_string(),
        G::F(f) if f.is_infinite() => {
            let sign = if *f < 0.0 { "-" } else { "" };
            format!("{sign}{}", if yaml { ".inf" } else { "inf" })
        }
        G::F(f) => format!("{f:?}"),
        G::B(b) => b.to_string(),
        G::L(items) => {
            let items: Vec<String> = items.iter().map(|v| emit(v, yaml)).collect();
            format!("[{}]", items.join(", "))
        }
        G::T(entries) => {
            let sep = if yaml { ": " } else { " = " };
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}{sep}{}", escape(k, yaml), emit(v, yaml)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

pub(super) fn document(doc: &G, yaml: bool) -> String {
    match doc {
        G::T(entries) if !yaml => entries
            .iter()
            .map(|(k, v)| format!("{} = {}\n", escape(k, false), emit(v, false)))
            .collect(),
        other => emit(other, yaml) + "\n",
    }
}
