//! The row insert statements, bound straight from a batch's arena.
//!
//! rusqlite binds every text with `SQLITE_TRANSIENT`, which makes SQLite copy
//! each value before the row record copies it again. The arena outlives each
//! `step`, so binding with `SQLITE_STATIC` is sound and saves a malloc and a
//! memcpy per value (and a second copy of a 100 MB line).
//!
//! The one rule that makes `SQLITE_STATIC` sound: no binding may outlive the
//! call that made it. Every execution therefore binds under a [`Bound`]
//! guard, which resets the statement and clears its bindings however the
//! call ends (done, a bind refused halfway, a step failed).

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{Connection, ffi};

use crate::scan::batch::{BadLine, Batch, Cell, Row};

/// A prepared statement owned outside rusqlite's cache, tied to its
/// connection's lifetime so it is always finalized first.
pub struct RawStmt<'conn> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    _conn: PhantomData<&'conn Connection>,
}

impl<'conn> RawStmt<'conn> {
    pub fn prepare(conn: &'conn Connection, sql: &str) -> rusqlite::Result<Self> {
        // SAFETY: the handle is only used while `conn` is borrowed: the
        // struct holds `&'conn Connection`'s lifetime, so it cannot outlive it.
        let db = unsafe { conn.handle() };
        let mut stmt = ptr::null_mut();
        // SAFETY: `db` is an open connection; `sql` is valid for `sql.len()`
        // bytes (SQLite reads no further, so no NUL is needed); `stmt` is a
        // valid out-pointer; a null tail pointer is allowed.
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
    /// guarantees; none stays bound after it returns.
    pub fn execute(&mut self, batch: &Batch, cells: &[Cell]) -> rusqlite::Result<()> {
        self.execute_parts(batch, &[], cells)
    }

    /// Inserts an `sse_lines` row ([`crate::db::INSERT_ROW`]): its source and
    /// offset, then its cells.
    pub fn execute_row(
        &mut self,
        batch: &Batch,
        source_id: i64,
        row: &Row,
    ) -> rusqlite::Result<()> {
        let provenance = [Cell::Int(source_id), Cell::Int(row.offset as i64)];
        self.execute_parts(batch, &provenance, &row.cells)
    }

    fn execute_parts(
        &mut self,
        batch: &Batch,
        head: &[Cell],
        cells: &[Cell],
    ) -> rusqlite::Result<()> {
        let bound = Bound::new(self);
        for (i, cell) in head.iter().chain(cells).enumerate() {
            bound.0.bind_cell(i as c_int + 1, batch, *cell)?;
        }
        bound.0.step()
    }

    /// Inserts a `bad_lines` row: source, offset, reason, raw bytes.
    pub fn execute_bad(
        &mut self,
        batch: &Batch,
        source_id: i64,
        bad: &BadLine,
    ) -> rusqlite::Result<()> {
        let bound = Bound::new(self);
        let this = &mut *bound.0;
        this.bind_cell(1, batch, Cell::Int(source_id))?;
        this.bind_cell(2, batch, Cell::Int(bad.offset as i64))?;
        let (start, len) = bad.reason;
        this.bind_cell(3, batch, Cell::Text { start, len })?;
        let raw = batch.text(bad.raw.0, bad.raw.1);
        // SAFETY: `raw` borrows `batch`, which outlives this call, and the
        // `Bound` guard clears the binding before the call returns, so the
        // SQLITE_STATIC pointer is never read after the bytes may change.
        let rc = unsafe {
            ffi::sqlite3_bind_blob64(
                this.stmt,
                4,
                raw.as_ptr().cast(),
                raw.len() as u64,
                ffi::SQLITE_STATIC(),
            )
        };
        check(this.db, rc)?;
        this.step()
    }

    /// Binds one cell. Only called under a [`Bound`] guard, which is what
    /// makes the `SQLITE_STATIC` text bindings sound.
    fn bind_cell(&mut self, idx: c_int, batch: &Batch, cell: Cell) -> rusqlite::Result<()> {
        let rc = match cell {
            // SAFETY: `stmt` is a live prepared statement; nothing is borrowed.
            Cell::Null => unsafe { ffi::sqlite3_bind_null(self.stmt, idx) },
            // SAFETY: as above; the integer is copied.
            Cell::Int(v) => unsafe { ffi::sqlite3_bind_int64(self.stmt, idx, v) },
            Cell::Text { start, len } => {
                let text = batch.text(start, len);
                // SAFETY: `text` borrows `batch` (valid UTF-8, `len` bytes),
                // which the caller keeps alive and unchanged until its
                // `Bound` guard has cleared this binding.
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

    fn step(&mut self) -> rusqlite::Result<()> {
        // SAFETY: `stmt` is a live prepared statement whose bound pointers are
        // all alive (the caller's guard clears them only after this returns).
        let rc = unsafe { ffi::sqlite3_step(self.stmt) };
        if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }
}

impl Drop for RawStmt<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` came from a successful prepare on a connection that
        // is still open (the lifetime ties us to it) and is finalized once.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// Holds a statement while values borrowed from a batch are bound to it;
/// dropping it resets the statement (ending the step, releasing its locks)
/// and clears every binding, so no `SQLITE_STATIC` pointer outlives the
/// borrow, whichever `?` the call returned through.
struct Bound<'s, 'conn>(&'s mut RawStmt<'conn>);

impl<'s, 'conn> Bound<'s, 'conn> {
    fn new(stmt: &'s mut RawStmt<'conn>) -> Self {
        Bound(stmt)
    }
}

impl Drop for Bound<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` is a live prepared statement. Reset's own return
        // code repeats the failed step's error, which the caller already has;
        // clearing bindings cannot fail.
        unsafe {
            ffi::sqlite3_reset(self.0.stmt);
            ffi::sqlite3_clear_bindings(self.0.stmt);
        }
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
    // SAFETY: `db` is an open connection; sqlite3_errmsg returns a
    // NUL-terminated string it owns, valid until the next call on `db`, and
    // it is copied out at once.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_with(texts: &[&str]) -> (Batch, Vec<Cell>) {
        let mut batch = Batch::default();
        let cells = texts
            .iter()
            .map(|t| {
                let start = batch.arena.len();
                batch.arena.extend_from_slice(t.as_bytes());
                Cell::Text {
                    start,
                    len: t.len(),
                }
            })
            .collect();
        (batch, cells)
    }

    /// The statement's SQL with its current bindings in place of parameters.
    fn expanded(stmt: &RawStmt<'_>) -> String {
        // SAFETY: a live statement; the returned string is ours to free.
        unsafe {
            let p = ffi::sqlite3_expanded_sql(stmt.stmt);
            assert!(!p.is_null(), "sqlite3_expanded_sql returned NULL");
            let s = CStr::from_ptr(p).to_string_lossy().into_owned();
            ffi::sqlite3_free(p.cast());
            s
        }
    }

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch("CREATE TABLE t(a, b, c)")
            .expect("table");
        conn
    }

    /// A bind refused halfway (the second value is over the length limit)
    /// must leave no binding behind: the first one points into the batch.
    #[test]
    fn a_bind_failing_halfway_leaves_nothing_bound() {
        let conn = conn();
        let mut stmt =
            RawStmt::prepare(&conn, "INSERT INTO t(a, b, c) VALUES (?1, ?2, ?3)").expect("prepare");
        let limit = |n| {
            // SAFETY: an open connection; the call only sets a length limit.
            unsafe { ffi::sqlite3_limit(conn.handle(), ffi::SQLITE_LIMIT_LENGTH, n) }
        };
        let old = limit(16);
        let (batch, cells) = batch_with(&["first", "a value longer than sixteen bytes", "third"]);
        let err = stmt
            .execute(&batch, &cells)
            .expect_err("bind over the limit");
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::TooBig));
        // The expansion itself must fit the limit.
        limit(old);
        assert_eq!(
            expanded(&stmt),
            "INSERT INTO t(a, b, c) VALUES (NULL, NULL, NULL)"
        );
        drop(batch);
        // The statement is reusable, and a step with nothing bound stores NULLs.
        let (batch, _) = batch_with(&[]);
        stmt.execute(&batch, &[Cell::Null, Cell::Int(2)])
            .expect("insert");
        let rows: (Option<String>, i64, Option<String>) = conn
            .query_row("SELECT a, b, c FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("row");
        assert_eq!(rows, (None, 2, None));
    }

    /// An out-of-range parameter index fails the same way.
    #[test]
    fn too_many_cells_leave_nothing_bound() {
        let conn = conn();
        let mut stmt =
            RawStmt::prepare(&conn, "INSERT INTO t(a, b) VALUES (?1, ?2)").expect("prepare");
        let (batch, cells) = batch_with(&["one", "two", "three"]);
        let err = stmt.execute(&batch, &cells).expect_err("third parameter");
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ParameterOutOfRange)
        );
        assert_eq!(expanded(&stmt), "INSERT INTO t(a, b) VALUES (NULL, NULL)");
    }

    /// A step that fails (a constraint) leaves nothing bound either, and
    /// success does the same.
    #[test]
    fn step_failure_and_success_leave_nothing_bound() {
        let conn = Connection::open_in_memory().expect("memory db");
        conn.execute_batch("CREATE TABLE u(a NOT NULL, b)")
            .expect("table");
        let mut stmt =
            RawStmt::prepare(&conn, "INSERT INTO u(a, b) VALUES (?1, ?2)").expect("prepare");
        let (batch, cells) = batch_with(&["x", "y"]);
        stmt.execute(&batch, &[Cell::Null, cells[1]])
            .expect_err("NOT NULL");
        assert_eq!(expanded(&stmt), "INSERT INTO u(a, b) VALUES (NULL, NULL)");
        stmt.execute(&batch, &cells).expect("insert");
        assert_eq!(expanded(&stmt), "INSERT INTO u(a, b) VALUES (NULL, NULL)");
        let bad = BadLine {
            offset: 7,
            reason: match cells[0] {
                Cell::Text { start, len } => (start, len),
                _ => unreachable!(),
            },
            raw: (0, 2),
        };
        let mut bad_stmt =
            RawStmt::prepare(&conn, "INSERT INTO u(a, b) VALUES (?1 + ?2, ?3 || ?4)")
                .expect("prepare");
        bad_stmt.execute_bad(&batch, 1, &bad).expect("bad row");
        assert_eq!(
            expanded(&bad_stmt),
            "INSERT INTO u(a, b) VALUES (NULL + NULL, NULL || NULL)"
        );
    }
}
