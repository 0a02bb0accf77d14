//! What a provider says about a key's use: spend counters, when it was last
//! used, and which of the two the provider gives at all (PROVIDERS.md
//! "Usage signals"). One shape for every provider, so usage-aware revoke
//! and the guard need not know each API's fields. Reading is lenient: a
//! usage field of an unexpected type is left out, never an error, because
//! a listing must not fail over a counter rekey only reports.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Which usage signal a provider's key object carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageSignal {
    /// Spend counters only: a key whose counters stop moving is idle
    /// (OpenRouter, ARouter's API reference).
    Spend,
    /// When the key was last used, no spend (OpenAI project keys).
    LastUse,
    /// Both (LiteLLM, ARouter's rotation guide).
    SpendAndLastUse,
    /// The key object carries neither (Anthropic: usage exists only in the
    /// organization usage report, which rekey does not read).
    NoSignal,
}

impl UsageSignal {
    pub fn has_spend(self) -> bool {
        matches!(self, UsageSignal::Spend | UsageSignal::SpendAndLastUse)
    }

    pub fn has_last_use(self) -> bool {
        matches!(self, UsageSignal::LastUse | UsageSignal::SpendAndLastUse)
    }

    /// A bounded label for logs and status output.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSignal::Spend => "spend",
            UsageSignal::LastUse => "last-use",
            UsageSignal::SpendAndLastUse => "spend+last-use",
            UsageSignal::NoSignal => "none",
        }
    }
}

/// Spend over the provider's periods, in the provider's unit (USD for
/// OpenRouter, ARouter and LiteLLM). A period the provider does not report
/// is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spend {
    pub total: Option<f64>,
    pub daily: Option<f64>,
    pub weekly: Option<f64>,
    pub monthly: Option<f64>,
}

impl Spend {
    fn is_empty(&self) -> bool {
        *self == Spend::default()
    }

    /// `None` when no period was reported.
    fn reported(self) -> Option<Spend> {
        (!self.is_empty()).then_some(self)
    }
}

/// A key's usage as its provider reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyUsage {
    pub signal: UsageSignal,
    /// Spend through this key; `None` when the provider gives no spend.
    pub spend: Option<Spend>,
    /// Bring-your-own-key spend (OpenRouter's `byok_usage*`), where given.
    pub byok: Option<Spend>,
    /// `None` with a last-use signal: never used (or not since the provider
    /// started recording).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl KeyUsage {
    /// Anthropic's answer: the key object says nothing about use.
    pub fn no_signal() -> Self {
        KeyUsage {
            signal: UsageSignal::NoSignal,
            spend: None,
            byok: None,
            last_used_at: None,
        }
    }

    /// A provider that gives only the last-use time (OpenAI).
    pub fn last_use(at: Option<DateTime<Utc>>) -> Self {
        KeyUsage {
            signal: UsageSignal::LastUse,
            spend: None,
            byok: None,
            last_used_at: at,
        }
    }

    /// What an answer carried: spend when any counter was a number, last
    /// use when the field was there at all (`null` = never used). `None`
    /// when it carried neither.
    pub(crate) fn from_parts(
        spend: Spend,
        byok: Spend,
        last_use: Option<&Value>,
    ) -> Option<KeyUsage> {
        let spend = spend.reported();
        let signal = match (spend.is_some(), last_use.is_some()) {
            (true, true) => UsageSignal::SpendAndLastUse,
            (true, false) => UsageSignal::Spend,
            (false, true) => UsageSignal::LastUse,
            (false, false) => return None,
        };
        Some(KeyUsage {
            signal,
            spend,
            byok: byok.reported(),
            last_used_at: last_use.and_then(time),
        })
    }
}

/// A non-negative finite number, or `None` for anything else.
pub(crate) fn amount(value: Option<&Value>) -> Option<f64> {
    let n = value?.as_f64()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

/// A time as providers write it: RFC 3339, an ISO time without zone (read
/// as UTC, as LiteLLM's Python may write it), or unix seconds.
pub(crate) fn time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => DateTime::<Utc>::from_timestamp(n.as_i64()?, 0),
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| {
                let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f");
                naive.ok().map(|t| t.and_utc())
            }),
        _ => None,
    }
}

/// For `#[serde(default, deserialize_with = "present")]` on an
/// `Option<Value>`: `Some(Value::Null)` for an explicit `null`, `None`
/// only when the field is absent.
pub(crate) fn present<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_signal_follows_what_the_answer_carried() {
        let spend = Spend {
            total: Some(1.0),
            ..Spend::default()
        };
        let never = json!(null);
        let both = KeyUsage::from_parts(spend.clone(), Spend::default(), Some(&never)).unwrap();
        assert_eq!(both.signal, UsageSignal::SpendAndLastUse);
        assert_eq!((both.last_used_at, both.byok), (None, None));
        let only_spend = KeyUsage::from_parts(spend, Spend::default(), None).unwrap();
        assert_eq!(only_spend.signal, UsageSignal::Spend);
        let at = json!("2026-11-30T21:00:00Z");
        let only_time = KeyUsage::from_parts(Spend::default(), Spend::default(), Some(&at));
        let only_time = only_time.unwrap();
        assert_eq!(only_time.signal, UsageSignal::LastUse);
        assert!(only_time.last_used_at.is_some());
        assert_eq!(
            KeyUsage::from_parts(Spend::default(), Spend::default(), None),
            None
        );
    }

    #[test]
    fn times_are_read_in_every_form_providers_write_and_odd_values_are_dropped() {
        let want = DateTime::<Utc>::from_timestamp(1_764_536_400, 0);
        assert_eq!(time(&json!(1_764_536_400)), want);
        assert_eq!(time(&json!("2025-11-30T21:00:00Z")), want);
        assert_eq!(time(&json!("2025-11-30T22:00:00+01:00")), want);
        assert_eq!(time(&json!("2025-11-30T21:00:00.000")), want);
        for odd in [json!("yesterday"), json!(true), json!(-1e300), json!({})] {
            assert_eq!(time(&odd), None, "{odd}");
        }
        assert_eq!(amount(Some(&json!(0.5))), Some(0.5));
        for odd in [json!("0.5"), json!(-1), json!(null)] {
            assert_eq!(amount(Some(&odd)), None, "{odd}");
        }
    }
}
