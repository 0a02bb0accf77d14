//! Log set-up: pretty for people, JSON lines for machines, always to stderr.
//! `RUST_LOG` overrides the default filter. Panics are logged through the
//! same subscriber, as one error line with key-like words scrubbed.

use std::ffi::OsStr;
use std::io::{self, IsTerminal, Write};

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The AWS SDK and HTTP stack are chatty at info; rekey's own lines matter.
const DEFAULT_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_secretsmanager=warn,hyper=warn,reqwest=warn";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(colour(
            io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .log_internal_errors(false);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Colour codes only for a person at a terminal: not into a file, a pipe,
/// journald or `kubectl logs`, and not when `NO_COLOR` is set (to anything
/// but the empty string, as no-color.org says).
fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Standard error that never fails: a closed pipe or a full disk on the log
/// must not abort a rotation between two steps (the line is lost instead).
struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Prints to standard output, ignoring a reader that went away (`| head`):
/// what a command prints is never worth failing its work for.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// [`out!`] with a newline.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints to standard error, ignoring a closed or full stream (see [`out!`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Replaces the default panic output (a free-form message and, with
/// `RUST_BACKTRACE`, a backtrace that could show values) with one error
/// line through `tracing`: the panic's message, scrubbed of anything that
/// may be a key ([`crate::secret::scrub`]), and its source location.
/// Install it after [`init`], so that the line takes the chosen format.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = crate::secret::scrub(&panic_message(info.payload()));
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(
            panic.message = %message,
            panic.location = location.as_deref().unwrap_or("unknown"),
            panic.thread = %thread,
            "panic"
        );
    }));
}

/// The text a panic was raised with (`panic!` with a message or a format
/// makes a `&str` or a `String`; anything else says nothing readable).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(text), _) => (*text).to_string(),
        (None, Some(text)) => text.clone(),
        (None, None) => "a panic without a message".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None), "a file or a pipe");
    }
}
