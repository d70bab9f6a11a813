//! The process's own memory use, read cheaply enough to check often.

/// Peak resident set size so far, in bytes.
pub fn peak_rss() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    let max = unsafe { usage.assume_init() }.ru_maxrss.max(0) as u64;
    // Linux reports KiB, macOS bytes.
    if cfg!(target_os = "macos") {
        max
    } else {
        max * 1024
    }
}
