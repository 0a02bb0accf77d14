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

/// The HTTP stack is chatty at info; rekey's own lines matter.
const DEFAULT_FILTER: &str = "info,hyper=warn,reqwest=warn";

/// The AWS SDK's credential chain warns at every start outside EC2 (the
/// IMDS probe) and its retries warn before rekey reports the error in one
/// line anyway: capped at error unless `RUST_LOG` names the target.
const AWS_TARGETS: &[&str] = &[
    "aws_config",
    "aws_credential_types",
    "aws_runtime",
    "aws_sdk_secretsmanager",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
];

/// `RUST_LOG` (or the default) with the AWS targets it does not name capped at error.
fn directives(rust_log: Option<&str>) -> String {
    let base = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_FILTER);
    let named = |target: &str| {
        base.split(',')
            .any(|d| d.split(['=', '[']).next() == Some(target))
    };
    let caps = AWS_TARGETS
        .iter()
        .filter(|t| !named(t))
        .map(|t| format!(",{t}=error"));
    std::iter::once(base.to_string()).chain(caps).collect()
}

pub fn init(format: LogFormat) {
    let rust_log = std::env::var(EnvFilter::DEFAULT_ENV).ok();
    let filter = EnvFilter::try_new(directives(rust_log.as_deref()))
        .unwrap_or_else(|_| EnvFilter::new(directives(None)));
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

    #[test]
    fn aws_targets_are_capped_at_error_unless_rust_log_names_them() {
        let default = directives(None);
        assert!(default.starts_with("info,hyper=warn"), "{default}");
        assert!(default.contains(",aws_config=error"), "{default}");
        assert!(default.contains(",aws_smithy_runtime=error"), "{default}");
        assert_eq!(directives(Some(" ")), default);
        let debug = directives(Some("debug"));
        assert!(debug.starts_with("debug,aws_config=error,"), "{debug}");
        let asked = directives(Some("info,aws_config=debug"));
        assert!(!asked.contains("aws_config=error"), "{asked}");
        assert!(asked.contains(",aws_smithy_runtime=error"), "{asked}");
        assert!(tracing_subscriber::EnvFilter::try_new(&asked).is_ok());
    }
}
