//! Secrets Manager SDK errors as one line an operator can act on:
//! `<Operation> on <secret id>: <AWS error code>: <message> (request id
//! <id>); <hint>`. The SDK's `Debug` output (nested structs, raw responses,
//! kilobytes) never reaches a message: only the error code, AWS's message,
//! the request id and the `Display` text of dispatch causes do, none of which
//! carries a secret value. Used by the AWS store and by `aws-sm:` credential
//! references, so both say the same thing about the same failure.

use std::error::Error;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::RequestId;

/// What a one-line message can say about one call.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The API operation, as AWS names it (`GetSecretValue`).
    pub operation: &'a str,
    pub secret_id: &'a str,
    /// The client's region, when it has one.
    pub region: Option<&'a str>,
    /// The endpoint the client talks to, when not AWS's own.
    pub endpoint: Option<&'a str>,
}

/// A message is one line and never longer than this (a dispatch cause may
/// chain many errors).
const MAX_LEN: usize = 380;

const CREDENTIALS_HINT: &str = "no AWS credentials found: set AWS_PROFILE or \
     AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or attach an IAM role (IRSA/instance profile)";

const KMS_HINT: &str =
    "the IAM principal needs kms:Decrypt / kms:GenerateDataKey on the secret's KMS key";

/// The one-line rendering of `err`, returned by `call`.
pub fn render<E>(call: Call<'_>, err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let head = format!("{} on {}", call.operation, call.secret_id);
    let line = match err {
        SdkError::ServiceError(_) => service(call, &head, err),
        SdkError::TimeoutError(_) => format!(
            "{head}: {}",
            unreachable(call, "timed out before an answer")
        ),
        SdkError::DispatchFailure(_) => dispatch(call, &head, err),
        SdkError::ResponseError(_) => {
            format!("{head}: the answer could not be read: {}", causes(err))
        }
        SdkError::ConstructionFailure(_) => {
            format!("{head}: the request could not be built: {}", causes(err))
        }
        _ => format!("{head}: {}", causes(err)),
    };
    one_line(&line)
}

/// [`render`] for a call of `client` (its region; AWS's own endpoint).
pub fn render_for<E>(
    client: &aws_sdk_secretsmanager::Client,
    operation: &str,
    secret_id: &str,
    err: &SdkError<E>,
) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let call = Call {
        operation,
        secret_id,
        region: client.config().region().map(|r| r.as_ref()),
        endpoint: None,
    };
    render(call, err)
}

fn service<E>(call: Call<'_>, head: &str, err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let code = err.code().unwrap_or("unknown error code");
    let mut line = format!("{head}: {code}");
    if let Some(message) = err.message().filter(|m| !m.is_empty()) {
        line.push_str(&format!(": {message}"));
    }
    if let Some(id) = err.request_id() {
        line.push_str(&format!(" (request id {id})"));
    }
    if let Some(hint) = hint(call, code) {
        line.push_str(&format!("; {hint}"));
    }
    line
}

/// The hint for an AWS error code, if it is one of the common ones.
pub fn hint(call: Call<'_>, code: &str) -> Option<String> {
    let hint = match code {
        "AccessDeniedException" | "AccessDenied" => format!(
            "the IAM principal needs secretsmanager:{} on {}",
            iam_action(call.operation),
            call.secret_id
        ),
        "ResourceNotFoundException" => match call.region {
            Some(region) => format!("secret {} does not exist in {region}", call.secret_id),
            None => format!("secret {} does not exist", call.secret_id),
        },
        "DecryptionFailure" | "EncryptionFailure" => KMS_HINT.to_string(),
        c if c.starts_with("KMS") || c.starts_with("Kms") => KMS_HINT.to_string(),
        "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch" => {
            "the AWS credentials were refused: check they are current and for this account"
                .to_string()
        }
        _ => return None,
    };
    Some(hint)
}

/// The IAM action that allows `operation`: every Secrets Manager API
/// operation is authorised by the action of the same name.
fn iam_action(operation: &str) -> &str {
    operation
}

/// A call that never got an answer: no credentials, or no connection.
fn dispatch<E>(call: Call<'_>, head: &str, err: &SdkError<E>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let cause = causes(err);
    if is_credentials(&cause) {
        return format!("{head}: {CREDENTIALS_HINT} ({cause})");
    }
    format!("{head}: {}", unreachable(call, &cause))
}

fn unreachable(call: Call<'_>, cause: &str) -> String {
    let endpoint = match (call.endpoint, call.region) {
        (Some(endpoint), _) => endpoint.to_string(),
        (None, Some(region)) => format!("https://secretsmanager.{region}.amazonaws.com"),
        (None, None) => "its endpoint (no region is set)".to_string(),
    };
    format!("cannot reach Secrets Manager at {endpoint}: {cause}")
}

/// Whether the chain of causes is the credential chain finding nothing
/// (`CredentialsNotLoaded`, an IMDS token refused, no profile).
pub fn is_credentials(cause: &str) -> bool {
    let cause = cause.to_ascii_lowercase();
    [
        "credentials",
        "credential provider",
        "imds",
        "token",
        "profile",
        "identity",
    ]
    .iter()
    .any(|word| cause.contains(word))
}

/// The `Display` text of every error under `err`, without repeats: the
/// SDK's own layer says only "dispatch failure", the cause is below.
pub fn causes(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        return err.to_string();
    }
    parts.join(": ")
}

/// Newlines and runs of spaces become one space; past [`MAX_LEN`] the
/// line is cut at a character boundary.
pub fn one_line(text: &str) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX_LEN {
        let mut cut = MAX_LEN;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &'static str) -> Call<'static> {
        Call {
            operation,
            secret_id: "prod/llm",
            region: Some("eu-west-1"),
            endpoint: None,
        }
    }

    #[test]
    fn common_codes_get_their_hint() {
        let get = call("GetSecretValue");
        let cases = [
            (
                "AccessDeniedException",
                "the IAM principal needs secretsmanager:GetSecretValue on prod/llm",
            ),
            (
                "ResourceNotFoundException",
                "secret prod/llm does not exist in eu-west-1",
            ),
            ("DecryptionFailure", KMS_HINT),
            ("KMSAccessDeniedException", KMS_HINT),
            ("KMSInvalidStateException", KMS_HINT),
        ];
        for (code, want) in cases {
            assert_eq!(hint(get, code).as_deref(), Some(want), "{code}");
        }
        let put = call("PutSecretValue");
        assert_eq!(
            hint(put, "AccessDeniedException").as_deref(),
            Some("the IAM principal needs secretsmanager:PutSecretValue on prod/llm")
        );
        assert_eq!(hint(get, "InvalidParameterException"), None);
    }

    #[test]
    fn credentials_words_in_a_dispatch_cause_mean_no_credentials() {
        assert!(is_credentials(
            "failed to load IMDS session token: TokenError"
        ));
        assert!(is_credentials(
            "the credential provider was not enabled: no providers in chain provided credentials"
        ));
        assert!(!is_credentials(
            "io error: client error (Connect): tcp connect error: Connection refused (os error 111)"
        ));
    }

    #[test]
    fn long_or_multi_line_text_becomes_one_bounded_line() {
        let line = one_line(&format!("a\n  b\t{}", "é".repeat(400)));
        assert!(line.starts_with("a b é"));
        assert!(!line.contains('\n'));
        assert!(line.len() <= MAX_LEN + '…'.len_utf8());
    }
}
