//! The JSON form of the `after_effect` knobs: `{"mode", "count"}` plus the
//! one duration a mode may need, each mode checked against its endpoint so
//! that a knob meant for another endpoint is refused by name.

use serde::{Deserialize, Serialize};

use super::{Counted, CreateAnswer, DeleteAnswer, ListAnswer};

/// The JSON form of every `after_effect` knob: `mode`, `count` and the one
/// duration a mode may need. Modes are checked against their endpoint.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Knob {
    mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hang_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lag_ms: Option<u64>,
}

/// An answer that has a JSON form as a `Knob` for one endpoint.
trait Mode: Sized + Copy {
    const ENDPOINT: &'static str;
    const MODES: &'static str;
    fn parse(knob: &Knob) -> Option<Self>;
    fn write(self, knob: &mut Knob);
}

impl Mode for CreateAnswer {
    const ENDPOINT: &'static str = "create";
    const MODES: &'static str =
        "invalid_json, missing_secret, missing_id, html, unavailable, hang (with hang_ms)";

    fn parse(knob: &Knob) -> Option<Self> {
        if knob.lag_ms.is_some() || (knob.hang_ms.is_some() != (knob.mode == "hang")) {
            return None;
        }
        Some(match knob.mode.as_str() {
            "invalid_json" => Self::InvalidJson,
            "missing_secret" => Self::MissingSecret,
            "missing_id" => Self::MissingId,
            "html" => Self::Html,
            "unavailable" => Self::Unavailable,
            "hang" => Self::Hang {
                hang_ms: knob.hang_ms?,
            },
            _ => return None,
        })
    }

    fn write(self, knob: &mut Knob) {
        knob.mode = match self {
            Self::InvalidJson => "invalid_json",
            Self::MissingSecret => "missing_secret",
            Self::MissingId => "missing_id",
            Self::Html => "html",
            Self::Unavailable => "unavailable",
            Self::Hang { hang_ms } => {
                knob.hang_ms = Some(hang_ms);
                "hang"
            }
        }
        .to_string();
    }
}

impl Mode for DeleteAnswer {
    const ENDPOINT: &'static str = "delete";
    const MODES: &'static str = "not_found";

    fn parse(knob: &Knob) -> Option<Self> {
        let plain = knob.hang_ms.is_none() && knob.lag_ms.is_none();
        (plain && knob.mode == "not_found").then_some(Self::NotFound)
    }

    fn write(self, knob: &mut Knob) {
        knob.mode = "not_found".to_string();
    }
}

impl Mode for ListAnswer {
    const ENDPOINT: &'static str = "list";
    const MODES: &'static str = "endless, repeating, lagging (with lag_ms)";

    fn parse(knob: &Knob) -> Option<Self> {
        if knob.hang_ms.is_some() || (knob.lag_ms.is_some() != (knob.mode == "lagging")) {
            return None;
        }
        Some(match knob.mode.as_str() {
            "endless" => Self::Endless,
            "repeating" => Self::Repeating,
            "lagging" => Self::Lagging {
                lag_ms: knob.lag_ms?,
            },
            _ => return None,
        })
    }

    fn write(self, knob: &mut Knob) {
        knob.mode = match self {
            Self::Endless => "endless",
            Self::Repeating => "repeating",
            Self::Lagging { lag_ms } => {
                knob.lag_ms = Some(lag_ms);
                "lagging"
            }
        }
        .to_string();
    }
}

impl<A: Mode> Serialize for Counted<A> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut knob = Knob {
            mode: String::new(),
            count: self.count,
            hang_ms: None,
            lag_ms: None,
        };
        self.answer.write(&mut knob);
        knob.serialize(serializer)
    }
}

impl<'de, A: Mode> Deserialize<'de> for Counted<A> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let knob = Knob::deserialize(de)?;
        let answer = A::parse(&knob).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "after_effect.{}: mode {:?} with these fields is not one of: {}",
                A::ENDPOINT,
                knob.mode,
                A::MODES
            ))
        })?;
        Ok(Self {
            answer,
            count: knob.count,
        })
    }
}
