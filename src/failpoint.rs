//! Crash and fault injection for the crash-matrix and fault tests.
//!
//! With the `failpoints` feature, `REKEY_FAILPOINT=<name>` makes the process
//! abort (no unwinding, no destructors: like SIGKILL) when it reaches the
//! named point, and `REKEY_FAILPOINT=<name>:panic` makes it panic there.
//! `REKEY_IO_FAULT=<op>:<n>` makes the n-th file operation `op` of the
//! process (`write`, `fsync`, `rename`, `dirsync`, `remove`) fail with EIO —
//! `dirsync` after its rename landed. Without the feature this compiles to
//! nothing.

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    let Ok(point) = std::env::var("REKEY_FAILPOINT") else {
        return;
    };
    if point == name {
        crate::errln!("failpoint {name}: aborting");
        std::process::abort();
    }
    if point.strip_suffix(":panic") == Some(name) {
        panic!("failpoint {name}: injected panic");
    }
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
    let mut calls = CALLS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let count = calls.get_or_insert_with(HashMap::new).entry(op.to_string()).or_insert(0);
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
