//! Crash injection for the crash-matrix tests.
//!
//! With the `failpoints` feature, `REKEY_FAILPOINT=<name>` makes the process
//! abort (no unwinding, no destructors: like SIGKILL) when it reaches the
//! named point. Without the feature this compiles to nothing.

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if std::env::var("REKEY_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
