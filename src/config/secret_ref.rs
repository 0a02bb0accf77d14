//! Credential references (`env:`, `file:`, `aws-sm:`) read into secrets:
//! [`resolve`] reads one, [`references`] lists every reference of a config
//! by its config path, [`unreadable`] names those that cannot be read. An
//! error names the variable, file or AWS secret and why, never a value.

use secrecy::SecretString;

use super::{Config, SecretRef};

/// A credential reference that could not be read, by its config path
/// (`providers.openrouter.management_key`). The message names the variable,
/// file or AWS secret, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// `a: x; b: y`: every unreadable reference on one line (logs, `/readyz`).
pub fn describe(unreadable: &[Unreadable]) -> String {
    let parts: Vec<String> = unreadable.iter().map(Unreadable::to_string).collect();
    parts.join("; ")
}

/// Every credential reference in `config` by its config path: provider
/// management keys, webhook URLs and the admin token, in that order.
pub fn references(config: &Config) -> Vec<(String, &SecretRef)> {
    let providers = (config.providers.iter()).map(|(name, entry)| {
        (
            format!("providers.{name}.management_key"),
            &entry.management_key,
        )
    });
    let notify =
        (config.notify.iter()).map(|(name, entry)| (format!("notify.{name}.url"), &entry.url));
    let token = (config.daemon.admin_token.iter()).map(|r| ("daemon.admin_token".to_string(), r));
    providers.chain(notify).chain(token).collect()
}

/// The references of `references` that cannot be read; values read are dropped at once.
pub async fn unreadable(references: &[(String, &SecretRef)]) -> Vec<Unreadable> {
    let mut out = Vec::new();
    for (path, reference) in references {
        if let Err(message) = resolve(reference).await {
            out.push(Unreadable {
                path: path.clone(),
                message,
            });
        }
    }
    out
}

/// Reads a credential from where the config points. Errors never echo a value.
pub async fn resolve(reference: &SecretRef) -> Result<SecretString, String> {
    let text = match reference {
        SecretRef::Env(var) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?
        }
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        SecretRef::AwsSm { secret_id, field } => {
            read_aws_secret(secret_id, field.as_deref()).await?
        }
    };
    if text.is_empty() {
        return Err("the referenced credential is empty".into());
    }
    Ok(SecretString::from(text))
}

async fn read_aws_secret(secret_id: &str, field: Option<&str>) -> Result<String, String> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .map_err(|e| crate::aws_error::render_for(&client, "GetSecretValue", secret_id, &e))?;
    let value = out
        .secret_string()
        .ok_or_else(|| format!("AWS secret {secret_id} has no string value"))?;
    let Some(field) = field else {
        return Ok(value.to_string());
    };
    let doc: serde_json::Value = serde_json::from_str(value)
        .map_err(|_| format!("AWS secret {secret_id} is not a JSON object"))?;
    doc.get(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("AWS secret {secret_id} has no string field {field:?}"))
}
