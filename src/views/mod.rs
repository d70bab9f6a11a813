//! The views of views.md (schema version 3): what users ask of the lines (requests, tool
//! calls, sessions, daily usage with time to first token), answered in SQL inside the
//! database, so that `sqlite3`, Datasette or a notebook get the same answers as
//! `ingestor report`. They are computed at query time from `sse_lines`: nothing in the ingest
//! path knows about them.

pub mod report;

use rusqlite::{Connection, OptionalExtension};

/// The SQL that drops and creates the four views (`src/views/views.sql`).
pub const VIEWS_SQL: &str = include_str!("views.sql");

/// The views, in the order `views.sql` creates them (each may read the ones before).
pub const VIEWS: [&str; 4] = ["requests", "tool_calls", "sessions", "usage_daily"];

/// Drops and re-creates the four views in one transaction (a savepoint, so that it can run
/// inside the caller's migration transaction as well as on its own): a reader sees either
/// the old views or the new ones. Idempotent. Each view is compiled before the change is
/// committed, so that a database the views cannot read (an `sse_lines` without `source_id`,
/// that is older than schema version 2) is refused here rather than at the user's first query.
pub fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("SAVEPOINT ingestor_views")?;
    let made = conn.execute_batch(VIEWS_SQL).and_then(|()| {
        VIEWS
            .iter()
            .try_for_each(|v| conn.prepare(&format!("SELECT * FROM {v}")).map(drop))
    });
    match made {
        Ok(()) => conn.execute_batch("RELEASE ingestor_views"),
        Err(e) => {
            // Best effort: the error that matters is the one that made us roll back.
            let _ = conn.execute_batch("ROLLBACK TO ingestor_views; RELEASE ingestor_views");
            Err(e)
        }
    }
}

/// Whether the database has the four views exactly as this build creates them. A database
/// made by another build (older or newer views, or none) gets `false`: [`create`] then
/// brings it to this build's views.
pub fn current(conn: &Connection) -> rusqlite::Result<bool> {
    // SQLite keeps the text of each CREATE VIEW as given: compare with the text it keeps
    // for ours (CREATE VIEW does not look at the tables, so an empty database will do).
    let ours = Connection::open_in_memory()?;
    ours.execute_batch(VIEWS_SQL)?;
    Ok(stored(conn)? == stored(&ours)?)
}

fn stored(conn: &Connection) -> rusqlite::Result<Vec<Option<String>>> {
    VIEWS
        .iter()
        .map(|v| {
            conn.query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'view' AND name = ?1",
                [v],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
        })
        .collect()
}

/// Whether the database has all four views (a database of schema version 3 or later).
pub fn present(conn: &Connection) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'view' \
         AND name IN ('requests', 'tool_calls', 'sessions', 'usage_daily')",
        [],
        |r| r.get(0),
    )?;
    Ok(n == VIEWS.len() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty `sse_lines` of schema version 2.
    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE sse_lines(id INTEGER PRIMARY KEY, source_id INTEGER, src_offset INTEGER, \
             event TEXT, t TEXT, flow_id TEXT, round TEXT, data_count INTEGER, sid TEXT, \
             meta_ver TEXT, meta_pid INTEGER, meta_cwd TEXT, meta_turn_id TEXT, metadata TEXT, \
             extra TEXT, line TEXT)",
        )
        .unwrap();
        conn
    }

    fn columns(conn: &Connection, view: &str) -> Vec<String> {
        let stmt = conn.prepare(&format!("SELECT * FROM {view}")).unwrap();
        stmt.column_names().map(str::to_owned).collect()
    }

    #[test]
    fn create_is_idempotent_and_gives_the_contract_columns() {
        let conn = db();
        create(&conn).unwrap();
        create(&conn).unwrap();
        assert!(present(&conn).unwrap());
        assert_eq!(
            columns(&conn, "requests"),
            [
                "product",
                "source_id",
                "sid",
                "meta_cwd",
                "meta_pid",
                "round",
                "meta_turn_id",
                "response_id",
                "model",
                "started_at",
                "first_token_at",
                "ended_at",
                "ttft_ms",
                "duration_ms",
                "stop_reason",
                "input_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "output_tokens",
                "reasoning_tokens",
                "tool_calls",
                "lines"
            ]
        );
        assert_eq!(
            columns(&conn, "tool_calls"),
            [
                "product",
                "source_id",
                "sid",
                "response_id",
                "t",
                "call_id",
                "name",
                "arguments",
                "meta_cwd"
            ]
        );
        assert_eq!(
            columns(&conn, "sessions"),
            [
                "product",
                "sid",
                "first_at",
                "last_at",
                "meta_cwd",
                "requests",
                "input_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "output_tokens",
                "reasoning_tokens",
                "tool_calls",
                "lines",
                "reported_total_tokens"
            ]
        );
        assert_eq!(
            columns(&conn, "usage_daily"),
            [
                "day",
                "product",
                "model",
                "requests",
                "input_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "output_tokens",
                "reasoning_tokens",
                "tool_calls",
                "avg_ttft_ms",
                "max_ttft_ms"
            ]
        );
        let views: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'view'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(views, 4, "create() leaves exactly the four views");
    }

    #[test]
    fn current_tells_this_builds_views_from_others() {
        let conn = db();
        assert!(!current(&conn).unwrap(), "no views");
        create(&conn).unwrap();
        assert!(current(&conn).unwrap());
        // Another build's view of the same name.
        conn.execute_batch("DROP VIEW usage_daily; CREATE VIEW usage_daily AS SELECT 1 AS day")
            .unwrap();
        assert!(!current(&conn).unwrap(), "a different view");
        create(&conn).unwrap();
        assert!(current(&conn).unwrap());
        conn.execute_batch("DROP VIEW sessions").unwrap();
        assert!(!current(&conn).unwrap(), "a missing view");
    }

    #[test]
    fn a_table_without_source_id_is_refused_and_left_as_it_was() {
        // The layout of schema version 1.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE sse_lines(id INTEGER PRIMARY KEY, event TEXT, t TEXT, flow_id TEXT, \
             round TEXT, data_count INTEGER, sid TEXT, meta_ver TEXT, meta_pid INTEGER, \
             meta_cwd TEXT, meta_turn_id TEXT, metadata TEXT, extra TEXT, line TEXT)",
        )
        .unwrap();
        let err = create(&conn).unwrap_err().to_string();
        assert!(err.contains("source_id"), "{err}");
        assert!(!present(&conn).unwrap());
        let views: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'view'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(views, 0);
        assert!(conn.is_autocommit(), "the savepoint was left open");
    }

    fn insert(conn: &Connection, event: &str, flow: &str, sid: &str, line: &str) {
        conn.execute(
            "INSERT INTO sse_lines(source_id, event, t, flow_id, sid, line) \
             VALUES (1, ?1, '2025-11-18T21:55:53.328', ?2, ?3, ?4)",
            rusqlite::params![event, flow, sid, line],
        )
        .unwrap();
    }

    /// One session's requests are read through idx_sse_sid (and each request's own lines
    /// through idx_sse_flow_id or idx_sse_sid), never by scanning the table: the answer time
    /// follows the session's size, not the database's (views.md: ≤ 50 ms on 1 M lines).
    #[test]
    fn one_sessions_requests_are_found_without_scanning_the_table() {
        let conn = db();
        for (name, column) in crate::db::INDEXES {
            conn.execute_batch(&format!("CREATE INDEX {name} ON sse_lines({column})"))
                .unwrap();
        }
        create(&conn).unwrap();
        let flow = |sid: &str, n: usize| {
            let id = format!("msg_{sid}_{n}");
            insert(
                &conn,
                "claude.message_start",
                &id,
                sid,
                r#"data: {"payload":{"message":{"model":"m"}}}"#,
            );
            for _ in 0..20 {
                insert(&conn, "claude.content_block_delta", &id, sid, "data: {}");
            }
            insert(&conn, "claude.message_stop", &id, sid, "data: {}");
            let resp = format!("s{n}");
            insert(
                &conn,
                "response.created",
                &resp,
                &format!("{sid}-x"),
                r#"data: {"response":{"id":"r"}}"#,
            );
            insert(
                &conn,
                "response.output_text.delta",
                &resp,
                &format!("{sid}-x"),
                "data: {}",
            );
            insert(
                &conn,
                "response.completed",
                &resp,
                &format!("{sid}-x"),
                "data: {}",
            );
        };
        for n in 0..200 {
            flow(if n == 100 { "x" } else { "other" }, n);
        }
        let table: i64 = conn
            .query_row("SELECT count(*) FROM sse_lines", [], |r| r.get(0))
            .unwrap();
        for sid in ["x", "x-x"] {
            let mut stmt = conn
                .prepare("SELECT * FROM requests WHERE sid = ?1")
                .unwrap();
            let rows = stmt.query_map([sid], |_| Ok(())).unwrap().count();
            assert_eq!(rows, 1, "{sid}");
            let scanned = stmt.get_status(rusqlite::StatementStatus::FullscanStep);
            assert!(
                scanned < 100,
                "{scanned} steps of full scans for one session ({table} lines in the table)"
            );
        }
    }

    /// Damaged payloads give NULL values, never an error (views.md: "it never fails").
    #[test]
    fn damaged_lines_give_nulls_not_errors() {
        let conn = db();
        create(&conn).unwrap();
        let rows = [
            (
                "claude.message_start",
                "msg_1",
                "data: {\"payload\":{\"message\":{\"model\":\"m\"",
            ),
            ("claude.content_block_start", "msg_1", "42"),
            (
                "claude.content_block_delta",
                "msg_1",
                "data: input_json_delta {",
            ),
            ("claude.message_delta", "msg_1", ""),
            ("claude.message_stop", "msg_1", "data: []"),
            ("response.created", "s", "data: {\"response\":"),
            ("response.output_item.done", "s", "data: {input_json_delta"),
            ("response.completed", "s", "not json"),
            ("turn.token_count", "s", "data: {\"payload\":{\"info\":"),
        ];
        for (i, (event, flow, line)) in rows.iter().enumerate() {
            conn.execute(
                "INSERT INTO sse_lines(source_id, event, t, flow_id, sid, line) \
                 VALUES (1, ?1, ?2, ?3, 's', ?4)",
                rusqlite::params![event, format!("2025-11-18T21:55:5{i}.000"), flow, line],
            )
            .unwrap();
        }
        for v in VIEWS {
            let n: i64 = conn
                .query_row(
                    &format!("SELECT count(*) FROM (SELECT * FROM {v})"),
                    [],
                    |r| r.get(0),
                )
                .unwrap_or_else(|e| panic!("{v}: {e}"));
            // No line names a tool: tool_calls is rightly empty.
            assert_eq!(n == 0, v == "tool_calls", "{v}: {n} rows");
        }
        let (model, input): (Option<String>, Option<i64>) = conn
            .query_row(
                "SELECT model, input_tokens FROM requests WHERE product = 'claude'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((model, input), (None, None));
    }
}
