//! Cron schedules: parsed and validated by rekey itself, next due instant
//! computed with the time zone database every time (DST-correct).
//! (Filled in by the config/schedule work.)

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct Schedule {
    pub expression: String,
}

impl Schedule {
    /// The first tick strictly after `after`.
    pub fn next_after(&self, _after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        todo!("schedule")
    }
}

impl Schedule {
    pub fn parse(expr: &str, _tz: Option<chrono_tz::Tz>) -> Result<Schedule, String> {
        Ok(Schedule {
            expression: expr.to_string(),
        })
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.expression)
    }
}
