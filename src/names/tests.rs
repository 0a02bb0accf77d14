//! The names' parsing rules and the lease key's identity rules.

use super::*;

#[test]
fn an_arn_and_a_name_share_a_lease() {
    let by_name = LeaseKey::aws("eu-central-1", "prod/llm");
    let by_arn = LeaseKey::aws(
        "us-east-1",
        "arn:aws:secretsmanager:eu-central-1:123456789012:secret:prod/llm-AbC123",
    );
    assert_eq!(by_name, by_arn);
    assert_eq!(by_name.as_str(), "aws-sm:eu-central-1/prod/llm");
    // Another region is another secret.
    assert_ne!(by_name, LeaseKey::aws("us-east-1", "prod/llm"));
    // A name that merely ends like a suffix is kept when it is not an ARN.
    assert_eq!(
        LeaseKey::aws("r", "team-abcdef").as_str(),
        "aws-sm:r/team-abcdef"
    );
    // A partial ARN (no suffix) keeps its name.
    assert_eq!(
        LeaseKey::aws("x", "arn:aws:secretsmanager:r:1:secret:llm").as_str(),
        "aws-sm:r/llm"
    );
}

#[test]
fn file_leases_follow_the_real_path() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
    let a = LeaseKey::file(&real, "app.env");
    let b = LeaseKey::file(&dir.path().join("link"), "app.env");
    let c = LeaseKey::file(&dir.path().join("link/../real/./"), "app.env");
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert!(a.as_str().starts_with("file:/"));
    // A secret under a directory that does not exist yet still has a key.
    let d = LeaseKey::file(&real.join("new"), "x");
    assert!(d.as_str().ends_with("/real/new/x"), "{d}");
    assert_ne!(a, LeaseKey::file(&real, "other.env"));
}

#[test]
fn journals_with_bad_names_are_refused_by_parsing() {
    assert!(PolicyName::parse("prod-llm_1").is_ok());
    for bad in ["", "Prod", "-x", "a b", &"a".repeat(64)] {
        let e = PolicyName::parse(bad).unwrap_err();
        assert!(e.to_string().starts_with("policy name"), "{e}");
    }
    assert!(RotationId::parse(RotationId::generate().as_str()).is_ok());
    assert!(RotationId::parse("../x").is_err());
    assert!(serde_json::from_str::<RotationId>("\"a b\"").is_err());
    assert!(LeaseKey::parse("prod/llm").is_err());
}

#[test]
fn names_read_and_compare_as_strings() {
    let name = PolicyName::parse("llm").unwrap();
    assert_eq!(name, "llm");
    assert_eq!(format!("{name}"), "llm");
    assert_eq!(serde_json::to_string(&name).unwrap(), "\"llm\"");
    let store = StoreName::from("aws");
    assert_eq!(&*store, "aws");
}
