//! `[notify.<name>]` webhooks (generic JSON or Slack-compatible), sent from a
//! background task with a timeout and retries, so a receiver that is down
//! never stalls a rotation. (Stub: being built.)

use crate::config::Config;
use crate::events::Event;

pub struct Notifier {}

impl Notifier {
    /// `None` when no notifier is configured.
    pub async fn build(_config: &Config) -> Result<Option<Self>, String> {
        Ok(None)
    }

    pub fn notify(&self, _event: &Event) {}
}
