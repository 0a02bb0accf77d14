//! Giving freed memory back to the system once the loop settles. Reading
//! thousands of journals (the first pass, a reload, a catch-up) allocates
//! on many threads; glibc keeps what they freed in per-thread arenas, so
//! an idle daemon would keep the peak's resident size. `malloc_trim`
//! returns the free pages of every arena. Elsewhere it does nothing.

/// Returns free heap pages to the system (glibc); a no-op elsewhere.
pub(super) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes no pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Caps the heap at one arena (glibc), unless `MALLOC_ARENA_MAX` says
/// otherwise; call it before any thread starts. glibc gives a thread that
/// meets a locked arena one of its own, up to eight per core, and each keeps
/// its own free pages: after a catch-up the blocking threads' arenas held
/// ~24 MiB that the idle daemon never used again. The daemon waits on the
/// network, not on `malloc`; with one arena and the per-thread caches glibc
/// keeps in front of it, idle RSS at 10,000 policies fell ~9 MiB.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a field of the allocator's parameters;
        // it is called before the runtime starts any thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
