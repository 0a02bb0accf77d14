//! `[notify.<name>]` entries → typed [`NotifierConfig`]s.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::problems::Problems;
use super::quoted;
use super::refs::secret_ref;
use crate::config::bounds::{MAX_LIST_LEN, MAX_NOTIFY_TIMEOUT};
use crate::config::raw::RawNotify;
use crate::config::{NotifierConfig, NotifyEvent, NotifyFormat};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
const MAX_RETRIES: i64 = 10;
/// Without `on`, a notifier hears everything that needs a human.
const DEFAULT_EVENTS: [NotifyEvent; 9] = [
    NotifyEvent::Failure,
    NotifyEvent::Rollback,
    NotifyEvent::RevokeFailing,
    NotifyEvent::Overdue,
    NotifyEvent::ConfigRejected,
    NotifyEvent::JournalCorrupt,
    NotifyEvent::HookFailed,
    NotifyEvent::RevokedBusy,
    NotifyEvent::OldKeyBusy,
];

pub(super) fn notifiers(
    p: &mut Problems,
    raw: BTreeMap<String, RawNotify>,
    base_dir: &Path,
) -> BTreeMap<String, NotifierConfig> {
    (raw.into_iter())
        .filter_map(|(name, r)| Some((name.clone(), notifier(p, name, r, base_dir)?)))
        .collect()
}

fn notifier(
    p: &mut Problems,
    name: String,
    raw: RawNotify,
    base_dir: &Path,
) -> Option<NotifierConfig> {
    let at = |field: &str| format!("notify.{name}.{field}");
    let format = match raw.format.as_deref() {
        None | Some("json") => Some(NotifyFormat::Json),
        Some("slack") => Some(NotifyFormat::Slack),
        Some(other) => {
            p.push(
                at("format"),
                format!("{} is not one of \"json\", \"slack\"", quoted(other)),
            );
            None
        }
    };
    // Webhook URLs often carry a token (Slack's do): a reference, like every credential.
    let url = p
        .required(&at("url"), raw.url.as_deref())
        .and_then(|u| secret_ref(p, &at("url"), u, base_dir));
    let timeout = p.positive_duration(&at("timeout"), raw.timeout.as_deref(), MAX_NOTIFY_TIMEOUT);
    let timeout = if raw.timeout.is_some() {
        timeout
    } else {
        Some(DEFAULT_TIMEOUT)
    };
    let retries = raw.retries.unwrap_or(DEFAULT_RETRIES);
    let retries_ok = (0..=MAX_RETRIES).contains(&retries);
    if !retries_ok {
        p.push(
            at("retries"),
            format!("must be between 0 and {MAX_RETRIES}, got {retries}"),
        );
    }
    let on = events(p, &at("on"), raw.on);
    Some(NotifierConfig {
        name,
        format: format?,
        url: url?,
        timeout: timeout?,
        retries: u32::try_from(retries).ok().filter(|_| retries_ok)?,
        on: on?,
    })
}

fn events(p: &mut Problems, path: &str, raw: Option<Vec<String>>) -> Option<Vec<NotifyEvent>> {
    let Some(raw) = raw else {
        return Some(DEFAULT_EVENTS.to_vec());
    };
    if raw.len() > MAX_LIST_LEN {
        p.push(path, format!("more than {MAX_LIST_LEN} entries"));
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for name in raw {
        match NotifyEvent::ALL.into_iter().find(|e| e.as_str() == name) {
            Some(event) => out.push(event),
            None => {
                let names: Vec<String> = NotifyEvent::ALL
                    .iter()
                    .map(|e| format!("{:?}", e.as_str()))
                    .collect();
                p.push(
                    path,
                    format!("{} is not one of {}", quoted(&name), names.join(", ")),
                );
                ok = false;
            }
        }
    }
    out.sort();
    out.dedup();
    ok.then_some(out)
}
