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
