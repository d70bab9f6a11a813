//! Who may write what: advisory locks on a file beside the database (`DB.lock`), so that
//! several `ingestor` processes can share one database safely.
//!
//! POSIX record locks (`fcntl(F_SETLK)`) rather than a pid file: the kernel drops them when
//! the process dies, `kill -9` included, so nothing stale is ever left to clean up, and
//! `F_GETLK` names the process that holds one. They belong to the process, not to a file
//! descriptor, which is what the hand-over to live mode needs: they survive `exec()` as long
//! as one descriptor of the lock file stays open across it, and the new image taking the same
//! lock again is not a conflict with itself. (The price, POSIX's well-known trap: closing *any*
//! descriptor of the lock file drops all of the process's locks on it, so the file is opened
//! once per process and kept open.)
//!
//! One byte-range per purpose, in a file that stays empty:
//! - byte 0, **creation**: held while a new database is built and renamed into place, so that
//!   two processes starting on a missing database do not both build one;
//! - byte 1, **writers**: every writer holds it shared; `--from-scratch`, which replaces the
//!   whole database, needs it exclusive;
//! - one byte per **source**, at a hash of its absolute path: held exclusive by the one process
//!   ingesting that source.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const CREATION: i64 = 0;
const WRITERS: i64 = 1;
/// Source ranges start above the fixed ones.
const FIRST_SOURCE: i64 = 1 << 10;

/// The lock file of one database, open for the life of the process.
#[derive(Debug)]
pub struct Locks {
    file: File,
    path: PathBuf,
}

/// Someone else holds a lock: the process, when the system says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldBy(pub Option<u32>);

impl std::fmt::Display for HeldBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(pid) => write!(f, "process {pid}"),
            None => f.write_str("another process"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Shared,
    Exclusive,
}

impl Locks {
    /// Opens (creating with `mode`, never through a symlink) the lock file of database `db`.
    pub fn open(db: &Path, mode: u32) -> io::Result<Locks> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        Ok(Locks { file, path })
    }

    /// Opens the lock file of database `db` only to see who holds what (`ingestor status`):
    /// read-only and never created, so that looking takes nothing from a writer. `None` when
    /// there is no lock file (no writer has run on `db` yet).
    pub fn probe(db: &Path) -> io::Result<Option<Locks>> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(file) => Ok(Some(Locks { file, path })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Who is creating the database, if anyone else is.
    pub fn creation_holder(&self) -> io::Result<Option<HeldBy>> {
        self.holder(CREATION, Kind::Exclusive)
    }

    /// One of the processes writing to the database (they share the lock), if any other is.
    pub fn writer_holder(&self) -> io::Result<Option<HeldBy>> {
        self.holder(WRITERS, Kind::Exclusive)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the creation lock, or says who holds it.
    pub fn try_creation(&self) -> io::Result<Result<(), HeldBy>> {
        self.try_lock(CREATION, Kind::Exclusive)
    }

    pub fn release_creation(&self) -> io::Result<()> {
        self.unlock(CREATION)
    }

    /// Registers this process as a writer of the database (shared with other writers).
    pub fn try_writer(&self) -> io::Result<Result<(), HeldBy>> {
        self.try_lock(WRITERS, Kind::Shared)
    }

    /// The database to itself: no other writer may be running (`--from-scratch`).
    pub fn try_sole_writer(&self) -> io::Result<Result<(), HeldBy>> {
        self.try_lock(WRITERS, Kind::Exclusive)
    }

    /// Takes the lock of the source read from `path` (absolute), or says who holds it.
    pub fn try_source(&self, path: &str) -> io::Result<Result<(), HeldBy>> {
        self.try_lock(source_byte(path), Kind::Exclusive)
    }

    pub fn release_source(&self, path: &str) -> io::Result<()> {
        self.unlock(source_byte(path))
    }

    /// Who holds the lock of the source read from `path`, if anyone else does.
    pub fn source_holder(&self, path: &str) -> io::Result<Option<HeldBy>> {
        self.holder(source_byte(path), Kind::Exclusive)
    }

    /// Keeps the lock file open across `exec()`, and with it every lock this process holds
    /// (the new image takes them again, see the module comment).
    pub fn keep_across_exec(&self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this struct owns; F_GETFD/F_SETFD only read and
        // write its descriptor flags.
        let rc = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags < 0 {
                flags
            } else {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC)
            }
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn try_lock(&self, start: i64, kind: Kind) -> io::Result<Result<(), HeldBy>> {
        let mut fl = flock(start, kind);
        // SAFETY: F_SETLK reads the flock struct it is given, on a descriptor we own.
        let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETLK, &mut fl) };
        if rc == 0 {
            return Ok(Ok(()));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EACCES | libc::EAGAIN) => {
                // Held: say by whom (it may have gone in between; then try once more later).
                Ok(Err(self.holder(start, kind)?.unwrap_or(HeldBy(None))))
            }
            _ => Err(err),
        }
    }

    fn holder(&self, start: i64, kind: Kind) -> io::Result<Option<HeldBy>> {
        let mut fl = flock(start, kind);
        // SAFETY: F_GETLK reads and rewrites the flock struct it is given.
        let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_GETLK, &mut fl) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if fl.l_type == libc::F_UNLCK as libc::c_short {
            return Ok(None);
        }
        Ok(Some(HeldBy(
            u32::try_from(fl.l_pid).ok().filter(|&p| p > 0),
        )))
    }

    fn unlock(&self, start: i64) -> io::Result<()> {
        let mut fl = flock(start, Kind::Exclusive);
        fl.l_type = libc::F_UNLCK as libc::c_short;
        // SAFETY: as in `try_lock`.
        let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_SETLK, &mut fl) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn flock(start: i64, kind: Kind) -> libc::flock {
    // SAFETY: flock is plain data; all-zero is a valid value, and the fields that matter are
    // set below.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = match kind {
        Kind::Shared => libc::F_RDLCK,
        Kind::Exclusive => libc::F_WRLCK,
    } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = start as libc::off_t;
    fl.l_len = 1;
    fl
}

/// The byte that stands for a source: FNV-1a of its path, so that every build of ingestor
/// (an old process and a new one after an upgrade) agrees on it. Collisions would only make
/// two sources wait for each other; at 2^61 places they do not happen in practice.
fn source_byte(path: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    FIRST_SOURCE + (h >> 3) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_bytes_are_stable_and_clear_of_the_fixed_ones() {
        // Pinned: another build must pick the same byte for the same path.
        assert_eq!(
            source_byte(""),
            FIRST_SOURCE + (0xcbf2_9ce4_8422_2325u64 >> 3) as i64
        );
        assert_ne!(
            source_byte("/a/claude.jsonl"),
            source_byte("/a/codex.jsonl")
        );
        assert!(source_byte("/x") >= FIRST_SOURCE);
    }

    #[test]
    fn a_process_may_take_its_own_locks_again() {
        let dir = tempfile::tempdir().unwrap();
        let locks = Locks::open(&dir.path().join("x.db"), 0o600).unwrap();
        assert_eq!(locks.try_source("/a").unwrap(), Ok(()));
        // A second open in the same process (as after exec) is not a conflict.
        let again = Locks::open(&dir.path().join("x.db"), 0o600).unwrap();
        assert_eq!(again.try_source("/a").unwrap(), Ok(()));
        assert_eq!(again.try_writer().unwrap(), Ok(()));
        assert_eq!(again.try_creation().unwrap(), Ok(()));
        // F_GETLK never reports the caller's own locks.
        assert_eq!(locks.source_holder("/a").unwrap(), None);
        drop(again);
        drop(locks);
    }

    #[test]
    fn a_probe_sees_the_holder_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        assert!(Locks::probe(&db).unwrap().is_none());
        assert!(!dir.path().join("x.db.lock").exists());
        // The probe is read-only; F_GETLK still answers on it (our own locks are invisible
        // to it, so this only checks that it runs and finds nothing held by others).
        let locks = Locks::open(&db, 0o600).unwrap();
        assert_eq!(locks.try_source("/a").unwrap(), Ok(()));
        let probe = Locks::probe(&db).unwrap().expect("lock file");
        assert_eq!(probe.source_holder("/a").unwrap(), None);
        assert_eq!(probe.writer_holder().unwrap(), None);
        assert_eq!(probe.creation_holder().unwrap(), None);
    }
}
