//! The process's own memory: reading it cheaply enough to check often, and
//! handing freed heap back to the operating system.

/// Peak resident set size of this process image, in bytes. On Linux this is
/// VmHWM, which starts afresh at `exec()` (ru_maxrss would carry the
/// backfill's peak into the live process) and can be reset ([`reset_peak`]).
/// Elsewhere it is ru_maxrss: the peak resident size (on macOS not the
/// footprint [`current_rss`] reads there).
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
    // SAFETY: getrusage succeeded (rc 0), so it filled the struct; it was
    // zeroed beforehand anyway, which is a valid rusage.
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

/// On macOS, the footprint the OS accounts to the process (what Activity
/// Monitor shows and memory pressure acts on): unlike the resident size it
/// counts compressed memory and leaves out clean pages the OS can drop.
#[cfg(target_os = "macos")]
pub fn current_rss() -> u64 {
    let mut info = std::mem::MaybeUninit::<libc::rusage_info_v2>::zeroed();
    // SAFETY: RUSAGE_INFO_V2 makes proc_pid_rusage write one rusage_info_v2
    // into the buffer, which is that size and aligned for it.
    let rc = unsafe {
        libc::proc_pid_rusage(
            libc::getpid(),
            libc::RUSAGE_INFO_V2,
            info.as_mut_ptr().cast::<libc::rusage_info_t>(),
        )
    };
    if rc != 0 {
        return 0;
    }
    // SAFETY: the call succeeded, so the struct is filled; it was zeroed
    // beforehand anyway, which is a valid rusage_info_v2 (plain integers).
    unsafe { info.assume_init() }.ri_phys_footprint
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
/// (measured: SQLite's shrink_memory alone did not lower RSS). macOS's
/// allocator keeps freed pages in its zones too (its small and tiny regions
/// are not returned on free): there, the zones are asked to give back all
/// they can.
pub fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
    #[cfg(target_os = "macos")]
    // SAFETY: a null zone means every zone, and a goal of 0 means as much as
    // possible; the call only returns free pages of the allocator's own.
    unsafe {
        malloc_zone_pressure_relief(std::ptr::null_mut(), 0);
    }
}

#[cfg(target_os = "macos")]
unsafe extern "C" {
    /// `<malloc/malloc.h>` (macOS 10.7+): frees what the zone (all zones if
    /// null) can spare, `goal` bytes or (0) as much as it can; returns the
    /// bytes released. The libc crate does not declare it.
    fn malloc_zone_pressure_relief(zone: *mut libc::c_void, goal: libc::size_t) -> libc::size_t;
}

/// Makes glibc serve every block over 128 KiB with its own mapping, so that a
/// huge line's buffers go back to the OS as soon as they are freed. By default
/// glibc raises this threshold after such a free (up to 32 MiB), after which
/// big buffers stay in the heap and keep RSS up. Batches and read buffers are
/// allocated once and reused, so the mappings do not churn. Elsewhere (macOS,
/// musl) there is no such knob: [`release_heap`] is what gives memory back.
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
