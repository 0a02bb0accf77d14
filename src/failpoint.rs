//! Crash and fault injection for the crash-matrix, panic and fault tests.
//!
//! With the `failpoints` feature, `REKEY_FAILPOINT=<name>` makes the process
//! abort (no unwinding, no destructors: like SIGKILL) when it reaches the
//! named point; with `REKEY_FAILPOINT_ACTION=panic` it panics there instead,
//! with a message that ends in `REKEY_FAILPOINT_PANIC_TEXT` when that is
//! set (a test puts a key there to prove the panic hook never shows one).
//! `REKEY_IO_FAULT=<op>:<n>` makes the n-th file operation `op` of the
//! process (`write`, `fsync`, `rename`, `dirsync`, `remove`) fail with EIO —
//! `dirsync` after its rename landed. A point reached through [`pause`]
//! (`lease:held`, `promote`) with `REKEY_FAILPOINT_ACTION=pause` sleeps for
//! `REKEY_FAILPOINT_PAUSE_MS` (default 1000) instead, so that a test can
//! force two processes to overlap, or change the secret between promote
//! and the revoke. Without the feature this compiles to
//! nothing.

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
    crate::errln!("failpoint {name}: aborting");
    std::process::abort();
}

/// Like [`hit`], except that with `REKEY_FAILPOINT_ACTION=pause` the task
/// sleeps `REKEY_FAILPOINT_PAUSE_MS` (default 1000) at the point and goes on:
/// a test waits for the "pausing" line, then acts while this process sits
/// inside the window (e.g. holding a lease). Async so that other tasks of
/// the process keep running meanwhile.
#[cfg(feature = "failpoints")]
pub async fn pause(name: &str) {
    if !std::env::var("REKEY_FAILPOINT").is_ok_and(|v| v == name) {
        return;
    }
    if !std::env::var("REKEY_FAILPOINT_ACTION").is_ok_and(|a| a == "pause") {
        return hit(name);
    }
    let ms = std::env::var("REKEY_FAILPOINT_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1000);
    crate::errln!("failpoint {name}: pausing {ms} ms");
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    crate::errln!("failpoint {name}: resuming");
}

/// `Err(EIO)` when `REKEY_IO_FAULT` names this call of `op`.
#[cfg(feature = "failpoints")]
pub fn io(op: &str) -> std::io::Result<()> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CALLS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
    let Ok(spec) = std::env::var("REKEY_IO_FAULT") else {
        return Ok(());
    };
    let Some((want, n)) = spec.split_once(':') else {
        return Ok(());
    };
    if want != op {
        return Ok(());
    }
    let mut calls = CALLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let count = calls
        .get_or_insert_with(HashMap::new)
        .entry(op.to_string())
        .or_insert(0);
    *count += 1;
    if n.parse::<u64>().is_ok_and(|n| n == *count) {
        crate::errln!("io fault: {op} #{count} fails");
        return Err(std::io::Error::from_raw_os_error(libc::EIO));
    }
    Ok(())
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn io(_op: &str) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn pause(_name: &str) {}
