//! glibc's allocator, tuned for a training loop. Each step allocates and frees the same large
//! tensors (up to tens of MB); by default glibc serves each from a fresh `mmap` and returns it
//! on free, so every step pays page faults and zeroing for all of them (a third of the main
//! thread's time in `perf`). Served from the heap and kept there, the pages are reused.

/// Keeps large blocks on the heap (below 32 MiB, glibc's ceiling for this setting), never trims
/// it, and grows it 256 MiB at a time.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
