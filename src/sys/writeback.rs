//! Starting the write-back of a file the process will `fsync` later.
//!
//! A new database is built with no syncs and made durable by one `fsync`
//! before its rename: at that point the kernel still holds every page of it
//! dirty (a build of 1 GiB stays under the kernel's own write-back
//! thresholds), and the whole file is written while the process waits.
//! Asking for the write-back of the rows as soon as they are loaded lets the
//! disk write them while the indexes are built, leaving the final `fsync`
//! the index pages and the few pages rewritten since.

use std::path::Path;

/// Asks the kernel to start writing `path`'s dirty pages to disk, on a
/// thread of its own: the request itself takes a while (about 0.5 s for
/// 1 GiB here, queueing the writes), which then overlaps the caller's work.
/// Best effort: durability still comes from the `fsync` that follows, so
/// any failure is ignored, and where no such request exists (macOS, whose
/// `fcntl(F_FULLFSYNC)` waits) this does nothing. Joining the handle waits
/// for the request, not for the writes.
pub fn start(path: &Path) -> Option<std::thread::JoinHandle<()>> {
    #[cfg(target_os = "linux")]
    {
        let file = std::fs::File::open(path).ok()?;
        let spawned = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                use std::os::fd::AsRawFd;
                // SAFETY: `file` keeps the descriptor open for the call;
                // offset 0 and length 0 mean the whole file, and
                // SYNC_FILE_RANGE_WRITE only starts the writes.
                unsafe {
                    libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE)
                };
            });
        spawned.ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A missing file asks for nothing; a written one is handed to a thread
    /// that finishes, and the file is as it was.
    #[test]
    fn a_write_back_request_finishes_and_leaves_the_file_alone() {
        let dir = std::env::temp_dir().join(format!("ingestor-writeback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(start(&dir.join("missing")).is_none());
        let path = dir.join("written");
        let bytes: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let handle = start(&path);
        assert_eq!(handle.is_some(), cfg!(target_os = "linux"));
        if let Some(handle) = handle {
            handle.join().unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
