//! Classifies Secrets Manager SDK errors into [`StoreError`] kinds, so the
//! rotation knows whether to retry, stop, or tell the operator about access.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::AwsSecretsManager;
use crate::aws_error::{self, Call};
use crate::policy::Target;
use crate::stores::StoreError;

/// The store's errors, each naming the store entry and the secret.
impl AwsSecretsManager {
    pub(super) fn error<E>(&self, operation: &str, target: &Target, err: SdkError<E>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let call = Call {
            operation,
            secret_id: &target.secret_id,
            region: self.client.config().region().map(|r| r.as_ref()),
            endpoint: self.endpoint.as_deref(),
        };
        classify(&self.entry, call, err)
    }

    pub(super) fn permanent(&self, target: &Target, message: &str) -> StoreError {
        let message = format!("secret {:?}: {message}", target.secret_id);
        StoreError::Permanent {
            store: self.entry.clone(),
            message,
        }
    }

    /// The secret is missing (AWS answered ResourceNotFound, read as "no
    /// version"): the message says where rekey looked, since a wrong
    /// region is the usual cause.
    pub(super) fn not_found(&self, target: &Target) -> StoreError {
        let region = (self.client.config().region()).map_or("(no region)", |r| r.as_ref());
        let at = match &self.endpoint {
            Some(url) => format!(" at {url}"),
            None => String::new(),
        };
        StoreError::NotFound {
            store: self.entry.clone(),
            secret_id: target.secret_id.to_string(),
            detail: Some(format!(
                "Secrets Manager in {region}{at} has no such secret; check the secret_id and the store's region"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    NotFound,
    Denied,
    Transient,
    Permanent,
}

const DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
    "ExpiredToken",
    "NotAuthorized",
    // Almost always a missing kms:Decrypt grant on the secret's key.
    "DecryptionFailure",
];

const TRANSIENT: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalServiceError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

fn classify_service(code: Option<&str>, status: Option<u16>) -> Class {
    match (code, status) {
        (Some("ResourceNotFoundException"), _) => Class::NotFound,
        (Some(c), _) if DENIED.contains(&c) => Class::Denied,
        (Some(c), _) if TRANSIENT.contains(&c) => Class::Transient,
        (_, Some(429 | 500..=599)) => Class::Transient,
        (_, Some(401 | 403)) => Class::Denied,
        _ => Class::Permanent,
    }
}

/// Turns an SDK error from `call` into a [`StoreError`]. The message is
/// [`aws_error::render`]'s one line: the error code, AWS's message, the
/// request id and a hint, never the secret value (requests and response
/// bodies are not echoed).
pub fn classify<E>(store: &str, call: Call<'_>, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let class = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Class::Transient
        }
        SdkError::ConstructionFailure(_) => Class::Permanent,
        _ => classify_service(err.code(), err.raw_response().map(|r| r.status().as_u16())),
    };
    let (store, message) = (store.to_string(), aws_error::render(call, &err));
    match class {
        Class::NotFound => StoreError::NotFound {
            store,
            secret_id: call.secret_id.to_string(),
            detail: Some(message),
        },
        Class::Denied => StoreError::Denied { store, message },
        Class::Transient => StoreError::Transient { store, message },
        Class::Permanent => StoreError::Permanent { store, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_are_classified_by_code_then_status() {
        let cases = [
            (
                Some("ResourceNotFoundException"),
                Some(400),
                Class::NotFound,
            ),
            (Some("AccessDeniedException"), Some(400), Class::Denied),
            (
                Some("UnrecognizedClientException"),
                Some(400),
                Class::Denied,
            ),
            (Some("ExpiredTokenException"), Some(400), Class::Denied),
            (Some("ThrottlingException"), Some(400), Class::Transient),
            (Some("InternalServiceError"), Some(500), Class::Transient),
            (None, Some(503), Class::Transient),
            (None, Some(429), Class::Transient),
            (None, Some(403), Class::Denied),
            (
                Some("InvalidParameterException"),
                Some(400),
                Class::Permanent,
            ),
            (Some("InvalidRequestException"), Some(400), Class::Permanent),
            (Some("ResourceExistsException"), Some(400), Class::Permanent),
            (None, None, Class::Permanent),
        ];
        for (code, status, want) in cases {
            assert_eq!(classify_service(code, status), want, "{code:?} {status:?}");
        }
    }
}
