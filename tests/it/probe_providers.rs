//! Readiness asks each provider one cheap question: the first page of its
//! key list, however many pages the account has, and a 429 is asked again
//! within the probe's time limit instead of failing the probe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rekey::daemon::probe::probe_provider;
use rekey::providers::{self, Provider, ProviderError};
use rekey::sim::{Faults, RateLimitFault};
use secrecy::SecretString;

use crate::helpers::{Case, TestEnv, policy};

/// The env's `[providers.sim]` client, as the daemon builds it.
fn sim_provider(env: &TestEnv) -> Arc<dyn Provider> {
    sim_provider_case(env, &Case::openrouter())
}

/// The `[providers.sim]` client speaking `case`'s API.
fn sim_provider_case(env: &TestEnv, case: &Case) -> Arc<dyn Provider> {
    env.write_config_case(
        case,
        &policy(
            "p",
            r#"{ store = "files", secret_id = "p", create = true }"#,
            &case.policy_lines,
        ),
    );
    let config = rekey::config::load_file(&env.config_path()).expect("the test config loads");
    let policy = config.policies.first().expect("one policy");
    let shared = providers::build(&config.providers[&policy.provider], management_key(env))
        .expect("client builds");
    // Scoped the way readiness scopes it (OpenAI: the policy's project).
    shared.for_policy(policy).unwrap_or(shared)
}

/// The simulator takes one management key for every API.
fn management_key(env: &TestEnv) -> SecretString {
    SecretString::from(env.mgmt_key.clone())
}

fn all_calls(env: &TestEnv) -> u64 {
    env.sim.sim.call_counts().values().sum()
}

#[tokio::test]
async fn every_provider_kind_probes_with_one_call() {
    for case in [
        Case::openrouter(),
        Case::arouter(),
        Case::arouter_guide(),
        Case::litellm(),
        Case::openai(),
        Case::anthropic(),
    ] {
        let env = TestEnv::new().await;
        let provider = sim_provider_case(&env, &case);
        let before = all_calls(&env);
        probe_provider(provider.as_ref(), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.api.as_str()));
        assert_eq!(all_calls(&env) - before, 1, "{}", case.api.as_str());
    }
}

fn lists(env: &TestEnv) -> u64 {
    env.sim.sim.call_counts().get("list").copied().unwrap_or(0)
}

fn rate_limit_lists(env: &TestEnv, count: u32) {
    env.sim.sim.set_faults(Faults {
        rate_limit: BTreeMap::from([(
            "list".to_string(),
            RateLimitFault {
                count,
                retry_after_secs: 1,
            },
        )]),
        ..Faults::default()
    });
}

#[tokio::test]
async fn the_probe_reads_one_page_of_a_key_list_of_many_pages() {
    let env = TestEnv::new().await;
    for i in 0..250 {
        env.seed_key(&format!("existing-{i}"));
    }
    let provider = sim_provider(&env);
    let listed = provider.list_keys().await.expect("the whole list");
    assert!(listed.len() >= 250, "{} keys listed", listed.len());
    let whole_list = lists(&env);
    assert!(whole_list >= 3, "the whole list took {whole_list} pages");

    probe_provider(provider.as_ref(), Duration::from_secs(10))
        .await
        .expect("the probe succeeds");
    assert_eq!(lists(&env) - whole_list, 1, "one call for the probe");
}

#[tokio::test]
async fn a_provider_answering_429_twice_then_ok_is_ready() {
    let env = TestEnv::new().await;
    let provider = sim_provider(&env);
    rate_limit_lists(&env, 2);

    probe_provider(provider.as_ref(), Duration::from_secs(10))
        .await
        .expect("ready after two 429s");
    assert_eq!(lists(&env), 3, "two refused calls, then the answer");
}

#[tokio::test]
async fn a_429_whose_retry_after_does_not_fit_the_budget_fails_the_probe() {
    let env = TestEnv::new().await;
    let provider = sim_provider(&env);
    rate_limit_lists(&env, 100);

    let err = probe_provider(provider.as_ref(), Duration::from_millis(500))
        .await
        .expect_err("still rate limited");
    assert!(matches!(err, ProviderError::RateLimited { .. }), "{err}");
    assert_eq!(lists(&env), 1, "no retry when its pause does not fit");
}

/// A fleet of secrets in one store entry costs readiness one read: it
/// proves the credentials and the way to the store, not each secret.
#[tokio::test]
async fn readiness_reads_one_secret_per_store_entry() {
    let env = TestEnv::new().await;
    let proxy = crate::fault_proxy::FaultProxy::start(&crate::moto::moto_url()).await;
    let policies: String = (0..5)
        .map(|i| {
            let secret = crate::moto::unique_secret_name("it/probe");
            let target = format!(r#"{{ store = "aws", secret_id = "{secret}", create = true }}"#);
            policy(&format!("p{i}"), &target, "")
        })
        .collect();
    env.write_config(&policies);
    crate::helpers::management_key_from_file(&env);
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    let text = text.replace(&crate::moto::moto_url(), &proxy.url());
    std::fs::write(env.config_path(), text).unwrap();
    let config = rekey::config::load_file(&env.config_path()).expect("the test config loads");
    let app = rekey::app::App::build(config).await.expect("app builds");

    rekey::daemon::probe::probe(&app).await.expect("ready");
    assert_eq!(
        proxy.seen("GetSecretValue") + proxy.seen("DescribeSecret"),
        1,
        "one read for five secrets in one store entry"
    );
    assert!(all_calls(&env) >= 1, "the provider was asked too");
}
