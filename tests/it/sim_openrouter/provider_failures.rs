//! How the OpenRouter client classifies the simulator's faults, and that no
//! error ever shows a key.

use std::collections::BTreeMap;
use std::time::Duration;

use rekey::policy::VerifyMode;
use rekey::providers::openrouter::OpenRouter;
use rekey::providers::{KeySpec, Provider, ProviderError};
use rekey::sim::{Faults, RateLimitFault};
use secrecy::{ExposeSecret, SecretString};

use super::{MANAGEMENT_KEY, client, client_with, config, spawn_sim};

fn spec(name: &str) -> KeySpec {
    KeySpec {
        name: name.to_string(),
        ..KeySpec::default()
    }
}

fn one(endpoint: &str, value: f64) -> BTreeMap<String, f64> {
    [(endpoint.to_string(), value)].into()
}

#[tokio::test]
async fn a_429_is_rate_limited_with_the_simulators_retry_after() {
    let fault = RateLimitFault {
        count: 1,
        retry_after_secs: 42,
    };
    let sim = spawn_sim(Faults {
        rate_limit: [("list".into(), fault)].into(),
        ..Faults::default()
    })
    .await;
    let or = client(&sim);
    let err = or.list_keys().await.unwrap_err();
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(42)));
    assert!(
        or.list_keys().await.is_ok(),
        "only the configured number of calls is limited"
    );
}

#[tokio::test]
async fn a_wrong_management_key_is_unauthorized_and_names_the_entry() {
    let sim = spawn_sim(Faults::default()).await;
    let wrong = "sk-or-v1-0000000000000000000000000000000000000000000000000000000000000000";
    let err = client_with(&sim.base_url, wrong)
        .list_keys()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("or-test"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_normal_key_used_as_management_key_is_unauthorized() {
    let sim = spawn_sim(Faults::default()).await;
    let (_, normal) = sim.sim.insert_key("normal");
    let err = client_with(&sim.base_url, &normal)
        .create_key(&spec("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::Unauthorized { status: 403, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn keys_made_while_new_keys_are_rejected_never_verify() {
    let sim = spawn_sim(Faults {
        reject_new_keys: true,
        ..Faults::default()
    })
    .await;
    let or = client(&sim);
    let created = or.create_key(&spec("doomed")).await.unwrap();
    sim.sim.set_faults(Faults::default());
    let err = or
        .verify_key(&created.secret, &VerifyMode::KeyInfo)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "key_rejected");
    assert!(!sim.sim.key_works(created.secret.expose_secret()));
}

#[tokio::test]
async fn verification_uses_the_key_under_test_not_the_management_key() {
    let sim = spawn_sim(Faults::default()).await;
    let or = client(&sim);
    let management = SecretString::from(MANAGEMENT_KEY);
    let err = or
        .verify_key(&management, &VerifyMode::KeyInfo)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        "key_rejected",
        "the management key cannot pass for a normal key"
    );

    let (hash, secret) = sim.sim.insert_key("old");
    or.disable_key(&hash).await.unwrap();
    let err = or
        .verify_key(&SecretString::from(secret), &VerifyMode::KeyInfo)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "key_rejected", "a disabled key is rejected");
}

#[tokio::test]
async fn a_500_fault_is_transient() {
    let sim = spawn_sim(Faults {
        error_rate: one("get", 1.0),
        ..Faults::default()
    })
    .await;
    let err = client(&sim).get_key("abc").await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_slow_provider_times_out_as_transient() {
    let latency = [("*".to_string(), 2_000)].into();
    let sim = spawn_sim(Faults {
        latency_ms: latency,
        ..Faults::default()
    })
    .await;
    let mut cfg = config(&sim.base_url);
    cfg.request_timeout = Duration::from_millis(200);
    let or = OpenRouter::new(&cfg, SecretString::from(MANAGEMENT_KEY)).unwrap();
    let err = or.list_keys().await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient { .. }), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn an_unreachable_provider_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
    drop(listener);
    let err = client_with(&base, MANAGEMENT_KEY)
        .list_keys()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "transient", "{err}");
}

#[tokio::test]
async fn no_error_shows_a_key() {
    let sim = spawn_sim(Faults {
        propagation_delay_ms: 60_000,
        ..Faults::default()
    })
    .await;
    let or = client(&sim);
    let fresh = or.create_key(&spec("fresh")).await.unwrap();
    let mut errors = vec![
        or.verify_key(&fresh.secret, &VerifyMode::KeyInfo)
            .await
            .unwrap_err(),
        or.verify_key(&fresh.secret, &VerifyMode::Chat { model: "m".into() })
            .await
            .unwrap_err(),
        client_with(&sim.base_url, "sk-or-v1-wrong")
            .list_keys()
            .await
            .unwrap_err(),
    ];
    sim.sim.set_faults(Faults {
        error_rate: one("*", 1.0),
        ..Faults::default()
    });
    errors.push(or.create_key(&spec("x")).await.unwrap_err());
    errors.push(or.delete_key(&fresh.id).await.unwrap_err());

    let mut secrets = sim.sim.issued_secrets();
    secrets.extend([MANAGEMENT_KEY.to_string(), "sk-or-v1-wrong".to_string()]);
    for err in &errors {
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!secrets.iter().any(|s| text.contains(s.as_str())), "{text}");
        }
    }
    assert_eq!(errors.len(), 5);
}

#[tokio::test]
async fn a_redirect_is_not_followed_with_the_management_key() {
    use axum::response::Redirect;
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(|| async { Redirect::temporary("http://127.0.0.1:9/keys") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let err = client_with(&base, MANAGEMENT_KEY)
        .list_keys()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Permanent {
                status: Some(307),
                ..
            }
        ),
        "{err:?}"
    );
    server.abort();
}
