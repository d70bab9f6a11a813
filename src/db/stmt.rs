//! The row insert statements, bound straight from a batch's arena.
//!
//! rusqlite binds every text with `SQLITE_TRANSIENT`, which makes SQLite copy
//! each value before the row record copies it again. The arena outlives each
//! `step`, so binding with `SQLITE_STATIC` is sound and saves a malloc and a
//! memcpy per value (and a second copy of a 100 MB line).

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{Connection, ffi};

use crate::batch::{BadLine, Batch, Cell};

/// A prepared statement owned outside rusqlite's cache, tied to its
/// connection's lifetime so it is always finalized first.
pub struct RawStmt<'conn> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    _conn: PhantomData<&'conn Connection>,
}

impl<'conn> RawStmt<'conn> {
    pub fn prepare(conn: &'conn Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: the handle is only used while `conn` is borrowed.
        let db = unsafe { conn.handle() };
        let mut stmt = ptr::null_mut();
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        check(db, rc)?;
        Ok(RawStmt {
            db,
            stmt,
            _conn: PhantomData,
        })
    }

    /// Binds `cells` (1-based parameters in order) and runs the statement.
    /// The bytes must stay untouched until this returns, which `&Batch`
    /// guarantees.
    pub fn execute(&mut self, batch: &Batch, cells: &[Cell]) -> rusqlite::Result<()> {
        for (i, cell) in cells.iter().enumerate() {
            self.bind_cell(i as c_int + 1, batch, *cell)?;
        }
        self.step()
    }

    /// Inserts a `bad_lines` row: offset, reason, raw bytes.
    pub fn execute_bad(&mut self, batch: &Batch, bad: &BadLine) -> rusqlite::Result<()> {
        check(self.db, unsafe {
            ffi::sqlite3_bind_int64(self.stmt, 1, bad.offset as i64)
        })?;
        let (start, len) = bad.reason;
        self.bind_cell(2, batch, Cell::Text { start, len })?;
        let raw = batch.text(bad.raw.0, bad.raw.1);
        let rc = unsafe {
            ffi::sqlite3_bind_blob64(
                self.stmt,
                3,
                raw.as_ptr().cast(),
                raw.len() as u64,
                ffi::SQLITE_STATIC(),
            )
        };
        check(self.db, rc)?;
        self.step()
    }

    fn bind_cell(&mut self, idx: c_int, batch: &Batch, cell: Cell) -> rusqlite::Result<()> {
        let rc = match cell {
            Cell::Null => unsafe { ffi::sqlite3_bind_null(self.stmt, idx) },
            Cell::Int(v) => unsafe { ffi::sqlite3_bind_int64(self.stmt, idx, v) },
            Cell::Text { start, len } => {
                let text = batch.text(start, len);
                unsafe {
                    ffi::sqlite3_bind_text64(
                        self.stmt,
                        idx,
                        text.as_ptr().cast(),
                        len as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    )
                }
            }
            Cell::Blob { start, len } => {
                let blob = batch.text(start, len);
                // SAFETY: `self.stmt` is a live prepared statement; `blob`
                // points into the batch's arena, which `&Batch` keeps alive and
                // unchanged until the statement has been stepped and reset, as
                // SQLITE_STATIC requires.
                unsafe {
                    ffi::sqlite3_bind_blob64(
                        self.stmt,
                        idx,
                        blob.as_ptr().cast(),
                        len as u64,
                        ffi::SQLITE_STATIC(),
                    )
                }
            }
        };
        check(self.db, rc)
    }

    pub fn step(&mut self) -> rusqlite::Result<()> {
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        // Reset releases the bound pointers' use and the statement's locks;
        // its own return code repeats the step's error, already reported.
        unsafe {
            ffi::sqlite3_reset(self.stmt);
            ffi::sqlite3_clear_bindings(self.stmt);
        }
        if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }
}

impl Drop for RawStmt<'_> {
    fn drop(&mut self) {
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

fn check(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Result<()> {
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(error(db, rc))
    }
}

fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg))
}
