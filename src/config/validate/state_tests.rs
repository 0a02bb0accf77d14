//! `daemon.state` and `[daemon.dynamodb]`: every bad value is a problem
//! naming its field, and the good ones give the location the stores open.

use std::time::Duration;

use super::*;
use crate::config::{DynamoConfig, DynamoTable, StateLocation};

/// Validates a config whose `[daemon]` is `daemon` (plus `tail` after it):
/// the config, or its problems as `path: message` lines (shape problems
/// found by the strict reader included).
fn check(daemon: &str, tail: &str) -> Result<Config, Vec<String>> {
    let text = format!("[daemon]\n{daemon}\n{tail}");
    let (node, _) = crate::config::toml_tree::toml_tree(&text).unwrap();
    let raw = crate::config::strict::from_node(node).map_err(|shape| {
        (shape.iter())
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect::<Vec<_>>()
    })?;
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    validate(raw, Path::new("/etc/rekey"), now)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

fn problems(daemon: &str, tail: &str) -> Vec<String> {
    check(daemon, tail).err().unwrap_or_default()
}

const SECTION: &str = "[daemon.dynamodb]\nregion = \"eu-central-1\"";

#[test]
fn a_dynamodb_state_takes_its_table_and_section_with_defaults() {
    let config = check("state = \"dynamodb:rekey-state\"", SECTION).unwrap();
    let want = DynamoConfig {
        table: "rekey-state".into(),
        region: "eu-central-1".into(),
        endpoint_url: None,
        create_table: false,
        lease: Duration::from_secs(30),
    };
    assert_eq!(config.daemon.state, StateLocation::DynamoDb(want.clone()));
    assert_eq!(
        config.daemon.dynamodb.map(|t| t.for_table("rekey-state")),
        Some(want)
    );
}

#[test]
fn every_dynamodb_setting_is_read() {
    let section = "[daemon.dynamodb]\nregion = \"us-east-1\"\n\
                   endpoint_url = \"http://127.0.0.1:5000/\"\ncreate_table = true\nlease = \"2s\"";
    let config = check("state = \"dynamodb:A.b_c-9\"", section).unwrap();
    let StateLocation::DynamoDb(table) = config.daemon.state else {
        panic!("not a dynamodb state");
    };
    assert_eq!(table.table, "A.b_c-9");
    assert_eq!(table.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    assert!(table.create_table);
    assert_eq!(table.lease, Duration::from_secs(2));
}

#[test]
fn a_file_state_may_name_the_table_settings_for_migration() {
    let config = check("state = \"file:/var/lib/rekey\"", SECTION).unwrap();
    assert_eq!(
        config.daemon.state,
        StateLocation::File("/var/lib/rekey".into())
    );
    assert_eq!(
        config.daemon.dynamodb,
        Some(DynamoTable {
            region: "eu-central-1".into(),
            endpoint_url: None,
            create_table: false,
            lease: Duration::from_secs(30),
        })
    );
    let plain = check("state = \"file:/var/lib/rekey\"", "").unwrap();
    assert_eq!(plain.daemon.dynamodb, None);
}

#[test]
fn table_names_follow_dynamodbs_rule_and_are_not_echoed() {
    let long = "t".repeat(256);
    for bad in ["ab", "has space", "sk-or-v1/abc", "", long.as_str()] {
        let got = problems(&format!("state = \"dynamodb:{bad}\""), SECTION);
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(
            got[0].starts_with("daemon.state: the DynamoDB table name must be 3 to 255 characters"),
            "{bad}: {got:?}"
        );
        if bad.len() > 2 {
            assert!(!got[0].contains(bad), "{bad} echoed: {got:?}");
        }
    }
    assert!(problems(&format!("state = \"dynamodb:{}\"", &long[1..]), SECTION).is_empty());
}

#[test]
fn a_dynamodb_state_without_its_section_needs_the_region() {
    assert_eq!(
        problems("state = \"dynamodb:rekey-state\"", ""),
        vec![
            "daemon.dynamodb.region: required when daemon.state is \"dynamodb:<table>\" (add a [daemon.dynamodb] section)"
        ]
    );
    assert_eq!(
        problems(
            "state = \"dynamodb:rekey-state\"",
            "[daemon.dynamodb]\nlease = \"1m\""
        ),
        vec!["daemon.dynamodb.region: required"]
    );
}

#[test]
fn bad_dynamodb_values_are_named_by_field() {
    let cases = [
        (
            "region = \"EU Central\"",
            "daemon.dynamodb.region: is not an AWS region like \"eu-central-1\" (value not shown)",
        ),
        (
            "region = \"eu-central-1\"\nlease = \"1s\"",
            "daemon.dynamodb.lease: must be at least 2s (it is renewed every third of it)",
        ),
        (
            "region = \"eu-central-1\"\nlease = \"10m 1s\"",
            "daemon.dynamodb.lease: must be at most 10m",
        ),
        (
            "region = \"eu-central-1\"\nlease = \"soon\"",
            "daemon.dynamodb.lease: not a duration",
        ),
        (
            "region = \"eu-central-1\"\nendpoint_url = \"ftp://x\"",
            "daemon.dynamodb.endpoint_url:",
        ),
        (
            "region = \"eu-central-1\"\ncreate_table = \"yes\"",
            "daemon.dynamodb.create_table: invalid type",
        ),
        (
            "region = \"eu-central-1\"\ntable = \"x\"",
            "daemon.dynamodb.table: unknown field",
        ),
    ];
    for (section, want) in cases {
        let got = problems(
            "state = \"dynamodb:rekey-state\"",
            &format!("[daemon.dynamodb]\n{section}"),
        );
        assert_eq!(got.len(), 1, "{section}: {got:?}");
        assert!(got[0].starts_with(want), "{section}: {got:?}");
    }
    assert!(
        problems(
            "state = \"dynamodb:t12\"",
            "[daemon.dynamodb]\nregion = \"eu-central-1\"\nlease = \"10m\""
        )
        .is_empty()
    );
}

#[test]
fn an_unknown_state_scheme_names_both_supported_ones() {
    for bad in ["s3:bucket", "file:", "dynamodb", "/var/lib/rekey"] {
        assert_eq!(
            problems(&format!("state = \"{bad}\""), ""),
            vec![
                "daemon.state: is not supported (value not shown); write \"file:<dir>\" or \"dynamodb:<table>\""
            ],
            "{bad}"
        );
    }
}

#[test]
fn every_call_timeout_must_fit_in_the_lease_less_its_margin() {
    let state = "state = \"dynamodb:rekey-state\"";
    let provider = |timeout: &str| {
        format!(
            "[providers.or]\nkind = \"openrouter\"\nmanagement_key = \"env:K\"\n\
             request_timeout = \"{timeout}\"\n"
        )
    };
    let aws = |timeout: &str| {
        format!(
            "[stores.aws]\nkind = \"aws-secrets-manager\"\nregion = \"r\"\n\
             request_timeout = \"{timeout}\"\n"
        )
    };
    let policy = |store: &str| {
        format!(
            "[[policy]]\nname = \"p\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
             target = {{ store = \"{store}\", secret_id = \"s\" }}\n"
        )
    };
    let with = |lease: &str, extra: &str| {
        let store = if extra.contains("[stores.aws]") {
            "aws"
        } else {
            "files"
        };
        let files = if store == "files" {
            "[stores.files]\nkind = \"file\"\ndir = \"/d\"\n"
        } else {
            ""
        };
        problems(
            state,
            &format!(
                "[daemon.dynamodb]\nregion = \"r\"\nlease = \"{lease}\"\n{extra}{files}{}",
                policy(store)
            ),
        )
    };
    // 30 s less 3 s leaves 27 s: a 30 s provider timeout could never start.
    let got = with("30s", &provider("30s"));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0],
        "daemon.dynamodb.lease: 30s less its skew margin of 3s leaves 27s, not more than \
         providers.or.request_timeout (30s): a call may only start while the lease outlives \
         it, so none could; make the lease longer than 33s or the timeout shorter"
    );
    assert!(with("30s", &provider("20s")).is_empty());
    let store = with("10s", &(provider("5s") + &aws("10s")));
    assert_eq!(store.len(), 1, "{store:?}");
    assert!(
        store[0].contains("stores.aws.request_timeout (10s)"),
        "{store:?}"
    );
    // Short leases for tests: 3 s less 1 s leaves 2 s for 1 s calls.
    assert!(with("3s", &(provider("1s") + &aws("1s"))).is_empty());
    // A file store's calls are local and fit any lease.
    assert!(with("2s", &provider("500ms")).is_empty());
    // An entry no policy uses is never called under a lease.
    let unused = with(
        "30s",
        &(provider("20s")
            + "[providers.slow]\nkind = \"openrouter\"\nmanagement_key = \"env:K\"\nrequest_timeout = \"5m\"\n"),
    );
    assert!(unused.is_empty(), "{unused:?}");
    // On the file state there is no lease to fit in.
    assert!(problems("state = \"file:/s\"", &provider("10m")).is_empty());
}
