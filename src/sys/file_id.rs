//! Which file this is, whatever it is called now: its device and inode.
//!
//! One type for every place that must tell files apart by identity rather
//! than by name: the database file (replaced or removed under a running
//! writer), a followed path that names another file after a rotation, and
//! the file an `ingest_sources` row was read from. It lives here, under every
//! stage, because both `db` and `input` need it and `input` already calls
//! `db`.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The file open as `file`, wherever its name went.
    pub fn of_file(file: &File) -> io::Result<FileId> {
        Ok(FileId::of(&file.metadata()?))
    }

    /// The file `path` names now (through symbolic links).
    pub fn at(path: &Path) -> io::Result<FileId> {
        Ok(FileId::of(&std::fs::metadata(path)?))
    }

    /// From `ingest_sources.dev` and `.ino` (SQLite integers are signed; a
    /// pipe has neither).
    pub fn from_columns(dev: Option<i64>, ino: Option<i64>) -> Option<FileId> {
        Some(FileId {
            dev: dev? as u64,
            ino: ino? as u64,
        })
    }

    /// For `ingest_sources.dev` and `.ino`: the same bits, as signed integers.
    pub fn columns(self) -> (i64, i64) {
        (self.dev as i64, self.ino as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_columns_give_back_the_same_file_even_above_i64_max() {
        let id = FileId {
            dev: u64::MAX - 1,
            ino: 1 << 63,
        };
        let (dev, ino) = id.columns();
        assert_eq!(FileId::from_columns(Some(dev), Some(ino)), Some(id));
        assert_eq!(FileId::from_columns(None, Some(ino)), None);
        assert_eq!(FileId::from_columns(Some(dev), None), None);
    }

    #[test]
    fn a_file_is_itself_under_any_name_and_not_its_copy() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a");
        std::fs::write(&a, b"x\n").expect("write");
        let open = File::open(&a).expect("open");
        let b = dir.path().join("b");
        std::fs::rename(&a, &b).expect("rename");
        assert_eq!(FileId::of_file(&open).unwrap(), FileId::at(&b).unwrap());
        std::fs::copy(&b, &a).expect("copy");
        assert_ne!(FileId::at(&a).unwrap(), FileId::at(&b).unwrap());
    }
}
