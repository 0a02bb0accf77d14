//! The process is aborted (failpoints, like SIGKILL: no unwinding) at every
//! step boundary, on both stores. After each crash, and again after the
//! restart that resumes or rolls back, DESIGN.md's invariants must hold:
//! the store's current key works, the old key is revoked only once its
//! successor is current, no key is left alive unaccounted for, and no key
//! appears in any output or journal. For an assisted provider (a person
//! places the new key) the fixture places a console-made key as pending
//! before the crash, and the rotation must end with that key current.

use std::time::Duration;

use crate::helpers::{Case, Run, TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

/// Every step boundary, on both sides of each journal write.
pub const FAILPOINTS: &[&str] = &[
    "begin",
    "create:before-record",
    "create",
    "stage:before-record",
    "stage",
    "verify",
    "promote:before-record",
    "promote",
    "revoke:before-record",
    "revoke",
];

#[derive(Clone, Copy, Debug)]
pub enum Store {
    Files,
    Aws,
}

/// The assisted steps: claim stands in for create and stage.
pub const ASSISTED_FAILPOINTS: &[&str] = &[
    "begin",
    "claim:before-record",
    "claim",
    "verify",
    "promote:before-record",
    "promote",
    "revoke:before-record",
    "revoke",
];

struct Fixture {
    env: TestEnv,
    store: Store,
    secret_id: String,
    /// Assisted: the key placed as pending before the crash.
    placed: Option<String>,
}

/// Places `value` as the pending value, the way a person would: on the file
/// store a temp file renamed over `<secret>.pending`, on Secrets Manager
/// `PutSecretValue` with stage `AWSPENDING`.
pub async fn place_pending(env: &TestEnv, store: Store, secret_id: &str, value: &str) {
    match store {
        Store::Files => {
            let tmp = env.path(&format!("secrets/.{secret_id}.pending.tmp"));
            std::fs::write(&tmp, value).unwrap();
            std::fs::rename(&tmp, env.path(&format!("secrets/{secret_id}.pending"))).unwrap();
        }
        Store::Aws => {
            sm_client()
                .await
                .put_secret_value()
                .secret_id(secret_id)
                .secret_string(value)
                .version_stages("AWSPENDING")
                .send()
                .await
                .unwrap();
        }
    }
}

impl Fixture {
    async fn new(case: &Case, store: Store, grace: &str) -> (Fixture, String) {
        let env = TestEnv::new().await;
        let (_, old) = env.seed_key_in(case.api, "before-the-crash");
        let secret_id = match store {
            Store::Files => {
                std::fs::create_dir_all(env.path("secrets")).unwrap();
                std::fs::write(env.path("secrets/k"), &old).unwrap();
                "k".to_string()
            }
            Store::Aws => {
                let id = unique_secret_name("it/crash");
                sm_client()
                    .await
                    .create_secret()
                    .name(&id)
                    .secret_string(&old)
                    .send()
                    .await
                    .unwrap();
                id
            }
        };
        let store_name = match store {
            Store::Files => "files",
            Store::Aws => "aws",
        };
        let target = format!(r#"{{ store = "{store_name}", secret_id = "{secret_id}" }}"#);
        let extra = format!("{}\nrevoke = {{ grace = \"{grace}\" }}", case.policy_lines);
        env.write_config_case(case, &policy("p", &target, &extra));
        let mut placed = None;
        if case.assisted() {
            let (_, new) = env.seed_key_in(case.api, "placed-by-a-person");
            place_pending(&env, store, &secret_id, &new).await;
            placed = Some(new);
        }
        (
            Fixture {
                env,
                store,
                secret_id,
                placed,
            },
            old,
        )
    }

    async fn current(&self) -> String {
        match self.store {
            Store::Files => {
                std::fs::read_to_string(self.env.path(&format!("secrets/{}", self.secret_id)))
                    .unwrap()
            }
            Store::Aws => {
                let out = sm_client()
                    .await
                    .get_secret_value()
                    .secret_id(&self.secret_id)
                    .version_stage("AWSCURRENT")
                    .send()
                    .await
                    .unwrap();
                out.secret_string().unwrap().to_string()
            }
        }
    }

    async fn has_pending(&self) -> bool {
        match self.store {
            Store::Files => self
                .env
                .path(&format!("secrets/{}.pending", self.secret_id))
                .exists(),
            Store::Aws => {
                let out = sm_client()
                    .await
                    .describe_secret()
                    .secret_id(&self.secret_id)
                    .send()
                    .await
                    .unwrap();
                out.version_ids_to_stages()
                    .into_iter()
                    .flatten()
                    .any(|(_, s)| s.iter().any(|s| s == "AWSPENDING"))
            }
        }
    }

    /// `rekey rotate p --now` with the process aborting at `point`.
    async fn rotate_crashing_at(&self, point: &str) -> Run {
        let config = self.env.config_path();
        let args = ["rotate", "-c", config.to_str().unwrap(), "p", "--now"];
        let mut cmd = self.env.command(&args, &[("REKEY_FAILPOINT", point)]);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("finished within 60s")
            .expect("ran");
        self.env.keep(out)
    }

    /// Invariants 1 and 2 right after a crash.
    async fn assert_safe_after_crash(&self, old: &str, point: &str) {
        let current = self.current().await;
        assert!(
            self.env.works(&current),
            "{point}: the store's current key works after the crash"
        );
        if !self.env.live_secrets().contains(&old.to_string()) {
            assert_ne!(
                current, old,
                "{point}: the old key was revoked only after its successor became current"
            );
        }
    }
}

/// Every failpoint in turn, each in a fresh environment, for one provider and store.
pub async fn crash_matrix(case: &Case, store: Store, points: &[&str]) {
    for point in points {
        crash_and_recover(case, store, point).await;
    }
}

async fn crash_and_recover(case: &Case, store: Store, point: &str) {
    let (fx, old) = Fixture::new(case, store, "0s").await;
    let out = fx.rotate_crashing_at(point).await;
    assert_eq!(
        out.code, None,
        "{store:?}/{point}: the process aborted at the failpoint; stderr:\n{}",
        out.stderr
    );
    fx.assert_safe_after_crash(&old, point).await;

    fx.env.cmd("run", &["--once"]).await.assert_code(0);

    let current = fx.current().await;
    assert_ne!(
        current, old,
        "{store:?}/{point}: the rotation completed after the restart"
    );
    if let Some(placed) = &fx.placed {
        assert_eq!(
            &current, placed,
            "{store:?}/{point}: the placed key is current"
        );
    }
    fx.env.assert_settled(&current, &[]);
    assert!(
        !fx.has_pending().await,
        "{store:?}/{point}: no pending version is left"
    );
    let journal = fx.env.journal("p");
    assert!(
        journal["in_flight"].is_null(),
        "{store:?}/{point}: nothing left in flight"
    );
    assert_eq!(
        journal["current"]["label"],
        rekey::secret::redacted_label(&current.clone().into())
    );
    fx.env.assert_no_secret_leaked();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_the_file_store() {
    crash_matrix(&Case::openrouter(), Store::Files, FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_boundary_is_resumed_or_rolled_back_on_secrets_manager() {
    crash_matrix(&Case::openrouter(), Store::Aws, FAILPOINTS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_grace_waits_out_the_rest_of_it_before_revoking() {
    let (fx, old) = Fixture::new(&Case::openrouter(), Store::Files, "2s").await;
    assert_eq!(fx.rotate_crashing_at("promote").await.code, None);
    let new = fx.current().await;

    fx.env.cmd("run", &["--once"]).await.assert_code(0);
    assert!(
        fx.env.works(&old),
        "the old key lives on while the grace runs"
    );
    fx.env.assert_settled(&new, &[&old]);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    fx.env.cmd("run", &["--once"]).await.assert_code(0);
    fx.env.assert_settled(&new, &[]);
    fx.env.assert_no_secret_leaked();
}
