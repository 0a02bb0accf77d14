//! The process is aborted (failpoints, like SIGKILL: no unwinding) at every
//! step boundary, on both stores. After each crash, and again after the
//! restart that resumes or rolls back, DESIGN.md's invariants must hold:
//! the store's current key works, the old key is revoked only once its
//! successor is current, no key is left alive unaccounted for, and no key
//! appears in any output or journal. For an assisted provider (a person
//! places the new key) the fixture places a console-made key as pending
//! before the crash, and the rotation must end with that key current.
//!
//! The submodules crash deeper: inside rollback, during the orphan sweep,
//! twice (a second crash while recovering), the daemon (`run`) rather than
//! `rotate`, and force two processes to overlap on one secret's lease.

mod daemon;
mod lease;
mod recovery;
mod rollback;

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
        self.crashing_at(&["rotate", "p", "--now"], point).await
    }

    /// `rekey <command> -c <config> <rest...>` with the process aborting at
    /// `point`; asserts it did abort there (no exit code: killed by SIGABRT).
    async fn crashing_at(&self, command: &[&str], point: &str) -> Run {
        let config = self.env.config_path();
        let mut args = vec![command[0], "-c", config.to_str().unwrap()];
        args.extend_from_slice(&command[1..]);
        let mut cmd = self.env.command(&args, &[("REKEY_FAILPOINT", point)]);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{args:?} reached {point} within 60s"))
            .expect("ran");
        let run = self.env.keep(out);
        assert_eq!(
            run.code, None,
            "{:?}/{point}: the process aborted at the failpoint; stderr:\n{}",
            self.store, run.stderr
        );
        assert!(
            run.stderr.contains(&format!("failpoint {point}: aborting")),
            "{:?}/{point}: the abort was the failpoint's; stderr:\n{}",
            self.store,
            run.stderr
        );
        run
    }

    /// The journal of `p`, or `Null` before one is written.
    fn journal_or_null(&self) -> serde_json::Value {
        let path = self.env.path("state/policies/p.json");
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Invariants 1–4 right after a crash (`when` names it): the store's
    /// current key works; the old key is gone only if its successor is
    /// current; every key alive at the provider is accounted for — the
    /// current one, the old one, a key a person placed, or a key whose name
    /// carries the id of the rotation the journal holds in flight (which the
    /// restart resumes or sweeps for); and no key appears in any output or
    /// file.
    async fn assert_invariants_after_crash(&self, old: &str, when: &str) {
        let current = self.current().await;
        assert!(
            self.env.works(&current),
            "{when}: the store's current key works after the crash"
        );
        if !self.env.live_secrets().contains(&old.to_string()) {
            assert_ne!(
                current, old,
                "{when}: the old key was revoked only after its successor became current"
            );
        }
        let journal = self.journal_or_null();
        let in_flight = journal["in_flight"]["id"].as_str();
        for key in self.env.sim.sim.keys().into_iter().filter(|k| !k.disabled) {
            let accounted = key.secret == current
                || key.secret == old
                || self.placed.as_ref() == Some(&key.secret)
                || in_flight.is_some_and(|id| key.name.contains(id));
            assert!(
                accounted,
                "{when}: key {} ({}) is alive but neither current, old, placed nor \
                 named by the rotation in flight ({in_flight:?}): an orphan",
                key.hash, key.name
            );
        }
        self.env.assert_no_secret_leaked();
    }

    /// After the recovering run: a new key is current (the placed one, when
    /// assisted), it is the only key alive, nothing is pending or in flight,
    /// the journal names the current key, and no key leaked.
    async fn assert_rotated(&self, old: &str, when: &str) {
        let current = self.current().await;
        assert_ne!(
            current, old,
            "{when}: the rotation completed after the restart"
        );
        if let Some(placed) = &self.placed {
            assert_eq!(&current, placed, "{when}: the placed key is current");
        }
        self.env.assert_settled(&current, &[]);
        assert!(
            !self.has_pending().await,
            "{when}: no pending version is left"
        );
        let journal = self.env.journal("p");
        assert!(
            journal["in_flight"].is_null(),
            "{when}: nothing left in flight: {journal}"
        );
        assert_eq!(
            journal["current"]["label"],
            rekey::secret::redacted_label(&current.clone().into()),
            "{when}: the journal names the current key"
        );
        self.env.assert_no_secret_leaked();
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
    fx.rotate_crashing_at(point).await;
    let when = format!("{store:?}/{point}");
    fx.assert_invariants_after_crash(&old, &format!("{when}, after the crash"))
        .await;

    fx.env.cmd("run", &["--once"]).await.assert_code(0);
    fx.assert_rotated(&old, &format!("{when}, after the restart"))
        .await;
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
