//! The key-management API's JSON bodies: the `{ "data": … }` envelopes, a
//! listed key object with its usage fields, and the create answer whose
//! secret goes straight into a `SecretString`; each converts itself into
//! the provider-neutral `KeyInfo` / `CreatedKey`.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::IdField;
use crate::providers::usage;
use crate::providers::{CreatedKey, KeyInfo, KeyUsage, Spend};

#[derive(Deserialize)]
pub(super) struct DataEnvelope<T> {
    pub(super) data: Option<T>,
}

/// A list answer: ARouter adds `next_page_token` when it pages by token.
#[derive(Deserialize)]
pub(super) struct ListEnvelope {
    pub(super) data: Option<Vec<KeyObject>>,
    pub(super) next_page_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct KeyObject {
    hash: Option<String>,
    id: Option<String>,
    name: Option<String>,
    label: Option<String>,
    disabled: Option<bool>,
    created_at: Option<String>,
    limit_remaining: Option<Value>,
    expires_at: Option<Value>,
    #[serde(flatten)]
    usage: UsageFields,
}

/// A key object's usage fields, read leniently (`usage::amount`): spend as
/// OpenRouter and ARouter's SDK give it (`usage`, `usage_daily/weekly/monthly`
/// numbers, `byok_usage*`), or as an ARouter docs page does (`usage` an
/// object of periods), and `last_used_at` where given.
#[derive(Deserialize)]
pub(super) struct UsageFields {
    usage: Option<Value>,
    usage_daily: Option<Value>,
    usage_weekly: Option<Value>,
    usage_monthly: Option<Value>,
    byok_usage: Option<Value>,
    byok_usage_daily: Option<Value>,
    byok_usage_weekly: Option<Value>,
    byok_usage_monthly: Option<Value>,
    #[serde(default, deserialize_with = "usage::present")]
    last_used_at: Option<Value>,
}

impl UsageFields {
    pub(super) fn into_usage(self) -> Option<KeyUsage> {
        let period = |name: &str| self.usage.as_ref().and_then(|u| u.get(name));
        // The object form names its periods; either form may stand beside
        // top-level `usage_*` numbers, which count when the object has none.
        let spend = Spend {
            total: usage::amount(self.usage.as_ref())
                .or_else(|| usage::amount(period("total")))
                .or_else(|| usage::amount(period("total_usage"))),
            daily: usage::amount(period("daily")).or(usage::amount(self.usage_daily.as_ref())),
            weekly: usage::amount(period("weekly")).or(usage::amount(self.usage_weekly.as_ref())),
            monthly: usage::amount(period("monthly"))
                .or(usage::amount(self.usage_monthly.as_ref())),
        };
        let byok = Spend {
            total: usage::amount(self.byok_usage.as_ref()),
            daily: usage::amount(self.byok_usage_daily.as_ref()),
            weekly: usage::amount(self.byok_usage_weekly.as_ref()),
            monthly: usage::amount(self.byok_usage_monthly.as_ref()),
        };
        KeyUsage::from_parts(spend, byok, self.last_used_at.as_ref())
    }
}

impl KeyObject {
    pub(super) fn into_info(self, id_field: IdField) -> Result<KeyInfo, &'static str> {
        let id = match id_field {
            IdField::Hash => self.hash,
            IdField::Id => self.id,
        };
        Ok(KeyInfo {
            id: id.ok_or(id_field.missing())?,
            name: self.name.unwrap_or_default(),
            label: self.label.unwrap_or_default(),
            disabled: self.disabled.unwrap_or(false),
            created_at: self
                .created_at
                .as_deref()
                .and_then(crate::providers::http::parse_time),
            usage: self.usage.into_usage(),
            // Read leniently, like the usage counters: a listing must not
            // fail over a field only the audit reports.
            limit_remaining: self.limit_remaining.as_ref().and_then(Value::as_f64),
            expires_at: self.expires_at.as_ref().and_then(usage::time),
        })
    }
}

/// The create answer. The secret goes straight into a `SecretString`
/// from wherever the provider put it: top-level `key` or `data.key`.
#[derive(Deserialize)]
pub(super) struct CreatedEnvelope {
    data: Option<CreatedData>,
    key: Option<SecretString>,
}

#[derive(Deserialize)]
pub(super) struct CreatedData {
    hash: Option<String>,
    id: Option<String>,
    name: Option<String>,
    label: Option<String>,
    key: Option<SecretString>,
}

impl CreatedEnvelope {
    pub(super) fn into_created(
        self,
        requested_name: &str,
        id_field: IdField,
    ) -> Result<CreatedKey, &'static str> {
        let data = self.data.ok_or("missing data")?;
        let secret = self
            .key
            .or(data.key)
            .ok_or("missing key (neither key nor data.key)")?;
        let id = match id_field {
            IdField::Hash => data.hash,
            IdField::Id => data.id,
        };
        let id = id.ok_or(id_field.missing())?;
        let label = data.label.filter(|l| !l.is_empty());
        let label = label.unwrap_or_else(|| crate::secret::redacted_label(&secret));
        let name = data.name.unwrap_or_else(|| requested_name.to_string());
        Ok(CreatedKey {
            id,
            name,
            label,
            secret,
        })
    }
}

#[cfg(test)]
mod usage_tests {
    use super::*;
    use crate::providers::UsageSignal;

    fn usage_of(body: &str) -> Option<KeyUsage> {
        let key: KeyObject = serde_json::from_str(body).unwrap();
        key.into_info(IdField::Hash).unwrap().usage
    }

    #[test]
    fn openrouter_counters_and_byok_are_read_as_spend() {
        let usage = usage_of(
            r#"{"hash":"h","usage":25.5,"usage_daily":1.5,"usage_weekly":2.5,"usage_monthly":3.5,
                "byok_usage":17.38,"byok_usage_daily":0.0}"#,
        )
        .unwrap();
        assert_eq!(usage.signal, UsageSignal::Spend);
        let spend = usage.spend.unwrap();
        assert_eq!(
            (spend.total, spend.daily, spend.weekly, spend.monthly),
            (Some(25.5), Some(1.5), Some(2.5), Some(3.5))
        );
        let byok = usage.byok.unwrap();
        assert_eq!(
            (byok.total, byok.daily, byok.weekly),
            (Some(17.38), Some(0.0), None)
        );
        assert_eq!(usage.last_used_at, None);
    }

    #[test]
    fn an_arouter_usage_object_with_last_use_is_read_like_the_numbers() {
        let usage = usage_of(
            r#"{"hash":"h","usage":{"total":4.0,"daily":1.0,"weekly":2.0,"monthly":3.0},
                "last_used_at":"2026-11-30T21:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(usage.signal, UsageSignal::SpendAndLastUse);
        let spend = usage.spend.unwrap();
        assert_eq!(
            (spend.total, spend.daily, spend.weekly, spend.monthly),
            (Some(4.0), Some(1.0), Some(2.0), Some(3.0))
        );
        assert!(usage.last_used_at.is_some());
        let never = usage_of(r#"{"hash":"h","usage":0,"last_used_at":null}"#).unwrap();
        assert_eq!(
            (never.signal, never.last_used_at),
            (UsageSignal::SpendAndLastUse, None)
        );
    }

    #[test]
    fn odd_usage_values_are_left_out_and_never_fail_the_key() {
        let odd = usage_of(r#"{"hash":"h","usage":"lots","usage_daily":-1,"byok_usage":[1]}"#);
        assert_eq!(odd, None, "nothing usable: no usage, but the key is read");
        assert_eq!(usage_of(r#"{"hash":"h"}"#), None);
    }
}
