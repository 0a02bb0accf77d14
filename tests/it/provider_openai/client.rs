//! The OpenAI client against the simulator over HTTP: service accounts as
//! keys, paging, verification with the key itself, and each error class.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rekey::config::{ApiShape, ProviderConfig, ProviderKind, SecretRef};
use rekey::policy::VerifyMode;
use rekey::providers::openai::OpenAi;
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::secret::{label_matches, redacted_label};
use rekey::sim::{
    Api, Faults, RateLimitFault, SIM_OPENAI_DEFAULT_PROJECT, SIM_OPENAI_PROJECT, SimHandle,
    Simulator,
};
use secrecy::{ExposeSecret, SecretString};

pub(super) const ADMIN_KEY: &str = "sk-admin-ffffffffffffffffffffffffffffffffffffffffffff01";

pub(super) async fn spawn(faults: Faults) -> SimHandle {
    let sim = Simulator::new(ADMIN_KEY).with_faults(faults);
    sim.spawn().await.expect("simulator binds")
}

/// The entry's shared client, not yet scoped to a project.
fn unscoped(sim: &SimHandle, admin_key: &str) -> OpenAi {
    let config = ProviderConfig {
        name: "openai-prod".into(),
        kind: ProviderKind::OpenAi,
        base_url: sim.url(Api::OpenAi),
        management_key: SecretRef::Env("X".into()),
        request_timeout: Duration::from_secs(5),
        api: ApiShape::Reference,
        keys_path: None,
        workspace_id: None,
        limits: Default::default(),
    };
    OpenAi::new(&config, SecretString::from(admin_key)).expect("client builds")
}

fn client(sim: &SimHandle) -> OpenAi {
    unscoped(sim, ADMIN_KEY).in_project(SIM_OPENAI_PROJECT)
}

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn calls(sim: &SimHandle, endpoint: &str) -> u64 {
    sim.sim.call_counts().get(endpoint).copied().unwrap_or(0)
}

#[tokio::test]
async fn a_service_account_goes_through_create_list_get_and_delete() {
    let sim = spawn(Faults::default()).await;
    let openai = client(&sim);

    let created = openai.create_key(&spec("rekey-p-0193")).await.unwrap();
    assert!(created.id.starts_with("svc_acct_"), "{}", created.id);
    assert_eq!(created.name, "rekey-p-0193");
    assert_eq!(created.label, redacted_label(&created.secret));
    let held = sim.sim.keys();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].hash.as_str(), held[0].secret.as_str()),
        (created.id.as_str(), created.secret.expose_secret())
    );

    let listed = openai.list_keys().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].name.as_str()),
        (created.id.as_str(), "rekey-p-0193")
    );
    assert!(
        label_matches(&listed[0].label, &created.secret),
        "label from redacted_value: {}",
        listed[0].label
    );
    assert!(listed[0].created_at.is_some());
    let got = openai.get_key(&created.id).await.unwrap().expect("exists");
    assert_eq!(got.name, "rekey-p-0193");

    openai
        .verify_key(&created.secret, &VerifyMode::Models)
        .await
        .unwrap();
    openai.delete_key(&created.id).await.unwrap();
    assert!(
        !sim.sim.key_works(created.secret.expose_secret()),
        "deleting the account kills its key"
    );
    assert_eq!(openai.get_key(&created.id).await.unwrap(), None);
    openai
        .delete_key(&created.id)
        .await
        .expect("deleting a gone account succeeds");
}

#[tokio::test]
async fn listing_pages_through_accounts_and_keys_and_labels_each_account() {
    let sim = spawn(Faults::default()).await;
    let seeded: BTreeMap<String, String> = (0..150)
        .map(|i| sim.sim.insert_key_in(Api::OpenAi, &format!("sa-{i}")))
        .collect();

    let listed = client(&sim).list_keys().await.unwrap();

    assert_eq!(listed.len(), 150);
    for key in &listed {
        let secret = SecretString::from(seeded[&key.id].clone());
        assert!(
            label_matches(&key.label, &secret),
            "{} has its own key's label",
            key.id
        );
    }
    assert_eq!(calls(&sim, "list"), 4, "two pages of accounts, two of keys");
}

#[tokio::test]
async fn accounts_of_another_project_are_not_listed() {
    let sim = spawn(Faults::default()).await;
    sim.sim.insert_key_in(Api::OpenAi, "in-the-sim-project");
    let other = unscoped(&sim, ADMIN_KEY).in_project("proj_other");
    let created = other.create_key(&spec("mine")).await.unwrap();

    let listed = other.list_keys().await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        [created.id.as_str()]
    );
    assert_eq!(client(&sim).get_key(&created.id).await.unwrap(), None);
}

#[tokio::test]
async fn a_wrong_admin_key_is_unauthorized_after_exactly_one_call() {
    let sim = spawn(Faults::default()).await;
    let wrong = "sk-admin-0000000000000000000000000000000000000000000000";
    let openai = unscoped(&sim, wrong).in_project(SIM_OPENAI_PROJECT);

    let err = openai.list_keys().await.unwrap_err();

    assert!(
        matches!(err, ProviderError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("providers.openai-prod.management_key"),
        "{text}"
    );
    assert!(
        text.contains("invalid_api_key") && !text.contains(wrong),
        "{text}"
    );
    assert!(!err.is_retryable());
    assert_eq!(calls(&sim, "list"), 1);
}

#[tokio::test]
async fn a_project_key_used_as_admin_key_is_refused_with_403() {
    let sim = spawn(Faults::default()).await;
    let (_, project_key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let err = (unscoped(&sim, &project_key).in_project(SIM_OPENAI_PROJECT))
        .create_key(&spec("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_exhausted_quota_is_permanent_and_says_to_add_credits() {
    let sim = spawn(Faults {
        quota_exhausted: true,
        ..Faults::default()
    })
    .await;
    let (_, key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let chat = VerifyMode::Chat {
        model: "gpt-4o-mini".into(),
    };
    for mode in [VerifyMode::Models, chat] {
        let err = client(&sim)
            .verify_key(&SecretString::from(key.clone()), &mode)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ProviderError::Permanent {
                    status: Some(429),
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.is_retryable(), "{mode:?}");
        assert!(
            err.to_string().contains("quota is exhausted; add credits"),
            "{err}"
        );
    }
    assert_eq!((calls(&sim, "models"), calls(&sim, "chat")), (1, 1));
}

#[tokio::test]
async fn a_rate_limit_is_retryable_after_the_retry_after_given() {
    let fault = RateLimitFault {
        count: 1,
        retry_after_secs: 7,
    };
    let sim = spawn(Faults {
        rate_limit: [("create".into(), fault)].into(),
        ..Faults::default()
    })
    .await;
    let err = client(&sim).create_key(&spec("x")).await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(
        client(&sim).create_key(&spec("x")).await.is_ok(),
        "only one call was limited"
    );
}

#[tokio::test]
async fn a_server_error_is_transient() {
    let sim = spawn(Faults {
        error_rate: [("delete".into(), 1.0)].into(),
        ..Faults::default()
    })
    .await;
    let err = client(&sim).delete_key("svc_acct_abc").await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn the_default_project_is_refused_permanently_naming_project_id() {
    let sim = spawn(Faults::default()).await;
    let openai = unscoped(&sim, ADMIN_KEY).in_project(SIM_OPENAI_DEFAULT_PROJECT);
    let err = openai.create_key(&spec("x")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(400),
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("Default project cannot hold service accounts")
            && text.contains("project_id"),
        "{text}"
    );
    assert!(sim.sim.keys().is_empty());
}

#[tokio::test]
async fn an_unknown_project_is_permanent_and_names_project_id() {
    let sim = spawn(Faults::default()).await;
    let err = (unscoped(&sim, ADMIN_KEY).in_project("prj_typo"))
        .list_keys()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(404),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("no project prj_typo"), "{err}");
}

#[tokio::test]
async fn without_a_project_management_fails_but_verification_works() {
    let sim = spawn(Faults::default()).await;
    let shared = unscoped(&sim, ADMIN_KEY);
    let err = shared.create_key(&spec("x")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Permanent { status: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("needs a project_id"), "{err}");
    assert_eq!(calls(&sim, "create"), 0, "nothing was sent");

    let (_, key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    shared
        .verify_key(&SecretString::from(key), &VerifyMode::Models)
        .await
        .unwrap();
}

#[tokio::test]
async fn for_policy_scopes_the_shared_client_to_the_policys_project() {
    let sim = spawn(Faults::default()).await;
    let shared: Arc<dyn Provider> = Arc::new(unscoped(&sim, ADMIN_KEY));
    let config = format!(
        "[daemon]\nstate = \"file:/tmp/x\"\n[providers.openai-prod]\nkind = \"openai\"\nmanagement_key = \"env:X\"\n[stores.f]\nkind = \"file\"\ndir = \"/tmp/x\"\n[[policy]]\nname = \"p\"\nprovider = \"openai-prod\"\nmax_age = \"30d\"\nproject_id = \"{SIM_OPENAI_PROJECT}\"\ntarget = {{ store = \"f\", secret_id = \"k\" }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rekey.toml");
    std::fs::write(&path, config).unwrap();
    let config = rekey::config::load::load_file_with_env(&path, Vec::new()).unwrap();
    let scoped = shared
        .for_policy(config.policy("p").unwrap())
        .expect("a scoped client");

    let created = scoped.create_key(&spec("scoped")).await.unwrap();
    assert_eq!(sim.sim.keys()[0].extra["project_id"], SIM_OPENAI_PROJECT);
    assert_eq!(scoped.list_keys().await.unwrap()[0].id, created.id);
}

#[tokio::test]
async fn verification_needs_a_working_key_and_no_error_shows_one() {
    let sim = spawn(Faults {
        propagation_delay_ms: 60_000,
        ..Faults::default()
    })
    .await;
    let openai = client(&sim);
    let fresh = openai.create_key(&spec("fresh")).await.unwrap();
    let admin = SecretString::from(ADMIN_KEY);
    let chat = VerifyMode::Chat {
        model: "gpt-4o-mini".into(),
    };
    let errors = vec![
        openai
            .verify_key(&fresh.secret, &VerifyMode::Models)
            .await
            .unwrap_err(),
        openai.verify_key(&fresh.secret, &chat).await.unwrap_err(),
        openai
            .verify_key(&admin, &VerifyMode::Models)
            .await
            .unwrap_err(),
    ];
    let mut secrets = sim.sim.issued_secrets();
    secrets.push(ADMIN_KEY.to_string());
    for err in &errors {
        assert_eq!(err.kind(), "key_rejected", "{err}");
        assert!(err.to_string().contains("invalid_api_key"), "{err}");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!secrets.iter().any(|s| text.contains(s.as_str())), "{text}");
        }
    }
}

#[tokio::test]
async fn a_chat_check_on_a_reasoning_model_passes_because_it_sends_max_completion_tokens() {
    let sim = spawn(Faults::default()).await;
    let (_, key) = sim.sim.insert_key_in(Api::OpenAi, "app");
    let key = SecretString::from(key);
    for model in ["o3-mini", "o1", "gpt-5", "gpt-4o-mini"] {
        let mode = VerifyMode::Chat {
            model: model.into(),
        };
        let verified = client(&sim).verify_key(&key, &mode).await;
        assert!(verified.is_ok(), "{model}: {verified:?}");
    }
    assert_eq!(calls(&sim, "chat"), 4);
}

#[tokio::test]
async fn a_dashboard_made_account_is_listed_with_its_label_from_the_filtered_key_listing() {
    let sim = spawn(Faults::default()).await;
    let (id, secret) = sim.sim.insert_key_in(Api::OpenAi, "made-by-hand");
    let created = client(&sim).create_key(&spec("rekey-p-1")).await.unwrap();

    let listed = client(&sim).list_keys().await.unwrap();
    let label = |id: &str| {
        let found = listed.iter().find(|k| k.id == id).expect("listed");
        found.label.clone()
    };
    let hand_made = label(&id);
    assert!(
        label_matches(&hand_made, &SecretString::from(secret)),
        "the hand-made account's key is in the listing: {hand_made:?}"
    );
    assert!(label_matches(&label(&created.id), &created.secret));
}
