//! SIGTERM / SIGINT → cancel: no new rotations, running ones stop at the next
//! step boundary. SIGHUP → reload the config (the daemon only).

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

pub fn cancel_on_signal(cancel: CancellationToken) {
    tokio::spawn(async move {
        // Installing a handler fails only outside a Tokio runtime with signals enabled.
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        cancel.cancel();
    });
}

/// SIGHUP as a stream of reload requests. Installing it also replaces
/// SIGHUP's default action (terminate) for the rest of the process.
pub fn hangups() -> Signal {
    // Fails only outside a Tokio runtime with signals enabled.
    signal(SignalKind::hangup()).expect("SIGHUP handler")
}
