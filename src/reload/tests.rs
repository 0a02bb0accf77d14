use std::sync::Arc;

use super::*;
use crate::app::App;
use crate::config::load::SourceFormat;

fn policy(name: &str, max_age: &str) -> String {
    format!(
        "[[policy]]\nname = \"{name}\"\nprovider = \"or\"\nmax_age = \"{max_age}\"\n\
         target = {{ store = \"local\", secret_id = \"{name}\", create = true }}\n"
    )
}

fn text(daemon_extra: &str, policies: &[String]) -> String {
    format!(
        "[daemon]\nstate = \"file:state\"\n{daemon_extra}\n\
         [providers.or]\nkind = \"openrouter\"\nmanagement_key = \"file:mgmt\"\n\
         [stores.local]\nkind = \"file\"\ndir = \"secrets\"\n{}",
        policies.concat()
    )
}

fn config(daemon_extra: &str, policies: &[String]) -> Config {
    let text = text(daemon_extra, policies);
    config::load::load_str(&text, SourceFormat::Toml, Path::new("/etc/rekey")).unwrap()
}

#[test]
fn the_diff_names_added_removed_and_changed_policies() {
    let old = config(
        "",
        &[policy("a", "30d"), policy("b", "30d"), policy("c", "30d")],
    );
    let new = config(
        "",
        &[policy("a", "30d"), policy("b", "7d"), policy("d", "30d")],
    );

    let diff = Diff::between(&old, &new);

    assert_eq!(diff.added, ["d"]);
    assert_eq!(diff.removed, ["c"]);
    assert_eq!(diff.changed, ["b"]);
    assert!(diff.restart_only.is_empty());
}

#[test]
fn a_changed_provider_entry_changes_the_policies_that_use_it() {
    let old = config("", &[policy("a", "30d")]);
    let mut new = old.clone();
    new.providers.get_mut("or").unwrap().base_url = "http://127.0.0.1:1/api/v1".into();

    assert_eq!(Diff::between(&old, &new).changed, ["a"]);
}

#[test]
fn settings_read_only_at_start_are_named() {
    let old = config("", &[policy("a", "30d")]);
    let new = config(
        "admin_listen = \"127.0.0.1:9999\"\nmax_concurrent_rotations = 2",
        &[policy("a", "30d")],
    );

    let diff = Diff::between(&old, &new);

    assert_eq!(
        diff.restart_only,
        ["daemon.admin_listen", "daemon.max_concurrent_rotations"]
    );
    assert!(diff.changed.is_empty());
}

fn print(n: u64) -> Option<Fingerprint> {
    Some(Fingerprint {
        modified: None,
        len: n,
        hash: n,
    })
}

#[test]
fn a_change_is_taken_once_two_polls_agree() {
    let mut d = Debounce::new(print(1));
    assert!(!d.settled_change(print(1)), "unchanged");
    assert!(!d.settled_change(print(2)), "changed, not settled yet");
    assert!(!d.settled_change(print(3)), "still being written");
    assert!(d.settled_change(print(3)), "settled");
    d.attempted(print(3));
    assert!(!d.settled_change(print(3)), "not reloaded twice");
}

#[test]
fn an_unreadable_file_is_waited_for_and_a_revert_is_no_change() {
    let mut d = Debounce::new(print(1));
    assert!(!d.settled_change(None));
    assert!(!d.settled_change(None), "never settles while unreadable");
    assert!(!d.settled_change(print(2)));
    assert!(!d.settled_change(print(1)), "back to what is loaded");
    assert!(!d.settled_change(print(1)));
}

struct Fixture {
    dir: tempfile::TempDir,
    daemon: Daemon,
}

impl Fixture {
    async fn new(policies: &[String]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mgmt"), "sk-or-v1-test-management").unwrap();
        let fixture = Fixture {
            daemon: Daemon::new(Arc::new(
                App::build(config_in(&dir, policies)).await.unwrap(),
            )),
            dir,
        };
        fixture.write(&text("", policies));
        fixture
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("rekey.toml")
    }

    fn write(&self, text: &str) {
        std::fs::write(self.path(), text).unwrap();
    }

    fn policies(&self) -> Vec<String> {
        let app = self.daemon.app();
        app.config
            .policies
            .iter()
            .map(|p| p.name.to_string())
            .collect()
    }
}

fn config_in(dir: &tempfile::TempDir, policies: &[String]) -> Config {
    config::load::load_str(&text("", policies), SourceFormat::Toml, dir.path()).unwrap()
}

#[tokio::test]
async fn an_invalid_config_is_refused_naming_the_field_and_the_running_one_stays() {
    let f = Fixture::new(&[policy("a", "30d")]).await;
    let before = f.daemon.app();
    f.write(&text("", &[policy("a", "30d"), policy("b", "soon")]));

    let reason = reload(&f.path(), &f.daemon, "test").await.unwrap_err();

    assert!(reason.contains("policy[1].max_age"), "{reason}");
    assert!(
        Arc::ptr_eq(&before, &f.daemon.app()),
        "the running app stays"
    );
}

#[tokio::test]
async fn moving_the_journal_is_refused() {
    let f = Fixture::new(&[policy("a", "30d")]).await;
    f.write(&text("", &[policy("a", "30d")]).replace("file:state", "file:elsewhere"));

    let reason = reload(&f.path(), &f.daemon, "test").await.unwrap_err();

    assert!(reason.starts_with("daemon.state:"), "{reason}");
    assert_eq!(f.policies(), ["a"]);
}

#[tokio::test]
async fn unreadable_credentials_are_refused_naming_the_provider_entry() {
    let f = Fixture::new(&[policy("a", "30d")]).await;
    f.write(&text("", &[policy("a", "30d")]).replace("file:mgmt", "file:missing"));

    let reason = reload(&f.path(), &f.daemon, "test").await.unwrap_err();

    assert!(
        reason.starts_with("providers.or.management_key:"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_valid_config_is_applied_and_shares_the_shutdown_token() {
    let f = Fixture::new(&[policy("a", "30d")]).await;
    let before = f.daemon.app();
    f.write(&text("", &[policy("b", "30d")]));

    let diff = reload(&f.path(), &f.daemon, "test").await.unwrap();

    assert_eq!(
        (diff.added, diff.removed),
        (vec!["b".parse().unwrap()], vec!["a".parse().unwrap()])
    );
    assert_eq!(f.policies(), ["b"]);
    before.cancel.cancel();
    assert!(
        f.daemon.app().cancel.is_cancelled(),
        "one shutdown stops both"
    );
}

#[test]
fn an_edit_of_a_members_file_alone_is_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let (config, members) = (
        dir.path().join("rekey.toml"),
        dir.path().join("tenants.txt"),
    );
    std::fs::write(&config, "[daemon]\n").unwrap();
    std::fs::write(&members, "a\nb\n").unwrap();
    let watched = [members.clone()];
    let before = fingerprint(&config, &watched);
    assert_eq!(before, fingerprint(&config, &watched), "nothing changed");
    std::fs::write(&members, "a\nc\n").unwrap();
    let after = fingerprint(&config, &watched);
    assert!(after.is_some());
    assert_ne!(before, after, "same size, other content");
    std::fs::remove_file(&members).unwrap();
    let gone = fingerprint(&config, &watched);
    assert!(
        gone.is_some() && gone != after,
        "a missing members file is a version too"
    );
    assert_eq!(
        fingerprint(&config, &[]).map(|f| f.len),
        Some(9),
        "without members files only the config counts"
    );
}
