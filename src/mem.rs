//! The process's own memory: reading it cheaply enough to check often, and
//! handing freed heap back to the operating system.

/// Peak resident set size of this process image, in bytes. On Linux this is
/// VmHWM, which starts afresh at `exec()` (ru_maxrss would carry the
/// backfill's peak into the live process) and can be reset ([`reset_peak`]).
pub fn peak_rss() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(kb) = status_kb("VmHWM:") {
        return kb * 1024;
    }
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

/// Starts the peak over, where the platform allows (Linux: clear_refs 5), so
/// that a pipe's live phase reports its own peak, not the backfill's.
pub fn reset_peak() {
    #[cfg(target_os = "linux")]
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(target_os = "linux")]
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Current resident set size in bytes (0 where it cannot be read).
#[cfg(target_os = "linux")]
pub fn current_rss() -> u64 {
    use std::io::Read;
    // statm: "size resident shared ..." in pages; read into a stack buffer so
    // that checking the budget allocates nothing.
    let mut buf = [0u8; 128];
    let Ok(mut f) = std::fs::File::open("/proc/self/statm") else {
        return 0;
    };
    let n = f.read(&mut buf).unwrap_or(0);
    let pages = std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0);
    pages * page_size()
}

#[cfg(target_os = "macos")]
pub fn current_rss() -> u64 {
    let mut info = std::mem::MaybeUninit::<libc::proc_taskinfo>::zeroed();
    let size = std::mem::size_of::<libc::proc_taskinfo>() as libc::c_int;
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`.
    let n = unsafe {
        libc::proc_pidinfo(
            libc::getpid(),
            libc::PROC_PIDTASKINFO,
            0,
            info.as_mut_ptr().cast(),
            size,
        )
    };
    if n != size {
        return 0;
    }
    unsafe { info.assume_init() }.pti_resident_size
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn current_rss() -> u64 {
    0
}

#[cfg(target_os = "linux")]
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(4096) as u64
}

/// Returns freed heap to the OS. glibc keeps freed memory in its arenas
/// (measured: SQLite's shrink_memory alone did not lower RSS); other
/// allocators (macOS) return large blocks on free, so this is a no-op there.
pub fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes glibc serve every block over 128 KiB with its own mapping, so that a
/// huge line's buffers go back to the OS as soon as they are freed. By default
/// glibc raises this threshold after such a free (up to 32 MiB), after which
/// big buffers stay in the heap and keep RSS up. Batches and read buffers are
/// allocated once and reused, so the mappings do not churn.
pub fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// SQLite's own heap in use and its high-water mark, in bytes: the part of
/// RSS that cache settings govern.
pub fn sqlite_heap() -> (u64, u64) {
    // SAFETY: both are thread-safe counters with no preconditions.
    unsafe {
        (
            rusqlite::ffi::sqlite3_memory_used().max(0) as u64,
            rusqlite::ffi::sqlite3_memory_highwater(0).max(0) as u64,
        )
    }
}
