//! Invariants under hostile conditions (DESIGN.md: "Ambiguous outcomes are
//! resolved by reading the world"): provider calls that take effect and then
//! answer badly, AWS calls that land and fail (a fault proxy in front of
//! moto, the real SDK), file operations that fail at every write, rename and
//! fsync, and panics. After each: the store's current key works, a key is
//! revoked only after its successor is current, and once the next rotation
//! succeeded exactly one key is alive and it is the store's current value;
//! nothing panicked and no key reached any output.

mod aws;
mod files;
mod first_key;
mod provider;

use crate::crash_matrix::Store;
use crate::helpers::{Run, TestEnv, policy};
use crate::moto::{sm_client, unique_secret_name};

/// One secret holding a key a person made, and a policy `p` on it.
pub struct Secret {
    pub env: TestEnv,
    pub store: Store,
    pub id: String,
    pub old: String,
}

impl Secret {
    /// `daemon_lines` go into `[daemon]` (e.g. `sweep_timeout = "2s"`).
    pub async fn new(env: TestEnv, store: Store, daemon_lines: &str) -> Secret {
        let (_, old) = env.seed_key("made-by-a-person");
        let id = match store {
            Store::Files => {
                std::fs::create_dir_all(env.path("secrets")).unwrap();
                std::fs::write(env.path("secrets/k"), &old).unwrap();
                "k".to_string()
            }
            Store::Aws => {
                let id = unique_secret_name("it/hostile");
                let client = sm_client().await;
                let create = client.create_secret().name(&id).secret_string(&old);
                create.send().await.unwrap();
                id
            }
        };
        let store_name = match store {
            Store::Files => "files",
            Store::Aws => "aws",
        };
        let target = format!(r#"{{ store = "{store_name}", secret_id = "{id}" }}"#);
        env.write_config(&policy("p", &target, r#"revoke = { grace = "0s" }"#));
        let path = env.config_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen("[daemon]\n", &format!("[daemon]\n{daemon_lines}\n"), 1);
        std::fs::write(&path, text).unwrap();
        Secret {
            env,
            store,
            id,
            old,
        }
    }

    /// A first, clean rotation (the person's key is adopted and revoked), so
    /// that later faults meet a rotation and not the adoption's listing;
    /// then the simulator answers with `faults`. `old` becomes the new key.
    pub async fn rotated_once_then(&mut self, faults: rekey::sim::Faults) {
        self.rotate_now().await.assert_code(0);
        self.old = self.current().await.expect("a current key");
        self.env.sim.sim.set_faults(faults);
    }

    /// What applications read now.
    pub async fn current(&self) -> Option<String> {
        match self.store {
            Store::Files => std::fs::read_to_string(self.env.path("secrets/k")).ok(),
            Store::Aws => {
                let client = sm_client().await;
                let get = client.get_secret_value().secret_id(&self.id);
                let out = get.version_stage("AWSCURRENT").send().await.ok()?;
                out.secret_string().map(str::to_string)
            }
        }
    }

    pub async fn rotate_now(&self) -> Run {
        self.env
            .cmd("rotate", &["p", "--now", "--grace", "0"])
            .await
    }

    /// Invariants 1 and 2 at any moment: the current key works; if the old
    /// key is gone, its successor is current.
    pub async fn assert_safe(&self, when: &str) {
        let current = self
            .current()
            .await
            .expect("the secret has a current value");
        assert!(
            self.env.works(&current),
            "{when}: the store's current key works at the provider"
        );
        if !self.env.live_secrets().contains(&self.old) {
            assert_ne!(
                current, self.old,
                "{when}: the old key was revoked only once its successor was current"
            );
        }
    }

    /// Settled: exactly one key is alive, it is the current value, and it
    /// is not the old key; no panic and no key in any output.
    pub async fn assert_one_live_key_and_current(&self, when: &str) {
        let current = self
            .current()
            .await
            .expect("the secret has a current value");
        assert_ne!(current, self.old, "{when}: a new key is current");
        assert_eq!(
            self.env.live_secrets(),
            vec![current.clone()],
            "{when}: exactly one key is alive, the store's current one"
        );
        assert!(self.env.works(&current), "{when}: the current key works");
        self.env.assert_no_secret_leaked();
    }

    /// Rotates until one succeeds (at most `tries`), checking the invariants
    /// after every attempt.
    pub async fn rotate_until_ok(&self, when: &str, tries: usize) {
        for attempt in 1..=tries {
            let run = self.rotate_now().await;
            assert_no_panic(&run, when);
            self.assert_safe(&format!("{when}, attempt {attempt}"))
                .await;
            if run.code == Some(0) {
                return self.assert_one_live_key_and_current(when).await;
            }
        }
        panic!("{when}: no rotation succeeded in {tries} tries");
    }
}

#[track_caller]
pub fn assert_no_panic(run: &Run, when: &str) {
    assert_ne!(
        run.code,
        Some(101),
        "{when}: rekey panicked:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked at"),
        "{when}: a panic was printed:\n{}",
        run.stderr
    );
}
