//! Bringing an older database to this build's schema, in place, in one transaction.
//!
//! Version 1 → 2 adds row provenance (`sse_lines.source_id`, `src_offset`,
//! `bad_lines.source_id`) among the small columns, where SQLite reads them without touching
//! a row's big ones. `ALTER TABLE ADD COLUMN` can only append a column after `line`, so the two
//! tables are rewritten: the old ones are moved aside, the current schema creates the new ones
//! (one text of the contract for new and migrated databases), and the rows are copied in
//! chunks so that a progress display can follow a multi-GB copy. What depends on the
//! old tables (the user's own views, triggers and indexes) is remembered first and re-created
//! after, and the allowlisted indexes are built again on the new table.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};

/// Rows copied per statement: big enough that the per-statement cost vanishes, small enough
/// for a progress display to move.
const CHUNK: i64 = 50_000;

/// What a migration did, for the run to say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    pub from: i64,
    pub to: i64,
    pub rows: u64,
    pub bad: u64,
    pub took: Duration,
}

/// Migrates a version-1 database to version 2. The caller holds the database to itself for
/// writing (`BEGIN IMMEDIATE` is taken here) and builds the allowlisted indexes afterwards
/// through `rebuild_indexes`, inside the same transaction. `host` is recorded for the
/// sources already there (they were read on this machine: a database is written locally).
pub fn v1_to_v2(
    conn: &Connection,
    schema: &str,
    host: &str,
    rebuild_indexes: impl FnOnce(&Connection) -> anyhow::Result<()>,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<Migrated> {
    let started = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != 1 {
            // Another process migrated it while this one waited for the lock.
            return Ok(Migrated {
                from: version,
                to: version,
                ..Migrated::default()
            });
        }
        // Old rows belong to a source only where that is certain: one source in all.
        let only_source: Option<i64> = conn
            .query_row(
                "SELECT CASE WHEN count(*) = 1 THEN max(id) END FROM ingest_sources",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let dependents = Dependents::save(conn)?;
        dependents.drop_views(conn)?;
        // The old tables move aside (their indexes and triggers with them) and
        // the current schema makes the new ones: one text of the contract.
        // Legacy renaming: the user's other triggers keep naming `sse_lines`,
        // which is the new table once the migration is done.
        conn.execute_batch(
            "PRAGMA legacy_alter_table = ON;
             ALTER TABLE sse_lines RENAME TO sse_lines_v1;
             ALTER TABLE bad_lines RENAME TO bad_lines_v1;
             PRAGMA legacy_alter_table = OFF;",
        )?;
        conn.execute_batch(schema)?;
        let total: i64 = conn.query_row(
            "SELECT (SELECT count(*) FROM sse_lines_v1) + (SELECT count(*) FROM bad_lines_v1)",
            [],
            |r| r.get(0),
        )?;
        let total = total as u64;
        let rows = copy_chunked(
            conn,
            "INSERT INTO sse_lines(id, source_id, src_offset, event, t, flow_id, round, \
             data_count, sid, meta_ver, meta_pid, meta_cwd, meta_turn_id, metadata, extra, line) \
             SELECT id, ?3, NULL, event, t, flow_id, round, data_count, sid, meta_ver, meta_pid, \
             meta_cwd, meta_turn_id, metadata, extra, line FROM sse_lines_v1 \
             WHERE id > ?1 ORDER BY id LIMIT ?2",
            "SELECT max(id) FROM sse_lines",
            only_source,
            &mut |n| progress(n, total),
        )?;
        let bad = copy_chunked(
            conn,
            "INSERT INTO bad_lines(id, source_id, src_offset, reason, raw) \
             SELECT id, ?3, src_offset, reason, raw FROM bad_lines_v1 \
             WHERE id > ?1 ORDER BY id LIMIT ?2",
            "SELECT max(id) FROM bad_lines",
            only_source,
            &mut |n| progress(rows + n, total),
        )?;
        conn.execute_batch(
            "DROP TABLE sse_lines_v1;
             DROP TABLE bad_lines_v1;
             ALTER TABLE ingest_sources ADD COLUMN host TEXT;",
        )?;
        conn.execute("UPDATE ingest_sources SET host = ?1", [host])?;
        rebuild_indexes(conn)?;
        dependents.restore(conn)?;
        conn.execute_batch("PRAGMA user_version = 2")?;
        Ok(Migrated {
            from: 1,
            to: 2,
            rows,
            bad,
            took: Duration::ZERO,
        })
    })();
    match done {
        Ok(mut m) => {
            conn.execute_batch("COMMIT")?;
            m.took = started.elapsed();
            Ok(m)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Copies rows in id order, `CHUNK` at a time, with `insert` (parameters: the last id copied,
/// the chunk size, the source id); returns how many were copied.
fn copy_chunked(
    conn: &Connection,
    insert: &str,
    last_copied: &str,
    source: Option<i64>,
    progress: &mut dyn FnMut(u64),
) -> rusqlite::Result<u64> {
    let mut insert = conn.prepare(insert)?;
    let mut last = conn.prepare(last_copied)?;
    let mut after = i64::MIN;
    let mut copied = 0u64;
    loop {
        let n = insert.execute(params![after, CHUNK, source])?;
        if n == 0 {
            return Ok(copied);
        }
        copied += n as u64;
        after = last.query_row([], |r| r.get(0))?;
        progress(copied);
    }
}

/// The user's own objects that a table rewrite would lose: views (SQLite checks every view
/// when a table is renamed, and one naming a dropped table fails the rename), and the
/// triggers and indexes on the rewritten tables, except the allowlisted indexes, which are
/// built again as such.
struct Dependents {
    views: Vec<(String, String)>,
    on_tables: Vec<String>,
}

impl Dependents {
    fn save(conn: &Connection) -> rusqlite::Result<Dependents> {
        let views = conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'view' AND sql IS NOT NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let on_tables = conn
            .prepare(
                "SELECT sql FROM sqlite_schema WHERE type IN ('index', 'trigger') \
                 AND tbl_name IN ('sse_lines', 'bad_lines') AND sql IS NOT NULL \
                 AND NOT (type = 'index' AND name LIKE 'idx\\_sse\\_%' ESCAPE '\\') \
                 ORDER BY type, name",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Dependents { views, on_tables })
    }

    fn drop_views(&self, conn: &Connection) -> rusqlite::Result<()> {
        for (name, _) in &self.views {
            conn.execute_batch(&format!("DROP VIEW \"{}\"", name.replace('"', "\"\"")))?;
        }
        Ok(())
    }

    fn restore(&self, conn: &Connection) -> rusqlite::Result<()> {
        // Views may build on one another: create them in rounds until none is left or a
        // round makes no progress (then the first error is the answer).
        let mut pending: Vec<&(String, String)> = self.views.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut failed = Vec::new();
            let mut first_error = None;
            for view in pending {
                if let Err(e) = conn.execute_batch(&view.1) {
                    first_error.get_or_insert(e);
                    failed.push(view);
                }
            }
            if failed.len() == before {
                return Err(first_error.expect("a failed view has an error"));
            }
            pending = failed;
        }
        for sql in &self.on_tables {
            conn.execute_batch(sql)?;
        }
        Ok(())
    }
}
