//! `rekey run`: the long-running service, or with `--once` one pass of what
//! is due; and how the service is started for it and for `rekey dev`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{FAILURE, OK, build, flush_alerts, load};
use crate::app::App;
use crate::config::Config;
use crate::daemon::{self, Mode};
use crate::service::Service;

/// `rekey run`: the service (admin API, reload, graceful shutdown), or
/// with `--once` one pass of what is due, exiting 1 if any rotation failed.
pub async fn run(path: &Path, once: bool) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !once {
        return serve(path, config).await;
    }
    let app = match build(config).await {
        Ok(app) => app,
        Err(code) => return code,
    };
    crate::signals::cancel_on_signal(app.cancel.clone());
    let summary = daemon::run(app.clone(), Mode::Once).await;
    flush_alerts(&app).await;
    if summary.failed > 0 {
        crate::errln!(
            "{} of {} failed",
            summary.failed,
            crate::text::plural(summary.ran, "rotation", "rotations")
        );
    }
    if summary.unreadable > 0 {
        crate::errln!(
            "{} not rotated: the journal cannot be read (see the errors above)",
            crate::text::plural(summary.unreadable, "policy", "policies")
        );
    }
    if summary.failed > 0 || summary.unreadable > 0 {
        return ExitCode::from(FAILURE);
    }
    ExitCode::from(OK)
}

/// The service: never exits for a credential it cannot read (it waits,
/// `/readyz` 503); SIGTERM exits 0, also while waiting.
async fn serve(path: &Path, config: Config) -> ExitCode {
    let service = match start_when_ready(path, config).await {
        Ok(Some(service)) => service,
        Ok(None) => return ExitCode::from(OK),
        Err(code) => return code,
    };
    let app = service.app();
    service.run().await;
    flush_alerts(&app).await;
    ExitCode::from(OK)
}

/// The service started as `rekey run` starts it: SIGTERM/SIGINT handled,
/// admin port bound, credentials waited for ([`Service::start_when_ready`]).
/// `None`: stopped by a signal while waiting. A port in use or a journal
/// that cannot be opened is a runtime failure (1).
pub async fn start_when_ready(path: &Path, config: Config) -> Result<Option<Service>, ExitCode> {
    let cancel = tokio_util::sync::CancellationToken::new();
    crate::signals::cancel_on_signal(cancel.clone());
    Service::start_when_ready(path, config, cancel)
        .await
        .map_err(|e| {
            crate::errln!("error: {e}");
            ExitCode::from(FAILURE)
        })
}

/// Binds the admin port and resolves its token. Both failures are runtime
/// ones (1): a token reference that cannot be read (its shape was
/// validated) and a port in use.
pub async fn start_service(path: &Path, app: Arc<App>) -> Result<Service, ExitCode> {
    Service::start(path, app).await.map_err(|e| {
        crate::errln!("error: {e}");
        ExitCode::from(FAILURE)
    })
}
