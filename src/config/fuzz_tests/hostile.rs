//! The fuzz's spoilers: the fields and `REKEY_*` variables to spoil, the
//! planted key, hostile values (wrong types, extremes, path tricks, unicode,
//! deep nesting) and documents that do not parse.

use rand::Rng;
use rand::rngs::StdRng;

use super::generate::G;

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
    "providers.or.rate_limit",
    "providers.or.max_concurrent",
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
    "policy_set.#.name",
    "policy_set.#.members",
    "policy_set.#.spread",
    "policy_set.#.on_remove",
    "policy_set.#.target.secret_id",
    "policy_set.#.key.name",
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
