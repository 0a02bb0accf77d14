//! A seeded config fuzz: a valid TOML or YAML document with one to four
//! fields replaced by hostile values (wrong types, extreme numbers and
//! durations, a key pasted in, path tricks, unicode, deep nesting, unknown
//! fields) and sometimes a hostile `REKEY_*` override, loaded in-process.
//! Every case must end in a config or a refusal, never a panic; every
//! refusal names a field path (or, for a document refused whole, a line);
//! no part of the planted key ever appears in a message; and whatever is
//! accepted is inside the documented bounds.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::bounds::{
    MAX_AGE, MAX_CATCH_UP_JITTER, MAX_EXPIRES_AFTER, MAX_FAILURE_BACKOFF, MAX_GRACE,
    MAX_SHUTDOWN_TIMEOUT, MAX_VERIFY_TIMEOUT,
};
use super::load::{SourceFormat, load_str_with_env};
use super::{Config, ConfigError};

const CASES: usize = 1024;
const SEED: u64 = 0x5EED_C0F1_6000_0008;

/// A generated value, emitted as TOML or YAML.
#[derive(Debug, Clone)]
enum G {
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

fn base() -> G {
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
const FIELDS: &[&str] = &[
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
const ENV_VARS: &[&str] = &[
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

fn planted_key(rng: &mut StdRng) -> String {
    let hex: String = (0..64)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect();
    format!("sk-or-v1-{hex}")
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Text an operator (or an attacker with a foot in the config) might write.
fn hostile_text(rng: &mut StdRng, key: &str) -> String {
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

fn hostile_value(rng: &mut StdRng, key: &str, depth: usize) -> G {
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
fn set(doc: &mut G, path: &[&str], value: G, rng: &mut StdRng) {
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

fn document(doc: &G, yaml: bool) -> String {
    match doc {
        G::T(entries) if !yaml => entries
            .iter()
            .map(|(k, v)| format!("{} = {}\n", escape(k, false), emit(v, false)))
            .collect(),
        other => emit(other, yaml) + "\n",
    }
}

/// Why a case failed, or `None` when it behaved.
fn judge(outcome: &Result<Config, ConfigError>, key: &str) -> Option<String> {
    let text = match outcome {
        Ok(config) => return out_of_bounds(config),
        Err(e) => e.to_string(),
    };
    if let Some(piece) = (0..=key.len() - 12)
        .map(|i| &key[i..i + 12])
        .find(|piece| text.contains(piece))
    {
        return Some(format!("the key leaked ({piece}): {text}"));
    }
    match outcome {
        Err(ConfigError::Invalid { problems, .. }) => problems
            .iter()
            .find(|p| !names_a_field(&p.path) || p.message.trim().is_empty())
            .map(|p| format!("a problem without a field path: {p}")),
        Err(ConfigError::Read { message, .. }) => {
            let positioned = message.contains("line ");
            let fixed = message.starts_with("a number is not finite")
                || message.starts_with("a mapping key is not");
            (!positioned && !fixed).then(|| format!("a refusal without a position: {message}"))
        }
        Ok(_) => None,
    }
}

fn names_a_field(path: &str) -> bool {
    let roots = [
        "daemon",
        "providers.",
        "stores.",
        "notify.",
        "policy",
        "(top level)",
    ];
    roots.iter().any(|r| path.starts_with(r))
}

/// Whatever is accepted stays inside the documented bounds, so engine
/// arithmetic on it cannot overflow.
fn out_of_bounds(config: &Config) -> Option<String> {
    let d = &config.daemon;
    let daemon_ok = d.catch_up_jitter <= MAX_CATCH_UP_JITTER
        && d.shutdown_timeout <= MAX_SHUTDOWN_TIMEOUT
        && d.failure_backoff.max <= MAX_FAILURE_BACKOFF
        && (1..=1024).contains(&d.max_concurrent_rotations);
    let policy_ok = config.policies.iter().all(|p| {
        p.revoke.grace <= MAX_GRACE
            && p.max_age.is_none_or(|a| a <= MAX_AGE)
            && p.verify.timeout <= MAX_VERIFY_TIMEOUT
            && p.key.expires_after.is_none_or(|e| e <= MAX_EXPIRES_AFTER)
            && p.key.limit.is_none_or(f64::is_finite)
    });
    (!(daemon_ok && policy_ok)).then(|| "an accepted config is out of bounds".to_string())
}

#[test]
fn a_thousand_hostile_configs_are_refused_by_field_never_panic_and_never_echo_a_key() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut accepted, mut refused, mut failures) = (0, 0, Vec::new());
    for case in 0..CASES {
        let key = planted_key(&mut rng);
        let yaml = case % 2 == 1;
        let mut doc = base();
        for _ in 0..rng.random_range(0..=4) {
            let field = pick(&mut rng, FIELDS);
            let path: Vec<&str> = field.split('.').collect();
            let value = hostile_value(&mut rng, &key, 0);
            set(&mut doc, &path, value, &mut rng);
        }
        let env: Vec<(String, String)> = if rng.random_range(0..4) == 0 {
            let var = pick(&mut rng, ENV_VARS).to_string();
            vec![(var, hostile_text(&mut rng, &key))]
        } else {
            Vec::new()
        };
        let text = document(&doc, yaml);
        let format = if yaml {
            SourceFormat::Yaml
        } else {
            SourceFormat::Toml
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            load_str_with_env(&text, format, Path::new("/etc/rekey"), env.clone())
        }));
        let verdict = match &outcome {
            Err(_) => Some("panicked".to_string()),
            Ok(result) => {
                if result.is_ok() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                judge(result, &key)
            }
        };
        if let Some(why) = verdict {
            failures.push(format!(
                "case {case} ({}): {why}\n{text}{env:?}",
                if yaml { "yaml" } else { "toml" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CASES} cases failed; first:\n{}",
        failures.len(),
        failures[0]
    );
    // The generator must exercise both sides, or the fuzz proves nothing.
    assert!(
        accepted >= 20 && refused >= CASES / 2,
        "accepted {accepted}, refused {refused}"
    );
}
