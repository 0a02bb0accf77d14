//! Strict reading of config trees: types refused, not coerced; every
//! problem found in one run; unknown fields with suggestions.
use super::reader::*;
use super::suggest::{closest, edit_distance};
use super::*;
use crate::config::raw::RawConfig;

fn table(entries: &[(&str, Node)]) -> Node {
    Node::Table(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// The first problem only: each case below has one.
fn daemon(field: &str, value: Node) -> Result<RawConfig, ShapeError> {
    from_node(table(&[("daemon", table(&[(field, value)]))])).map_err(|mut e| e.remove(0))
}

#[test]
fn a_float_is_not_an_integer_and_a_boolean_is_not_a_string() {
    let err = daemon("max_concurrent_rotations", Node::Float(1.5)).unwrap_err();
    assert_eq!(err.path, "daemon.max_concurrent_rotations");
    assert_eq!(
        err.message,
        "invalid type: floating point number, expected an integer"
    );
    let err = daemon("state", Node::Bool(true)).unwrap_err();
    assert_eq!(
        (err.path.as_str(), err.message.as_str()),
        ("daemon.state", "invalid type: boolean, expected a string")
    );
}

#[test]
fn environment_text_is_parsed_as_the_fields_type() {
    let ok = daemon("max_concurrent_rotations", Node::Env("4".into())).unwrap();
    assert_eq!(ok.daemon.unwrap().max_concurrent_rotations, Some(4));
    for bad in ["1.5", "four", "sk-or-v1-abc"] {
        let err = daemon("max_concurrent_rotations", Node::Env(bad.into())).unwrap_err();
        assert_eq!(err.path, "daemon.max_concurrent_rotations");
        assert!(!err.message.contains(bad), "{}", err.message);
    }
    let state = daemon("state", Node::Env("true".into())).unwrap();
    assert_eq!(state.daemon.unwrap().state.as_deref(), Some("true"));
}

#[test]
fn nan_and_infinity_are_refused_for_floats_from_the_file_and_the_environment() {
    let key = |limit: Node| {
        table(&[(
            "policy",
            Node::List(vec![table(&[("key", table(&[("limit", limit)]))])]),
        )])
    };
    for bad in [
        Node::Float(f64::NAN),
        Node::Float(f64::INFINITY),
        Node::Env("nan".into()),
        Node::Env("-inf".into()),
    ] {
        let err = from_node::<RawConfig>(key(bad)).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].path, "policy[0].key.limit");
    }
    let ok: RawConfig = from_node(key(Node::Int(500))).unwrap();
    assert_eq!(ok.policy[0].key.as_ref().unwrap().limit, Some(500.0));
}

#[test]
fn an_unknown_field_is_reported_at_its_path_with_the_closest_known_field() {
    let err = daemon("max_concurent_rotations", Node::Int(1)).unwrap_err();
    assert_eq!(err.path, "daemon.max_concurent_rotations");
    assert_eq!(
        err.message,
        "unknown field; did you mean \"max_concurrent_rotations\"?"
    );
    let top = from_node::<RawConfig>(table(&[("bogus", Node::Nil)])).unwrap_err();
    assert_eq!(top[0].path, "bogus");
    assert_eq!(
        top[0].message,
        "unknown field; expected one of daemon, providers, stores, policy, policy_set, notify"
    );
}

#[test]
fn a_field_name_that_looks_like_a_key_is_not_shown() {
    let err = daemon("sk-or-v1-0123456789abcdef0123456789", Node::Int(1)).unwrap_err();
    assert_eq!(err.path, "daemon.<field not shown>");
}

#[test]
fn every_problem_is_reported_in_one_read() {
    let doc = table(&[
        (
            "daemon",
            table(&[
                ("stat", Node::Text("x".into())),
                ("max_concurrent_rotations", Node::Bool(true)),
            ]),
        ),
        (
            "policy",
            Node::List(vec![table(&[
                ("nmae", Node::Text("a".into())),
                ("verify", table(&[("modle", Node::Text("x".into()))])),
            ])]),
        ),
        ("notify", Node::Int(3)),
    ]);
    let (raw, problems) = read::<RawConfig>(doc);
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "daemon.stat",
            "daemon.max_concurrent_rotations",
            "notify",
            "policy[0].nmae",
            "policy[0].verify.modle",
        ]
    );
    assert!(raw.is_some(), "the rest of the document is still read");
}

#[test]
fn the_edit_distance_counts_insertions_deletions_and_substitutions() {
    assert_eq!(edit_distance("", ""), 0);
    assert_eq!(edit_distance("abc", ""), 3);
    assert_eq!(edit_distance("modle", "model"), 1, "a swap is one edit");
    assert_eq!(edit_distance("max_concurent", "max_concurrent"), 1);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(closest("modle", &["mode", "model"]), Some("model"));
    assert_eq!(closest("mod", &["mode", "model"]), Some("mode"));
    assert_eq!(closest("schedul", &["schedule"]), Some("schedule"));
    assert_eq!(closest("colour", &["state", "name"]), None);
    assert_eq!(
        closest("a", &["api"]),
        None,
        "too short to be a typo of anything"
    );
}

#[test]
fn an_integer_out_of_range_is_refused_not_wrapped() {
    let err = daemon("max_concurrent_rotations", Node::Int(i128::from(u64::MAX))).unwrap_err();
    assert!(err.message.contains("out of range"), "{}", err.message);
}

#[test]
fn the_environment_is_laid_over_the_file_table_by_table() {
    let mut file = table(&[
        (
            "daemon",
            table(&[
                ("state", Node::Text("file:/s".into())),
                ("max_concurrent_rotations", Node::Int(2)),
            ]),
        ),
        (
            "policy",
            Node::List(vec![table(&[("name", Node::Text("a".into()))])]),
        ),
    ]);
    let env = table(&[
        (
            "daemon",
            table(&[("max_concurrent_rotations", Node::Text("4".into()))]),
        ),
        (
            "policy",
            table(&[("0", table(&[("name", Node::Text("b".into()))]))]),
        ),
    ]);
    file.overlay(env.into_env());
    let expected = table(&[
        (
            "daemon",
            table(&[
                ("state", Node::Text("file:/s".into())),
                ("max_concurrent_rotations", Node::Env("4".into())),
            ]),
        ),
        // A table over a list replaces it, as the `config` crate layers it;
        // the strict reader then names the variable at `policy`.
        (
            "policy",
            table(&[("0", table(&[("name", Node::Env("b".into()))]))]),
        ),
    ]);
    assert_eq!(file, expected);
}

#[test]
fn a_variable_indexing_a_list_sets_that_element_and_keeps_the_others() {
    let text = "[daemon]\nstate = \"file:/s\"\n[providers.or]\nkind = \"openrouter\"\n\
                management_key = \"env:K\"\n[stores.f]\nkind = \"file\"\ndir = \"/d\"\n\
                [[policy]]\nname = \"a\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
                target = { store = \"f\", secret_id = \"a\" }\n\
                [[policy]]\nname = \"b\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
                target = { store = \"f\", secret_id = \"b\" }\n";
    let env = [("REKEY_POLICY[1]__MAX_AGE".to_string(), "7d".to_string())];
    let config = crate::config::load::load_str_with_env(
        text,
        crate::config::load::SourceFormat::Toml,
        std::path::Path::new("/"),
        env,
    )
    .unwrap();
    let ages: Vec<u64> = (config.policies.iter())
        .map(|p| p.max_age.unwrap().as_secs() / 86_400)
        .collect();
    assert_eq!(ages, [30, 7]);
    assert_eq!(config.policies[0].name.as_str(), "a");
}
