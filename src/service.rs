//! `rekey run` as a service: the daemon loop with the admin API, the
//! start-up readiness probe and hot reload around it, started together and
//! stopped in order — on shutdown the loop stops taking rotations and drains
//! (up to `daemon.shutdown_timeout`) while the admin API still answers
//! (`/readyz` 503), then the API and the watchers stop.
//!
//! A credential that cannot be read at start (an unset variable, a file not
//! mounted yet, AWS unreachable) does not end the service: it binds the
//! admin port, answers `/readyz` 503 naming the references, and builds the
//! app again with a capped exponential backoff until they can be read
//! ([`Service::start_when_ready`]). Exiting instead would turn a boot-time
//! blip into a dead daemon, or into a restart loop that serves no probes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::waiting::{self, Waiting};
use crate::admin::{self, Admin};
use crate::app::{App, BuildError};
use crate::backoff::Backoff;
use crate::config::Config;
use crate::config::secret_ref::{self, Unreadable};
use crate::daemon::{Daemon, Mode, Summary};

/// Open requests get this long once the daemon has stopped.
const ADMIN_STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses before reading unreadable credentials again: 1 s doubling to
/// 60 s, exact (documented in the run-book).
const CREDENTIAL_RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

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
    /// Building the app failed for another reason than a credential
    /// (the journal or the audit log cannot be opened).
    #[error(transparent)]
    Build(BuildError),
}

/// A daemon ready to run: token resolved, admin port bound.
pub struct Service {
    daemon: Daemon,
    admin: Arc<Admin>,
    listener: TcpListener,
    config_path: PathBuf,
}

/// What one attempt at building the app yields.
enum Attempt {
    Built(App, Option<SecretString>),
    /// Retried: these references cannot be read now.
    Unreadable(Vec<Unreadable>),
    /// Not retried.
    Failed(BuildError),
}

impl Service {
    /// Resolves the admin token and binds the admin port (`:0` picks a free one).
    pub async fn start(config_path: &Path, app: Arc<App>) -> Result<Service, StartError> {
        let token = match &app.config.daemon.admin_token {
            Some(reference) => Some(
                secret_ref::resolve(reference)
                    .await
                    .map_err(StartError::Token)?,
            ),
            None => None,
        };
        let listener = bind(&app.config).await?;
        Ok(Service::assemble(config_path, app, token, listener))
    }

    /// `rekey run`: binds the admin port, then builds the app and resolves
    /// the admin token, retrying (1 s doubling to 60 s) while credentials
    /// cannot be read — the admin API meanwhile answers `/healthz` 200 and
    /// `/readyz` 503 naming them (see [`waiting`]). `cancel` (SIGTERM) ends
    /// the wait: `Ok(None)`. The app built shuts down on `cancel` too.
    pub async fn start_when_ready(
        config_path: &Path,
        config: Config,
        cancel: CancellationToken,
    ) -> Result<Option<Service>, StartError> {
        let addr = config.daemon.admin_listen;
        let listen_error = |source| StartError::Listen { addr, source };
        let listener = bind(&config).await?.into_std().map_err(listen_error)?;
        let config = Arc::new(config);
        let waiting = Arc::new(Waiting::new(config.clone(), existing_journal(&config)));
        let (server, stop_waiting) =
            serve_while_waiting(&listener, waiting.clone()).map_err(listen_error)?;
        let listener = TcpListener::from_std(listener).map_err(listen_error)?;
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let wait = Wait {
            config_path,
            waiting: &waiting,
            cancel: &cancel,
            address: &address,
        };
        let built = wait.build_when_ready(config).await;
        stop_waiting.cancel();
        await_stopped(server).await;
        let Some((app, token)) = built? else {
            info!("stopped while waiting for credentials");
            return Ok(None);
        };
        let app = Arc::new(app.with_cancel(cancel));
        Ok(Some(Service::assemble(config_path, app, token, listener)))
    }

    fn assemble(
        config_path: &Path,
        app: Arc<App>,
        token: Option<SecretString>,
        listener: TcpListener,
    ) -> Service {
        let daemon = Daemon::new(app);
        Service {
            admin: Arc::new(Admin {
                daemon: daemon.clone(),
                token,
            }),
            daemon,
            listener,
            config_path: config_path.to_path_buf(),
        }
    }

    /// The app the daemon started with.
    pub fn app(&self) -> Arc<App> {
        self.daemon.app()
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
        await_stopped(server).await;
        info!("stopped");
        summary
    }
}

async fn bind(config: &Config) -> Result<TcpListener, StartError> {
    let addr = config.daemon.admin_listen;
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Serves the waiting API (see [`waiting`]) until the token returned is
/// cancelled, on a duplicate of `listener`'s socket: stopping it leaves the
/// port bound, and connections made during the handover wait in the backlog
/// for the real API.
fn serve_while_waiting(
    listener: &std::net::TcpListener,
    waiting: Arc<Waiting>,
) -> std::io::Result<(AdminTask, CancellationToken)> {
    let duplicate = TcpListener::from_std(listener.try_clone()?)?;
    let stop = CancellationToken::new();
    let stopped = stop.clone().cancelled_owned();
    let router = waiting::router(waiting);
    let server = tokio::spawn(async move {
        axum::serve(duplicate, router)
            .with_graceful_shutdown(stopped)
            .await
    });
    Ok((server, stop))
}

type AdminTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Waits (up to [`ADMIN_STOP_TIMEOUT`]) for an admin server told to stop.
async fn await_stopped(server: AdminTask) {
    match tokio::time::timeout(ADMIN_STOP_TIMEOUT, server).await {
        Ok(Ok(Err(e))) => warn!(error = %e, "admin API stopped with an error"),
        Err(_) => warn!("admin API: open requests cut off at shutdown"),
        Ok(_) => {}
    }
}

/// The journal for `/v1/status` while waiting, if its directory exists
/// (waiting creates nothing; the app opens or creates it once built).
fn existing_journal(config: &Config) -> Option<Arc<dyn crate::state::StateStore>> {
    let journal = crate::status::existing_journal(config)?;
    Some(Arc::new(journal))
}

/// The wait for credentials (see [`Service::start_when_ready`]).
struct Wait<'a> {
    config_path: &'a Path,
    waiting: &'a Waiting,
    cancel: &'a CancellationToken,
    /// The admin API's bound address, for the log.
    address: &'a str,
}

impl Wait<'_> {
    /// Attempts until the app builds (`Some`), `cancel` fires (`None`) or
    /// a failure other than an unreadable credential (`Err`). SIGHUP tries
    /// again at once. Each retry reads the config file again, so a fixed
    /// reference is picked up without a restart.
    async fn build_when_ready(
        &self,
        mut config: Arc<Config>,
    ) -> Result<Option<(App, Option<SecretString>)>, StartError> {
        // Also keeps SIGHUP (`systemctl reload`) from ending the process while waiting.
        let mut hangups = crate::signals::hangups();
        let mut retries = 0u32;
        let mut announced = false;
        loop {
            let unreadable = match attempt(&config).await {
                Attempt::Built(app, token) => return Ok(Some((app, token))),
                Attempt::Failed(e) => return Err(StartError::Build(e)),
                Attempt::Unreadable(unreadable) => secret_ref::describe(&unreadable),
            };
            if !announced {
                self.announce();
                announced = true;
            }
            let delay = CREDENTIAL_RETRY.delay(retries);
            retries = retries.saturating_add(1);
            warn!(
                reason = %unreadable,
                retry_in_s = delay.as_secs(),
                "not ready: cannot read credentials; trying again"
            );
            self.waiting.set_reason(unreadable);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = hangups.recv() => info!("SIGHUP: reading the config and credentials again now"),
                _ = self.cancel.cancelled() => return Ok(None),
            }
            config = self.reread(config);
        }
    }

    fn announce(&self) {
        // The same message as once ready, so finding the port in the log works in both phases.
        info!(
            address = %self.address,
            rotate_endpoint = "off until the credentials can be read",
            waiting_for = "credentials",
            "admin API listening"
        );
    }

    /// The config file as it is now, or `old` when it no longer loads.
    fn reread(&self, old: Arc<Config>) -> Arc<Config> {
        match crate::config::load_file(self.config_path) {
            Ok(new) => {
                if new.daemon.admin_listen != old.daemon.admin_listen {
                    warn!(
                        address = %self.address,
                        "daemon.admin_listen changed while waiting for credentials; it applies at the next start"
                    );
                }
                let new = Arc::new(new);
                self.waiting.set_config(new.clone());
                new
            }
            Err(e) => {
                warn!(error = %e, "the config file no longer loads; trying again with the one loaded before");
                old
            }
        }
    }
}

/// One attempt: the admin token, then the app. When the token cannot be
/// read, every reference is tried so that all unreadable ones are named.
async fn attempt(config: &Config) -> Attempt {
    let token = match &config.daemon.admin_token {
        None => None,
        Some(reference) => match secret_ref::resolve(reference).await {
            Ok(token) => Some(token),
            Err(_) => {
                return Attempt::Unreadable(
                    secret_ref::unreadable(&secret_ref::references(config)).await,
                );
            }
        },
    };
    match App::build(config.clone()).await {
        Ok(app) => Attempt::Built(app, token),
        Err(BuildError::Credentials(unreadable)) => Attempt::Unreadable(unreadable),
        Err(e) => Attempt::Failed(e),
    }
}
