//! The fuzz's generator: a valid base document, the fields to spoil, hostile
//! values, and emitters for TOML and YAML (with their escaping, so every
//! case is a well-formed document and reaches the loader's checks).

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
    ])
}

/// Every field a config can set, as a path from the root.
pub(super) const FIELDS: &[&str] = &[
    "daemon.state",
    "daemon.admin_listen",
    "daemon.max_concurrent_rotations",
    "daemon.failure_backoff.min",
    "daemon.failure_backoff.max",
    "daemon.catch_up_jitter",
    "daemon.audit_log",
    "daemon.admin_token",
    "daemon.shutdown_timeout",
    "providers.or.kind",
    "providers.or.management_key",
    "providers.or.base_url",
    "providers.or.request_timeout",
    "providers.or.api",
    "providers.or.keys_path",
    "providers.or.workspace_id",
    "stores.aws.kind",
    "stores.aws.region",
    "stores.aws.endpoint_url",
    "stores.local.kind",
    "stores.local.dir",
    "notify.n.format",
    "notify.n.url",
    "notify.n.timeout",
    "notify.n.retries",
    "notify.n.on",
    "policy.#.name",
    "policy.#.provider",
    "policy.#.schedule",
    "policy.#.timezone",
    "policy.#.max_age",
    "policy.#.key.name",
    "policy.#.key.limit",
    "policy.#.key.limit_reset",
    "policy.#.key.include_byok_in_limit",
    "policy.#.key.expires_after",
    "policy.#.key.allowed_providers",
    "policy.#.key.max_budget",
    "policy.#.key.budget_duration",
    "policy.#.target.store",
    "policy.#.target.secret_id",
    "policy.#.target.format",
    "policy.#.target.field",
    "policy.#.target.create",
    "policy.#.verify.mode",
    "policy.#.verify.model",
    "policy.#.verify.timeout",
    "policy.#.verify.base_url",
    "policy.#.revoke.grace",
    "policy.#.revoke.mode",
    "policy.#.adopt.key_id",
    "policy.#.project_id",
    "policy.#.notify",
    "policy.#.modle",
    "daemon.bogus",
    "policy",
    "daemon",
];

/// Environment overrides a hostile operator environment might set.
pub(super) const ENV_VARS: &[&str] = &[
    "REKEY_DAEMON__MAX_CONCURRENT_ROTATIONS",
    "REKEY_DAEMON__CATCH_UP_JITTER",
    "REKEY_DAEMON__STATE",
    "REKEY_DAEMON__ADMIN_LISTEN",
    "REKEY_PROVIDERS__OR__BASE_URL",
    "REKEY_PROVIDERS__OR__REQUEST_TIMEOUT",
    "REKEY_STORES__AWS__ENDPOINT_URL",
    "REKEY_NOTIFY__N__RETRIES",
    "REKEY_DAEMON__BOGUS",
];

pub(super) fn planted_key(rng: &mut StdRng) -> String {
    let hex: String = (0..64)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect();
    format!("sk-or-v1-{hex}")
}

pub(super) fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Text an operator (or an attacker with a foot in the config) might write.
pub(super) fn hostile_text(rng: &mut StdRng, key: &str) -> String {
    match rng.random_range(0..9) {
        0 => key.to_string(),
        1 => {
            let wraps = [
                "5{}",
                "{}s",
                "env:{}",
                "file:{}",
                "aws-sm:{}#",
                "http://[{}",
                "0 3 * * {}",
                "{{{}}}-{rotation}",
                "{}/x",
                "1h {}",
            ];
            pick(rng, &wraps).replace("{}", key)
        }
        2 => pick(
            rng,
            &[
                "300000y",
                "18446744073709551615s",
                "99999999999999999999d",
                "0s",
                "-1s",
                "1ns",
                "90d 1s",
                "3651d",
                "25h",
                "31d",
                "2h",
                "1h 1s",
                "",
                " ",
                "soon",
            ],
        )
        .to_string(),
        3 => pick(
            rng,
            &[
                "../../etc/passwd",
                ".",
                "..",
                "x.pending",
                "x.previous",
                "x.versions.json",
                "/etc/passwd",
                "a//b",
                "a/./b",
                "a/",
                ".x.tmp-1",
                "a\u{0}b",
                "a\nb",
                "dir.pending/x",
            ],
        )
        .to_string(),
        4 => pick(
            rng,
            &[
                "ünïcødé",
                "日本語のポリシー",
                "\u{202e}evil",
                "e\u{301}",
                "🔑🔑",
                "\u{feff}x",
                "\t",
                "Europe/Berlin",
                "UTC",
            ],
        )
        .to_string(),
        5 => "a".repeat(rng.random_range(60..3000)),
        6 => pick(
            rng,
            &[
                "http://[::1",
                "ftp://x",
                "https://u:p@h",
                "https://h/?q",
                "http://",
                "gw",
                "https://ok.example/v1",
                "localhost:5000",
            ],
        )
        .to_string(),
        7 => pick(
            rng,
            &[
                "openrouter",
                "arouter",
                "openai",
                "litellm",
                "anthropic",
                "file",
                "aws-secrets-manager",
                "json",
                "env",
                "raw",
                "chat",
                "key-info",
                "models",
                "delete",
                "disable",
                "archive",
                "daily",
                "monthly",
                "slack",
                "failure",
                "guide",
                "reference",
            ],
        )
        .to_string(),
        _ => pick(
            rng,
            &[
                "1h",
                "30d",
                "2m",
                "0 3 * * *",
                "*/5 * * * * *",
                "61 * * * *",
            ],
        )
        .to_string(),
    }
}

pub(super) fn hostile_value(rng: &mut StdRng, key: &str, depth: usize) -> G {
    match rng.random_range(0..12) {
        0..=4 => G::S(hostile_text(rng, key)),
        5 => G::I([0, -1, 1, 1025, 10, 11, i64::MAX, i64::MIN][rng.random_range(0..8)]),
        6 => G::F(
            [
                1.5,
                -0.0,
                1e300,
                -1.0,
                1e12,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ][rng.random_range(0..8)],
        ),
        7 => G::B(rng.random()),
        8 if depth < 3 => G::L(
            (0..rng.random_range(0..4))
                .map(|_| hostile_value(rng, key, depth + 1))
                .collect(),
        ),
        9 if depth < 3 => G::T(
            (0..rng.random_range(0..4))
                .map(|_| {
                    let name = pick(rng, &["name", "kind", "grace", "modle", "x", "0"]);
                    (name.to_string(), hostile_value(rng, key, depth + 1))
                })
                .collect(),
        ),
        10 => {
            let mut deep = G::S(key.to_string());
            for _ in 0..rng.random_range(10..100) {
                deep = G::L(vec![deep]);
            }
            deep
        }
        _ => G::S(hostile_text(rng, key)),
    }
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

/// A document that does not parse, or whose root is not a table, with the
/// key where a parser might quote it.
pub(super) fn broken_text(rng: &mut StdRng, key: &str, yaml: bool) -> String {
    let toml = [
        "[daemon]\nstate = {}\n",
        "[daemon]\nstate = \"{}\n",
        "{} = 1\n",
        "[daemon]\nstate = '{}' x\n",
        "[{}\n",
        "daemon = { state = {} }\n",
        "a = \"\\{}\"\n",
        "[daemon]\nstate = \"a\"\nstate = \"{}\"\n",
    ];
    let yaml_templates = [
        "{}\n",
        "daemon: [{}\n",
        "daemon:\n  state: \"{}\n",
        "? [{}]\n: 1\n",
        "daemon: {state: {}\n",
        "- {}\n",
        "daemon:\n\tstate: {}\n",
        "daemon: !!int {}\n",
        "&{} a: 1\n",
        "daemon:\n  state: a\n  state: {}\n",
    ];
    let templates: &[&str] = if yaml { &yaml_templates } else { &toml };
    pick(rng, templates).replace("{}", key)
}
