//! `rekey run` as a service: the daemon loop with the admin API, the
//! start-up readiness probe and hot reload around it, started together and
//! stopped in order — on shutdown the loop stops taking rotations and drains
//! (up to `daemon.shutdown_timeout`) while the admin API still answers
//! (`/readyz` 503), then the API and the watchers stop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::admin::{self, Admin};
use crate::app::App;
use crate::daemon::{Daemon, Mode, Summary};

/// Open requests get this long once the daemon has stopped.
const ADMIN_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the service could not start (each names its config field).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("daemon.admin_token: {0}")]
    Token(String),
    #[error("daemon.admin_listen: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A daemon ready to run: token resolved, admin port bound.
pub struct Service {
    daemon: Daemon,
    admin: Arc<Admin>,
    listener: TcpListener,
    config_path: PathBuf,
}

impl Service {
    /// Resolves the admin token and binds the admin port (`:0` picks a free one).
    pub async fn start(config_path: &Path, app: Arc<App>) -> Result<Service, StartError> {
        let token = match &app.config.daemon.admin_token {
            Some(reference) => Some(
                crate::app::resolve(reference)
                    .await
                    .map_err(StartError::Token)?,
            ),
            None => None,
        };
        let addr = app.config.daemon.admin_listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen { addr, source })?;
        let daemon = Daemon::new(app);
        Ok(Service {
            admin: Arc::new(Admin {
                daemon: daemon.clone(),
                token,
            }),
            daemon,
            listener,
            config_path: config_path.to_path_buf(),
        })
    }

    /// The bound admin address (the real port when configured as `:0`).
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Runs until the app's cancel token fires and running rotations drained.
    pub async fn run(self) -> Summary {
        let app = self.daemon.app();
        let address = self.admin_addr().map(|a| a.to_string()).unwrap_or_default();
        let rotate = if self.admin.token.is_some() {
            "on"
        } else {
            "off (no daemon.admin_token)"
        };
        info!(%address, rotate_endpoint = rotate, "admin API listening");
        let stop_admin = CancellationToken::new();
        let server = tokio::spawn(admin::serve(
            self.listener,
            self.admin.clone(),
            stop_admin.clone().cancelled_owned(),
        ));
        let watcher = tokio::spawn(crate::reload::watch(
            self.config_path.clone(),
            self.daemon.clone(),
            app.cancel.clone(),
        ));
        let prober = self.daemon.clone();
        let probe = tokio::spawn(async move { prober.probe_until_ready().await });

        let summary = self.daemon.run(Mode::Forever).await;

        probe.abort();
        watcher.abort();
        stop_admin.cancel();
        match tokio::time::timeout(ADMIN_STOP_TIMEOUT, server).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "admin API stopped with an error"),
            Err(_) => tracing::warn!("admin API: open requests cut off at shutdown"),
            Ok(_) => {}
        }
        info!("stopped");
        summary
    }
}
