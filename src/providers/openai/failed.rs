//! A failed OpenAI admin API answer, read once: its status, `Retry-After`,
//! and the error code and message as far as they may be shown.

use reqwest::Response;

use crate::providers::http::{self, Quote};

/// What a failed response said, as far as it may be shown.
pub(super) struct Failed {
    pub(super) status: u16,
    pub(super) retry_after: Option<std::time::Duration>,
    /// `error.code`, only when it is a plain identifier.
    pub(super) code: Option<String>,
    pub(super) message: String,
}

impl Failed {
    pub(super) async fn read(quote: Quote, response: Response) -> Failed {
        let status = response.status().as_u16();
        let retry_after = http::retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        let message = match quote {
            Quote::ProviderMessage => http::error_message(&body),
            Quote::Nothing => Some("provider message withheld".to_string()),
        };
        Failed {
            status,
            retry_after,
            code: http::error_code(&body),
            message: message.unwrap_or_else(|| "no error message".to_string()),
        }
    }

    /// The message with its code, e.g. `Incorrect API key provided: sk-ad...xyz. (invalid_api_key)`.
    pub(super) fn detail(&self) -> String {
        match &self.code {
            Some(code) => format!("{} ({code})", self.message),
            None => self.message.clone(),
        }
    }
}
