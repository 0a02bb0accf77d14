//! OpenAI's admin API shapes as rekey reads them: tolerant of missing
//! optional fields, strict about what a rotation cannot do without (ids and
//! the new key's value), and never quoting a body in an error.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Deserialize;

use crate::providers::{CreatedKey, KeyInfo, KeyUsage};
use crate::secret::redacted_label;

/// One page of a cursor-paged list.
#[derive(Deserialize)]
pub(super) struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
    pub last_id: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ServiceAccount {
    pub id: String,
    pub name: Option<String>,
    pub created_at: Option<i64>,
}

impl ServiceAccount {
    pub fn into_info(self, label: String) -> KeyInfo {
        KeyInfo {
            id: self.id,
            name: self.name.unwrap_or_default(),
            label,
            disabled: false,
            created_at: (self.created_at).and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
            usage: None,
            limit_remaining: None,
            expires_at: None,
        }
    }
}

/// A project key. Only service accounts' keys matter here: a person's own
/// keys have `owner.type = "user"` and no account to delete.
#[derive(Deserialize)]
pub(super) struct ProjectApiKey {
    pub redacted_value: Option<String>,
    pub owner: Option<Owner>,
    /// Unix seconds, or `null` for a key never used; read leniently.
    #[serde(default, deserialize_with = "crate::providers::usage::present")]
    pub last_used_at: Option<serde_json::Value>,
}

#[derive(Deserialize)]
pub(super) struct Owner {
    pub service_account: Option<OwnerAccount>,
}

#[derive(Deserialize)]
pub(super) struct OwnerAccount {
    pub id: String,
}

/// The redacted value of `account`'s key, as `head...tail`; `None` when it
/// is unknown: the key is not listed, or its `redacted_value` is missing,
/// empty or not a redacted form (no `...` nor mask to split at). An unknown
/// label is neither a match nor a mismatch for any key.
pub(super) fn label_of(account: &str, keys: &[ProjectApiKey]) -> Option<String> {
    let owned_by = |k: &&ProjectApiKey| {
        let owner = k.owner.as_ref().and_then(|o| o.service_account.as_ref());
        owner.is_some_and(|a| a.id == account)
    };
    let found = keys.iter().find(owned_by)?;
    let redacted = found.redacted_value.as_deref().map(dotted)?;
    let (head, tail) = redacted.split_once("...")?;
    (!head.is_empty() && !tail.is_empty()).then_some(redacted)
}

/// When `account`'s key was last used (`ProjectApiKey.last_used_at`, joined
/// by `owner.service_account.id`); `None` when no listed key is the
/// account's or the key list does not carry the field.
pub(super) fn usage_of(account: &str, keys: &[ProjectApiKey]) -> Option<KeyUsage> {
    let owned_by = |k: &&ProjectApiKey| {
        let owner = k.owner.as_ref().and_then(|o| o.service_account.as_ref());
        owner.is_some_and(|a| a.id == account)
    };
    let last_used = keys.iter().find(owned_by)?.last_used_at.as_ref()?;
    Some(KeyUsage::last_use(crate::providers::usage::time(last_used)))
}

/// `sk-abc...def` stays; a masked form like `sk-proj-****abcd` becomes
/// `sk-proj-...abcd`, the form adoption matches the stored key against.
pub(super) fn dotted(redacted: &str) -> String {
    if redacted.contains("...") {
        return redacted.to_string();
    }
    match (redacted.find('*'), redacted.rfind('*')) {
        (Some(first), Some(last)) => {
            format!("{}...{}", &redacted[..first], &redacted[last + 1..])
        }
        _ => redacted.to_string(),
    }
}

/// The create answer; `api_key.value` goes straight into a `SecretString`.
#[derive(Deserialize)]
pub(super) struct CreatedAccount {
    id: Option<String>,
    name: Option<String>,
    api_key: Option<CreatedApiKey>,
}

#[derive(Deserialize)]
struct CreatedApiKey {
    value: Option<SecretString>,
}

impl CreatedAccount {
    pub fn into_created(self, requested_name: &str) -> Result<CreatedKey, &'static str> {
        let api_key = self.api_key.ok_or("missing api_key")?;
        let secret = api_key.value.ok_or("missing api_key.value")?;
        let id = self.id.filter(|id| is_id(id));
        let id = id.ok_or("missing or malformed service account id")?;
        Ok(CreatedKey {
            id,
            name: self.name.unwrap_or_else(|| requested_name.to_string()),
            label: redacted_label(&secret),
            secret,
        })
    }
}

/// Ids go into paths and queries unescaped: only `[A-Za-z0-9_-]` is accepted.
pub(super) fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_redacted_values_become_the_dotted_form_adoption_matches() {
        assert_eq!(dotted("sk-abc...def"), "sk-abc...def");
        assert_eq!(dotted("sk-proj-*******abcd"), "sk-proj-...abcd");
        assert_eq!(dotted("sk-svcacct-abc"), "sk-svcacct-abc");
    }

    #[test]
    fn a_key_owned_by_a_person_labels_no_service_account() {
        let keys: Vec<ProjectApiKey> = serde_json::from_str(
            r#"[{"redacted_value": "sk-abc...def", "owner": {"type": "user", "user": {"id": "user_1"}}},
                {"redacted_value": "sk-svc...xyz", "owner": {"type": "service_account", "service_account": {"id": "svc_acct_1"}}}]"#,
        )
        .unwrap();
        assert_eq!(
            label_of("svc_acct_1", &keys).as_deref(),
            Some("sk-svc...xyz")
        );
        assert_eq!(label_of("user_1", &keys), None);
        assert_eq!(label_of("svc_acct_2", &keys), None);
    }

    #[test]
    fn a_missing_empty_or_unsplittable_redacted_value_is_an_unknown_label() {
        let keys: Vec<ProjectApiKey> = serde_json::from_str(
            r#"[{"owner": {"type": "service_account", "service_account": {"id": "svc_acct_none"}}},
                {"redacted_value": null, "owner": {"service_account": {"id": "svc_acct_null"}}},
                {"redacted_value": "", "owner": {"service_account": {"id": "svc_acct_empty"}}},
                {"redacted_value": "sk-svcacct-abc", "owner": {"service_account": {"id": "svc_acct_whole"}}},
                {"redacted_value": "****", "owner": {"service_account": {"id": "svc_acct_stars"}}},
                {"redacted_value": "sk-proj-****abcd", "owner": {"service_account": {"id": "svc_acct_masked"}}}]"#,
        )
        .unwrap();
        for account in [
            "svc_acct_none",
            "svc_acct_null",
            "svc_acct_empty",
            "svc_acct_whole",
            "svc_acct_stars",
        ] {
            assert_eq!(label_of(account, &keys), None, "{account}");
        }
        assert_eq!(
            label_of("svc_acct_masked", &keys).as_deref(),
            Some("sk-proj-...abcd")
        );
    }

    #[test]
    fn last_use_is_joined_to_the_service_account_that_owns_the_key() {
        let keys: Vec<ProjectApiKey> = serde_json::from_str(
            r#"[{"redacted_value": "sk-abc...def", "last_used_at": 1764536400, "owner": {"type": "user", "user": {"id": "user_1"}}},
                {"redacted_value": "sk-svc...xyz", "last_used_at": 1764536460, "owner": {"type": "service_account", "service_account": {"id": "svc_acct_1"}}},
                {"redacted_value": "sk-svc...new", "last_used_at": null, "owner": {"type": "service_account", "service_account": {"id": "svc_acct_2"}}},
                {"redacted_value": "sk-svc...old", "owner": {"type": "service_account", "service_account": {"id": "svc_acct_3"}}}]"#,
        )
        .unwrap();
        let used = usage_of("svc_acct_1", &keys).unwrap();
        assert_eq!(used.signal, crate::providers::UsageSignal::LastUse);
        assert_eq!(
            used.last_used_at,
            DateTime::<Utc>::from_timestamp(1_764_536_460, 0)
        );
        let never = usage_of("svc_acct_2", &keys).unwrap();
        assert_eq!(never.last_used_at, None, "null: never used");
        assert_eq!(usage_of("svc_acct_3", &keys), None, "no field: no signal");
        assert_eq!(usage_of("user_1", &keys), None);
    }

    #[test]
    fn ids_that_could_change_a_path_or_query_are_refused() {
        assert!(is_id("svc_acct_abc-123"));
        for odd in ["", "a/b", "a?b", "a&b", "..", "a b", "a%2f"] {
            assert!(!is_id(odd), "{odd:?}");
        }
    }
}
