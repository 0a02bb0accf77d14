//! What an operator reads when something is wrong: AWS errors as one line
//! with a hint (real SDK errors from moto, the fault proxy, a dead port and
//! an empty credential chain), config problems all at once with environment
//! overrides named, help text for every argument, and a JSON 404 from the
//! admin API.

use std::time::Duration;

use rekey::aws_error::{Call, render, render_for};
use rekey::policy::{Format, Target};
use rekey::stores::aws::AwsSecretsManager;
use rekey::stores::{SecretStore, StoreError};

use crate::fault_proxy::{Action, FaultProxy, Rule};
use crate::helpers::{TestEnv, policy};
use crate::moto::{moto_url, sm_client, unique_secret_name};

/// One line, short, and none of the SDK's `Debug` output.
#[track_caller]
fn assert_one_line(line: &str) {
    assert!(!line.contains('\n'), "more than one line: {line}");
    assert!(line.len() < 400, "{} chars: {line}", line.len());
    for debug in [
        "DispatchFailure(",
        "ServiceError {",
        "raw: Response",
        "ErrorMetadata {",
    ] {
        assert!(!line.contains(debug), "Debug output ({debug}): {line}");
    }
}

fn target(secret_id: &str) -> Target {
    Target {
        store: "aws".into(),
        secret_id: secret_id.into(),
        lease: rekey::names::LeaseKey::aws("test", secret_id),
        format: Format::Raw,
        field: None,
        create: false,
    }
}

/// A loopback port nothing listens on (bound, then released).
async fn dead_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_missing_secret_is_one_line_with_code_and_hint() {
    let client = sm_client().await;
    let name = unique_secret_name("rekey-missing");
    let err = client
        .get_secret_value()
        .secret_id(&name)
        .send()
        .await
        .expect_err("the secret does not exist");
    let line = render_for(&client, "GetSecretValue", &name, &err);
    assert_one_line(&line);
    assert!(line.contains("(request id "), "{line}");
    assert!(
        line.starts_with(&format!(
            "GetSecretValue on {name}: ResourceNotFoundException"
        )),
        "{line}"
    );
    assert!(
        line.contains(&format!("secret {name} does not exist in us-east-1")),
        "{line}"
    );
}

#[tokio::test]
async fn access_denied_names_the_iam_action_the_principal_needs() {
    let proxy = FaultProxy::start(&moto_url()).await;
    let denied = Action::FailBefore(400, "AccessDeniedException");
    proxy.add(Rule::op("DescribeSecret").action(denied));
    let store = AwsSecretsManager::connect(
        "aws",
        "us-east-1",
        Some(&proxy.url()),
        Duration::from_secs(10),
    )
    .await;
    let err = store
        .read_current(&target("prod/llm"))
        .await
        .expect_err("denied");
    let StoreError::Denied { message, .. } = &err else {
        panic!("expected Denied, got {err}");
    };
    assert_one_line(message);
    assert!(
        message.starts_with(
            "DescribeSecret on prod/llm: AccessDeniedException: injected by the fault proxy"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("; the IAM principal needs secretsmanager:DescribeSecret on prod/llm"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_says_it_cannot_reach_secrets_manager() {
    let url = format!("http://127.0.0.1:{}", dead_port().await);
    let store =
        AwsSecretsManager::connect("aws", "us-east-1", Some(&url), Duration::from_secs(10)).await;
    let err = tokio::time::timeout(
        Duration::from_secs(60),
        store.read_current(&target("prod/llm")),
    )
    .await
    .expect("the SDK gives up within a minute")
    .expect_err("nothing listens");
    let StoreError::Transient { message, .. } = &err else {
        panic!("expected Transient, got {err}");
    };
    assert_one_line(message);
    assert!(
        message.contains(&format!("cannot reach Secrets Manager at {url}: ")),
        "{message}"
    );
}

#[tokio::test]
async fn a_timeout_renders_as_cannot_reach() {
    // The renderer alone, for an error of every kind the SDK can raise
    // without a server: a timeout has no cause chain.
    let call = Call {
        operation: "GetSecretValue",
        secret_id: "s",
        region: Some("eu-west-1"),
        endpoint: None,
    };
    let err: aws_sdk_secretsmanager::error::SdkError<
        aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError,
    > = aws_sdk_secretsmanager::error::SdkError::timeout_error("deadline exceeded");
    let line = render(call, &err);
    assert_eq!(
        line,
        "GetSecretValue on s: cannot reach Secrets Manager at \
         https://secretsmanager.eu-west-1.amazonaws.com: timed out before an answer"
    );
}

/// `rekey rotate --dry-run` against moto with an empty credential chain.
#[tokio::test]
async fn no_credentials_in_the_chain_says_how_to_provide_them() {
    let env = TestEnv::new().await;
    let secret = unique_secret_name("rekey-nocreds");
    env.write_config(&policy(
        "p",
        &format!(r#"{{ store = "aws", secret_id = "{secret}", format = "raw" }}"#),
        "",
    ));
    let empty = env.path("empty-aws-file");
    std::fs::write(&empty, "").unwrap();
    let config = env.config_path();
    let mut cmd = env.command(
        &["rotate", "-c", config.to_str().unwrap(), "p", "--dry-run"],
        &[
            ("AWS_PROFILE", "rekey-no-such-profile"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", empty.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", empty.to_str().unwrap()),
        ],
    );
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        cmd.env_remove(var);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("rekey finished within 2 minutes")
        .expect("rekey runs");
    let run = env.keep(out);
    assert_ne!(run.code, Some(0), "{run:?}");
    let all = format!("{}{}", run.stdout, run.stderr);
    let line = all
        .lines()
        .find(|l| l.contains("no AWS credentials found"))
        .unwrap_or_else(|| panic!("no credentials hint in:\n{all}"));
    assert!(
        line.contains(
            "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or attach an IAM role"
        ),
        "{line}"
    );
    assert!(
        !run.stderr.contains("aws_config") && !run.stderr.contains("aws_smithy"),
        "the SDK's own warnings are capped at error:\n{}",
        run.stderr
    );
    for debug in ["DispatchFailure(", "TokenError {", "raw: Response"] {
        assert!(!all.contains(debug), "Debug output ({debug}):\n{all}");
    }
}

#[tokio::test]
async fn rotate_help_explains_every_argument() {
    let env = TestEnv::new().await;
    let run = env.rekey(&["rotate", "--help"]).await;
    run.assert_code(0);
    for help in [
        "Path to the rekey.toml config",
        "Name of the policy (as in [[policy]] name)",
        "Rotate even if not due",
        "Grace before the old key is revoked",
        "create nothing",
        "Wait out the grace",
    ] {
        assert!(
            run.stdout.contains(help),
            "{help:?} missing:\n{}",
            run.stdout
        );
    }
    let status = env.rekey(&["status", "--help"]).await;
    assert!(status.stdout.contains("Print JSON"), "{}", status.stdout);
}

#[tokio::test]
async fn every_unknown_field_and_env_override_is_reported_by_check_with_exit_2() {
    let env = TestEnv::new().await;
    env.write_config(&policy(
        "p",
        r#"{ store = "files", secret_id = "k", create = true }"#,
        "colour = \"blue\"",
    ));
    let config = env.config_path();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("catch_up_jitter = \"0s\"", "catch_up_jiter = \"0s\"")
        .replace("kind = \"file\"", "kind = \"file\"\ndirr = \"x\"");
    std::fs::write(&config, text).unwrap();
    let run = env
        .rekey_env(
            &["check", "-c", config.to_str().unwrap()],
            &[
                ("REKEY_DAEMON__MAX_CONCURENT_ROTATIONS", "2"),
                ("REKEY_DAEMON__SWEEP_TIMEOUT", "forever"),
            ],
        )
        .await;
    run.assert_code(2);
    for expected in [
        "daemon.catch_up_jiter: unknown field; did you mean \"catch_up_jitter\"?",
        "stores.files.dirr: unknown field; did you mean \"dir\"?",
        "policy[0].colour: unknown field; expected one of name,",
        "daemon.max_concurent_rotations: unknown field (from the environment variable \
         REKEY_DAEMON__MAX_CONCURENT_ROTATIONS); did you mean \"max_concurrent_rotations\"?",
        "(from the environment variable REKEY_DAEMON__SWEEP_TIMEOUT)",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected:?} missing:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("5 problems:"), "{}", run.stderr);
    let sweep = run
        .stderr
        .lines()
        .find(|l| l.contains("daemon.sweep_timeout: "));
    assert!(
        sweep.is_some_and(|l| l.contains("REKEY_DAEMON__SWEEP_TIMEOUT") && !l.contains("forever")),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains('`'),
        "a stray backtick:\n{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_answers_an_unknown_path_and_a_wrong_method_in_json() {
    let env = TestEnv::new().await;
    crate::daemon_proc::write_config_with_daemon(
        &env,
        "",
        &policy(
            "p",
            r#"{ store = "files", secret_id = "k", create = true }"#,
            "",
        ),
    );
    let daemon = crate::daemon_proc::RunningDaemon::start(&env, &[]).await;
    for (path, status, body) in [
        (
            "/nope",
            404,
            serde_json::json!({"error": "not_found", "message": "no route GET /nope"}),
        ),
        (
            "/v1/policies/p/rotate",
            405,
            serde_json::json!({
                "error": "method_not_allowed",
                "message": "GET is not allowed on /v1/policies/p/rotate"
            }),
        ),
    ] {
        let response = daemon.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert_eq!(content_type, "application/json", "{path}");
        let got: serde_json::Value = response.json().await.expect("a JSON body");
        assert_eq!(got, body, "{path}");
    }
}
