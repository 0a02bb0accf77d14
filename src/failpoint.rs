//! Crash injection for the crash-matrix and panic tests.
//!
//! With the `failpoints` feature, `REKEY_FAILPOINT=<name>` makes the process
//! abort (no unwinding, no destructors: like SIGKILL) when it reaches the
//! named point; with `REKEY_FAILPOINT_ACTION=panic` it panics there instead,
//! with a message that ends in `REKEY_FAILPOINT_PANIC_TEXT` when that is
//! set (a test puts a key there to prove the panic hook never shows one).
//! Without the feature this compiles to nothing.

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if !std::env::var("REKEY_FAILPOINT").is_ok_and(|v| v == name) {
        return;
    }
    if std::env::var("REKEY_FAILPOINT_ACTION").is_ok_and(|a| a == "panic") {
        let text = std::env::var("REKEY_FAILPOINT_PANIC_TEXT").unwrap_or_default();
        let message = format!("failpoint {name}: injected panic {text}");
        panic!("{}", message.trim_end());
    }
    eprintln!("failpoint {name}: aborting");
    std::process::abort();
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
