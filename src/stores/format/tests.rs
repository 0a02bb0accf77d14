use secrecy::{ExposeSecret, SecretString};

use super::{extract_key, replace_key};
use crate::policy::{Format, Target};
use crate::stores::StoreError;

fn target(format: Format, field: Option<&str>) -> Target {
    Target {
        store: "test".into(),
        secret_id: "prod/llm".into(),
        lease: crate::names::LeaseKey::aws("test", "prod/llm"),
        format,
        field: field.map(str::to_string),
        create: false,
    }
}

fn json() -> Target {
    target(Format::Json, Some("API_KEY"))
}

fn env() -> Target {
    target(Format::Env, Some("API_KEY"))
}

fn extracted(t: &Target, value: Option<&str>) -> Option<String> {
    let key = extract_key(t, value).expect("extract");
    key.map(|k| k.expose_secret().to_string())
}

fn replaced(t: &Target, current: Option<&str>, key: &str) -> String {
    let value = replace_key(t, current, &SecretString::from(key)).expect("replace");
    value.expose_secret().to_string()
}

#[test]
fn extract_reads_the_key_in_each_format_or_reports_none() {
    let raw = target(Format::Raw, None);
    let cases: &[(&Target, Option<&str>, Option<&str>)] = &[
        (&raw, None, None),
        (&raw, Some(""), None),
        (&raw, Some("sk-1\n"), Some("sk-1")),
        (&json(), Some(r#"{"API_KEY":"sk-1","x":1}"#), Some("sk-1")),
        (&json(), Some(r#"{"API_KEY":"sk-\u00e9\/"}"#), Some("sk-é/")),
        (&json(), Some(r#"{"other":"sk-1"}"#), None),
        (&json(), Some(r#"{"API_KEY":null}"#), None),
        (&json(), Some("  "), None),
        (&json(), Some(r#"{"nested":{"API_KEY":"no"}}"#), None),
        (
            &env(),
            Some("# API_KEY=commented\nOTHER=1\nAPI_KEY=sk-1\n"),
            Some("sk-1"),
        ),
        (&env(), Some("export API_KEY=\"sk-1\"\r\n"), Some("sk-1")),
        (&env(), Some("API_KEY=old\nAPI_KEY=sk-2"), Some("sk-2")),
        (&env(), Some("API_KEY=\n"), None),
        (&env(), Some("OTHER=1\n"), None),
    ];
    for (t, value, want) in cases {
        assert_eq!(
            extracted(t, *value).as_deref(),
            *want,
            "{:?} {value:?}",
            t.format
        );
    }
}

#[test]
fn raw_replace_is_the_key_alone() {
    assert_eq!(
        replaced(&target(Format::Raw, None), Some("old"), "sk-new"),
        "sk-new"
    );
}

#[test]
fn json_replace_keeps_every_other_byte() {
    let doc = "{\n  \"a\": {\"n\": [1, {\"API_KEY\": \"inner\"}]},\n  \"API_KEY\": \"old\",\n  \"f\": 1.10,\n  \"big\": 12345678901234567890,\n  \"u\": \"héllo \\\"q\\\" 🚀\"\n}\n";
    let want = doc.replace("\"API_KEY\": \"old\"", "\"API_KEY\": \"sk-new\"");
    assert_eq!(replaced(&json(), Some(doc), "sk-new"), want);
}

#[test]
fn json_replace_appends_a_missing_field_in_the_documents_style() {
    let cases = [
        (None, r#"{"API_KEY":"k"}"#),
        (Some(""), r#"{"API_KEY":"k"}"#),
        (Some("{}"), r#"{"API_KEY":"k"}"#),
        (Some(r#"{"z":1.10}"#), r#"{"z":1.10,"API_KEY":"k"}"#),
        (
            Some(r#"{"z": 1, "b": 2}"#),
            r#"{"z": 1, "b": 2, "API_KEY": "k"}"#,
        ),
        (
            Some("{\n  \"z\": 1\n}"),
            "{\n  \"z\": 1,\n  \"API_KEY\": \"k\"\n}",
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(replaced(&json(), doc, "k"), want, "{doc:?}");
    }
}

#[test]
fn json_replace_escapes_the_key() {
    let out = replaced(&json(), Some("{}"), "a\"b\\c");
    assert_eq!(extracted(&json(), Some(&out)).as_deref(), Some("a\"b\\c"));
}

#[test]
fn json_that_is_not_an_object_is_a_shape_error_naming_the_secret_not_the_value() {
    for doc in [
        "[1,2]",
        "\"sk-secret-value\"",
        "sk-secret-value",
        "{\"a\":",
        "42",
    ] {
        for err in [
            extract_key(&json(), Some(doc)).err(),
            replace_key(&json(), Some(doc), &SecretString::from("k")).err(),
        ] {
            let err = err.expect("shape error");
            assert!(matches!(err, StoreError::Shape { .. }), "{doc}: {err}");
            let message = err.to_string();
            assert!(
                message.contains("prod/llm") && message.contains("not a JSON object"),
                "{message}"
            );
            assert!(!message.contains("sk-secret-value"), "{message}");
        }
    }
}

#[test]
fn json_field_that_is_not_a_string_is_a_shape_error_without_the_value() {
    let err = extract_key(&json(), Some(r#"{"API_KEY":12345}"#)).expect_err("shape error");
    assert!(matches!(err, StoreError::Shape { .. }));
    assert!(!err.to_string().contains("12345"), "{err}");
}

#[test]
fn env_replace_changes_only_the_fields_lines() {
    let cases = [
        (None, "API_KEY=k\n"),
        (Some(""), "API_KEY=k\n"),
        (
            Some("# keys\nOTHER=\"x y\"\n\nAPI_KEY=old\nLAST=1"),
            "# keys\nOTHER=\"x y\"\n\nAPI_KEY=k\nLAST=1",
        ),
        (Some("A=1\r\nAPI_KEY=old\r\n"), "A=1\r\nAPI_KEY=k\r\n"),
        (
            Some("API_KEY=a\n#API_KEY=c\nAPI_KEY=b\n"),
            "API_KEY=k\n#API_KEY=c\nAPI_KEY=k\n",
        ),
        (Some("A=1"), "A=1\nAPI_KEY=k\n"),
        (Some("A=1\n"), "A=1\nAPI_KEY=k\n"),
        (Some("API_KEY_2=x\n"), "API_KEY_2=x\nAPI_KEY=k\n"),
    ];
    for (doc, want) in cases {
        assert_eq!(replaced(&env(), doc, "k"), want, "{doc:?}");
    }
}

#[test]
fn env_refuses_a_key_with_a_line_break() {
    let err = replace_key(&env(), Some("A=1\n"), &SecretString::from("sk\nINJECTED=1")).err();
    assert!(matches!(err, Some(StoreError::Permanent { .. })));
}

#[test]
fn json_and_env_without_a_field_are_permanent_errors() {
    for format in [Format::Json, Format::Env] {
        let err = extract_key(&target(format, None), Some("x")).err();
        assert!(
            matches!(err, Some(StoreError::Permanent { .. })),
            "{format:?}"
        );
    }
}
