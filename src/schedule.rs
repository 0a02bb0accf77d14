//! Cron schedules: parsed and validated by rekey itself, next due instant
//! computed with the time zone database every time (DST-correct).
//!
//! Expressions are standard 5-field crontab (`minute hour dom month dow`) or
//! 6 fields with seconds first. Day-of-month and day-of-week follow crontab's
//! OR rule: when both are restricted, a day matches if either matches
//! (unlike tokio-cron-scheduler, which ANDs them).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Names and ranges of the six fields, seconds first, for error messages.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT"),
];

/// Ticks sampled by [`Schedule::min_interval`]: more than a year of daily
/// ticks, so both DST switches are always inside the window.
const INTERVAL_SAMPLES: usize = 400;

#[derive(Clone)]
pub struct Schedule {
    /// The expression as written in the config.
    pub expression: String,
    tz: Tz,
    cron: Cron,
}

impl Schedule {
    /// Parses a 5- or 6-field expression; ticks are computed in `tz` (UTC if `None`).
    pub fn parse(expr: &str, tz: Option<Tz>) -> Result<Schedule, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let six: Vec<&str> = match fields.len() {
            5 => std::iter::once("0").chain(fields.iter().copied()).collect(),
            6 => fields,
            n => {
                return Err(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) \
                     or 6 (seconds first), found {n}"
                ));
            }
        };
        let cron = parser()
            .parse(&six.join(" "))
            .map_err(|e| explain(&six, &e))?;
        Ok(Schedule {
            expression: expr.trim().to_string(),
            tz: tz.unwrap_or(chrono_tz::UTC),
            cron,
        })
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Ticks fall on whole seconds; flooring first keeps "strictly after"
        // exact when `after` carries a fraction of a second.
        let floored = after.duration_trunc(TimeDelta::seconds(1)).unwrap_or(after);
        let local = floored.with_timezone(&self.tz);
        // Errors here mean "no tick within croner's search window" (e.g. 30 February).
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(next.with_timezone(&Utc))
    }

    /// The shortest gap between consecutive ticks among the next few hundred
    /// after `from`; `None` when the schedule fires fewer than twice.
    pub fn min_interval(&self, from: DateTime<Utc>) -> Option<Duration> {
        let mut previous = self.next_after(from)?;
        let mut shortest: Option<TimeDelta> = None;
        for _ in 0..INTERVAL_SAMPLES {
            let Some(next) = self.next_after(previous) else {
                break;
            };
            let gap = next - previous;
            let now_shortest = shortest.map_or(gap, |s| s.min(gap));
            shortest = Some(now_shortest);
            // Ticks fall on whole seconds: no later gap can be shorter than
            // one, so the rest of the sample cannot change the answer.
            if now_shortest <= TimeDelta::seconds(1) {
                break;
            }
            previous = next;
        }
        shortest.and_then(|gap| gap.to_std().ok())
    }
}

/// The parsed form is croner's bit fields: thousands of lines in a log.
impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({self})")
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.tz)
    }
}

/// Always six fields: 5-field input gets its "0" seconds prepended before parsing.
fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .build()
}

/// croner's errors do not say which field is wrong: re-parse each field alone
/// (the others `*`) to find the first one that fails.
fn explain(six: &[&str], whole: &croner::errors::CronError) -> String {
    for (i, field) in six.iter().enumerate() {
        let mut probe = ["*"; 6];
        probe[i] = field;
        if let Err(e) = parser().parse(&probe.join(" ")) {
            let (name, range) = FIELDS[i];
            return format!("{name} field `{field}` is invalid (allowed: {range}): {e}");
        }
    }
    whole.to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid test instant")
    }

    fn ticks(schedule: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        std::iter::successors(schedule.next_after(from), |t| schedule.next_after(*t))
            .take(n)
            .collect()
    }

    #[test]
    fn a_five_field_expression_fires_at_second_zero_of_the_minute() {
        let s = Schedule::parse("15 3 * * *", None).unwrap();
        assert_eq!(
            s.next_after(utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2026, 1, 1, 3, 15, 0))
        );
    }

    #[test]
    fn a_six_field_expression_reads_seconds_first() {
        let s = Schedule::parse("30 */15 * * * *", None).unwrap();
        let got = ticks(&s, utc(2026, 1, 1, 10, 0, 0), 2);
        assert_eq!(
            got,
            vec![utc(2026, 1, 1, 10, 0, 30), utc(2026, 1, 1, 10, 15, 30)]
        );
    }

    #[test]
    fn next_after_is_strictly_after_even_on_a_tick_or_inside_its_second() {
        let s = Schedule::parse("0 3 * * *", None).unwrap();
        let tick = utc(2026, 1, 1, 3, 0, 0);
        assert_eq!(s.next_after(tick), Some(utc(2026, 1, 2, 3, 0, 0)));
        let inside = tick + TimeDelta::milliseconds(500);
        assert_eq!(s.next_after(inside), Some(utc(2026, 1, 2, 3, 0, 0)));
        let just_before = tick - TimeDelta::milliseconds(500);
        assert_eq!(s.next_after(just_before), Some(tick));
    }

    #[test]
    fn bad_expressions_are_refused_saying_what_is_wrong() {
        let cases = [
            ("* * * *", "found 4"),
            ("0 0 0 * * * * *", "found 8"),
            ("0 0 0 * * * 2026", "found 7"),
            ("", "found 0"),
            ("61 * * * *", "minute field `61`"),
            ("* * 32 * *", "day-of-month field `32`"),
            ("0 25 * * *", "hour field `25`"),
            ("0 0 * 13 *", "month field `13`"),
            ("0 0 * * 9", "day-of-week field `9`"),
            ("61 0 0 * * *", "second field `61`"),
            ("@daily", "found 1"),
        ];
        for (expr, fragment) in cases {
            let err = Schedule::parse(expr, None).expect_err(expr);
            assert!(
                err.contains(fragment),
                "{expr:?}: {err:?} lacks {fragment:?}"
            );
        }
    }

    #[test]
    fn day_of_month_and_day_of_week_combine_with_or_like_crontab() {
        // April 2026: the 13th is a Monday; Fridays are 3, 10, 17, 24.
        let s = Schedule::parse("0 0 13 * 5", None).unwrap();
        let got = ticks(&s, utc(2026, 4, 1, 0, 0, 0), 6);
        let days: Vec<u32> = [3, 10, 13, 17, 24].to_vec();
        let want: Vec<_> = days.iter().map(|d| utc(2026, 4, *d, 0, 0, 0)).collect();
        assert_eq!(got[..5], want[..]);
        assert_eq!(got[5], utc(2026, 5, 1, 0, 0, 0));
    }

    #[test]
    fn daily_berlin_schedule_stays_at_three_local_across_the_spring_switch() {
        let s = Schedule::parse("0 3 * * *", Some(chrono_tz::Europe::Berlin)).unwrap();
        let want = [
            utc(2026, 3, 27, 2, 0, 0), // CET, UTC+1
            utc(2026, 3, 28, 2, 0, 0),
            utc(2026, 3, 29, 1, 0, 0), // switch day: CEST, UTC+2
            utc(2026, 3, 30, 1, 0, 0),
            utc(2026, 3, 31, 1, 0, 0),
        ];
        assert_eq!(ticks(&s, utc(2026, 3, 26, 12, 0, 0), 5), want);
    }

    #[test]
    fn daily_berlin_schedule_stays_at_three_local_across_the_autumn_switch() {
        let s = Schedule::parse("0 3 * * *", Some(chrono_tz::Europe::Berlin)).unwrap();
        let want = [
            utc(2026, 10, 23, 1, 0, 0), // CEST, UTC+2
            utc(2026, 10, 24, 1, 0, 0),
            utc(2026, 10, 25, 2, 0, 0), // switch day: CET, UTC+1
            utc(2026, 10, 26, 2, 0, 0),
            utc(2026, 10, 27, 2, 0, 0),
        ];
        assert_eq!(ticks(&s, utc(2026, 10, 22, 12, 0, 0), 5), want);
    }

    #[test]
    fn a_tick_inside_the_spring_gap_fires_once_right_after_the_jump() {
        // 02:30 does not exist in Berlin on 29 March 2026; Vixie cron runs it at 03:00.
        let s = Schedule::parse("30 2 * * *", Some(chrono_tz::Europe::Berlin)).unwrap();
        let want = [
            utc(2026, 3, 28, 1, 30, 0),
            utc(2026, 3, 29, 1, 0, 0),
            utc(2026, 3, 30, 0, 30, 0),
        ];
        assert_eq!(ticks(&s, utc(2026, 3, 27, 12, 0, 0), 3), want);
    }

    #[test]
    fn a_tick_inside_the_repeated_autumn_hour_fires_once() {
        let s = Schedule::parse("30 2 * * *", Some(chrono_tz::Europe::Berlin)).unwrap();
        let want = [
            utc(2026, 10, 24, 0, 30, 0),
            utc(2026, 10, 25, 0, 30, 0),
            utc(2026, 10, 26, 1, 30, 0),
        ];
        assert_eq!(ticks(&s, utc(2026, 10, 23, 12, 0, 0), 3), want);
    }

    #[test]
    fn min_interval_sees_the_short_day_of_the_spring_switch() {
        let s = Schedule::parse("0 3 * * *", Some(chrono_tz::Europe::Berlin)).unwrap();
        let shortest = s.min_interval(utc(2026, 1, 1, 0, 0, 0));
        assert_eq!(shortest, Some(Duration::from_secs(23 * 3600)));
        let utc_daily = Schedule::parse("0 3 * * *", None).unwrap();
        assert_eq!(
            utc_daily.min_interval(utc(2026, 1, 1, 0, 0, 0)),
            Some(Duration::from_secs(86400))
        );
    }

    #[test]
    fn min_interval_of_a_monthly_schedule_is_the_shortest_month() {
        let s = Schedule::parse("0 3 1 * *", None).unwrap();
        let shortest = s.min_interval(utc(2026, 1, 15, 0, 0, 0));
        assert_eq!(shortest, Some(Duration::from_secs(28 * 86400)));
    }

    #[test]
    fn min_interval_of_an_every_second_schedule_is_one_second() {
        let s = Schedule::parse("* * * * * *", None).unwrap();
        assert_eq!(
            s.min_interval(utc(2026, 1, 1, 0, 0, 0)),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn display_shows_the_expression_and_its_time_zone() {
        let berlin = Schedule::parse("0 3 * * *", Some(chrono_tz::Europe::Berlin)).unwrap();
        assert_eq!(berlin.to_string(), "0 3 * * * (Europe/Berlin)");
        assert_eq!(
            Schedule::parse(" 0 3 * * * ", None).unwrap().to_string(),
            "0 3 * * * (UTC)"
        );
    }
}
