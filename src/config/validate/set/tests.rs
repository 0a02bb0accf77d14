//! Policy sets: expansion, members (inline and from a file), placeholders,
//! spread, and the errors a set reports once or per member.

use std::path::Path;

use chrono::DateTime;

use crate::config::Config;
use crate::config::validate::tests::raw_of;
use crate::config::validate::validate;
use crate::fleet::OnRemove;

/// `extra` after a config with provider `or`, stores `aws` and `local`;
/// relative member files resolve against `dir`.
fn validated(extra: &str, dir: &Path) -> Result<Config, Vec<String>> {
    let text = format!(
        "[daemon]\nstate = \"file:/s\"\n[providers.or]\nkind = \"openrouter\"\n\
         management_key = \"env:K\"\n[stores.aws]\nkind = \"aws-secrets-manager\"\n\
         region = \"r\"\n[stores.local]\nkind = \"file\"\ndir = \"/d\"\n{extra}"
    );
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    validate(raw_of(&text), dir, now)
        .map_err(|problems| problems.iter().map(ToString::to_string).collect())
}

fn problems(extra: &str) -> Vec<String> {
    validated(extra, Path::new("/etc/rekey"))
        .err()
        .unwrap_or_default()
}

fn set(fields: &str) -> String {
    format!(
        "[[policy_set]]\nname = \"tenant-{{member}}\"\nprovider = \"or\"\n\
         schedule = \"0 3 * * *\"\n{fields}\n"
    )
}

const TARGET: &str = "target = { store = \"aws\", secret_id = \"tenants/{member}/llm\" }";

#[test]
fn each_member_becomes_a_policy_of_its_own() {
    let text = set(&format!(
        "members = [\"acme\", \"globex\"]\nspread = \"4h\"\non_remove = \"revoke\"\n\
         key = {{ name = \"t-{{member}}-{{rotation}}\" }}\n{TARGET}"
    ));
    let config = validated(&text, Path::new("/etc/rekey")).unwrap();
    let names: Vec<&str> = config.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tenant-acme", "tenant-globex"]);
    let acme = &config.policies[0];
    assert_eq!(acme.target.secret_id.as_str(), "tenants/acme/llm");
    assert_eq!(acme.target.lease.as_str(), "aws-sm:r/tenants/acme/llm");
    assert_eq!(acme.key.name, "t-acme-{rotation}");
    let member = acme.set.as_ref().unwrap();
    assert_eq!(member.set, "tenant-{member}");
    assert_eq!(member.member.as_str(), "acme");
    assert_eq!(member.on_remove, OnRemove::Revoke);
    // fnv1a64("tenant-acme") mod 4h, pinned in fleet's tests.
    assert_eq!(member.offset.as_secs(), 7950);
    assert!(config.member_files.is_empty());
}

#[test]
fn members_come_from_a_file_next_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tenants.txt"), "# ids\nacme\n\nglobex\n").unwrap();
    let text = set(&format!("members = \"file:tenants.txt\"\n{TARGET}"));
    let config = validated(&text, dir.path()).unwrap();
    assert_eq!(config.policies.len(), 2);
    assert_eq!(config.member_files, [dir.path().join("tenants.txt")]);
    assert_eq!(config.policies[1].set.as_ref().unwrap().offset.as_secs(), 0);
}

#[test]
fn a_bad_members_file_is_named_with_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.txt");
    std::fs::write(&file, "acme\nbad id\nacme\n").unwrap();
    let text = set(&format!("members = \"file:tenants.txt\"\n{TARGET}"));
    let got = validated(&text, dir.path()).unwrap_err();
    let shown = file.display();
    assert_eq!(
        got,
        [
            format!(
                "policy_set[0].members: {shown} line 2: member id may hold only A-Z, a-z, 0-9, '.', '_' and '-' (value not shown) (policy_set \"tenant-{{member}}\")"
            ),
            format!(
                "policy_set[0].members: {shown} line 3: duplicate member \"acme\" (also line 1) (policy_set \"tenant-{{member}}\")"
            ),
        ]
    );
    let pasted = set(&format!(
        "members = \"file:sk-or-v1-0123456789abcdef0123456789abcdef\"\n{TARGET}"
    ));
    let got = validated(&pasted, dir.path()).unwrap_err();
    assert!(
        got[0].starts_with("policy_set[0].members: cannot read the members file (path not shown)"),
        "{got:?}"
    );
    let missing = set(&format!("members = \"file:nope.txt\"\n{TARGET}"));
    let got = validated(&missing, dir.path()).unwrap_err();
    assert!(
        got[0].starts_with("policy_set[0].members: cannot read"),
        "{got:?}"
    );
}

#[test]
fn set_level_problems_are_reported_once_whatever_the_member_count() {
    let members: Vec<String> = (0..500).map(|i| format!("\"m{i}\"")).collect();
    let text = set(&format!(
        "members = [{}]\nrevoke = {{ grace = \"2d\" }}\n{TARGET}",
        members.join(",")
    ));
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("policy_set[0].revoke.grace: grace 2d"),
        "{got:?}"
    );
    assert!(
        got[0].ends_with("(policy_set \"tenant-{member}\")"),
        "{got:?}"
    );
}

#[test]
fn member_placeholders_are_checked() {
    let no_member = "[[policy_set]]\nname = \"tenant\"\nprovider = \"or\"\nschedule = \"0 3 * * *\"\n\
                     members = [\"a\"]\ntarget = { store = \"aws\", secret_id = \"t/{member}\" }\n";
    let got = problems(no_member);
    assert!(
        got[0].starts_with("policy_set[0].name: must contain {member}"),
        "{got:?}"
    );
    let same_secret = set("members = [\"a\"]\ntarget = { store = \"aws\", secret_id = \"t\" }");
    let got = problems(&same_secret);
    assert!(
        got[0].starts_with("policy_set[0].target.secret_id: must contain {member}"),
        "{got:?}"
    );
    let unknown =
        set("members = [\"a\"]\ntarget = { store = \"aws\", secret_id = \"t/{tenant}\" }");
    let got = problems(&unknown);
    assert!(
        got.iter()
            .any(|p| p
                .starts_with("policy_set[0].target.secret_id: unknown placeholder \"{tenant}\"")),
        "{got:?}"
    );
    let elsewhere = set(&format!(
        "members = [\"a\"]\nproject_id = \"p-{{member}}\"\n{TARGET}"
    ));
    let got = problems(&elsewhere);
    assert!(
        got[0].starts_with("policy_set[0].project_id: {member} is only filled in"),
        "{got:?}"
    );
}

#[test]
fn a_member_that_makes_a_bad_policy_name_is_named() {
    let text = set(&format!("members = [\"ok\", \"Acme.Corp\"]\n{TARGET}"));
    assert_eq!(
        problems(&text),
        [
            "policy_set[0].members: member \"Acme.Corp\" gives the policy name \"tenant-Acme.Corp\", which is not a policy name ([a-z0-9][a-z0-9_-]*) (policy_set \"tenant-{member}\")"
        ]
    );
    let inline = set(&format!("members = [\"a\", \"a b\", \"a\"]\n{TARGET}"));
    let got = problems(&inline);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("policy_set[0].members[1]: member id may hold only"));
    assert!(got[1].starts_with("policy_set[0].members[2]: duplicate member \"a\""));
}

#[test]
fn a_member_colliding_with_a_policy_is_one_error_naming_both() {
    let plain = "[[policy]]\nname = \"tenant-acme\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
                 target = { store = \"aws\", secret_id = \"other\" }\n";
    let text = format!(
        "{plain}{}",
        set(&format!("members = [\"acme\", \"b\"]\n{TARGET}"))
    );
    assert_eq!(
        problems(&text),
        [
            "policy_set[0].name: duplicate policy name \"tenant-acme\" (also policy[0]) (member \"acme\")"
        ]
    );
}

#[test]
fn spread_must_fit_between_ticks_and_needs_a_schedule() {
    let too_long = set(&format!("members = [\"a\"]\nspread = \"24h\"\n{TARGET}"));
    let got = problems(&too_long);
    assert!(
        got[0].starts_with(
            "policy_set[0].spread: 1d must be shorter than the schedule's shortest gap"
        ),
        "{got:?}"
    );
    let no_schedule = "[[policy_set]]\nname = \"t-{member}\"\nprovider = \"or\"\nmax_age = \"30d\"\n\
                       members = [\"a\"]\nspread = \"1h\"\ntarget = { store = \"aws\", secret_id = \"t/{member}\" }\n";
    let got = problems(no_schedule);
    assert!(
        got[0].starts_with("policy_set[0].spread: needs a schedule"),
        "{got:?}"
    );
    let bad = set(&format!(
        "members = [\"a\"]\non_remove = \"delete\"\nadopt = {{ key_id = \"k\" }}\n{TARGET}"
    ));
    let got = problems(&bad);
    assert_eq!(got.len(), 2, "{got:?}");
}

#[test]
fn members_are_required() {
    let got = problems(&set(TARGET));
    assert!(
        got[0].starts_with("policy_set[0].members: required"),
        "{got:?}"
    );
}

/// Measures validation of a set of 10,000 members; prints, asserts nothing
/// about time. `cargo test --lib set_of_ten_thousand -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run by hand"]
fn set_of_ten_thousand_validation_time() {
    let members: Vec<String> = (0..10_000).map(|i| format!("\"m{i}\"")).collect();
    let text = set(&format!(
        "members = [{}]\nspread = \"4h\"\ntimezone = \"Europe/Berlin\"\n{TARGET}",
        members.join(",")
    ));
    let started = std::time::Instant::now();
    let config = validated(&text, Path::new("/etc/rekey")).unwrap();
    println!(
        "validated a set of {} members in {:?}",
        config.policies.len(),
        started.elapsed()
    );
}
