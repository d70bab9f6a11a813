//! The database file itself, through the real binary: which databases ingestor writes into
//! (and which it refuses, untouched), what `--from-scratch` keeps, how indexes are judged, who
//! can read the files it creates, names planted beside the database, and what the summary says
//! when a backfill is stopped.
//!
//! Linux only where it says so: waits on `/proc/PID/fd` and the exec into live mode.

// Used by the Linux-only tests below.
#[cfg_attr(not(target_os = "linux"), allow(unused_imports))]
use crate::util;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::util::{DB, Dir, INPUT, ProcBuilder, assert_matches, generate};

/// Runs `ingestor --input INPUT --db DB ARGS`, asserts a clean run (one summary line) and a
/// sound database, and returns the summary line.
fn ingest(dir: &Dir, args: &[&str]) -> String {
    let summary = dir
        .command()
        .args(["--input", INPUT, "--db", DB])
        .args(args)
        .assert_ok();
    dir.db(DB).assert_integrity();
    summary
}

/// Runs `ingestor --input INPUT --db DB ARGS` and asserts a clean refusal (non-zero exit, one
/// line); returns that line.
fn refused(dir: &Dir, db: &str, args: &[&str]) -> String {
    dir.command()
        .args(["--input", INPUT, "--db", db])
        .args(args)
        .assert_err()
}

/// A small input with a value in every indexed column, and a bad line.
fn small_input(dir: &Dir) {
    dir.create(
        INPUT,
        "{\"event\":\"a\",\"t\":\"2025-01-01T00:00:00.000\",\"flow_id\":\"f\",\"round\":\"1\",\
         \"sid\":\"s\",\"metadata\":\"{\\\"pid\\\":7,\\\"cwd\\\":\\\"/w\\\",\\\"turn_id\\\":\\\"u\\\"}\",\
         \"line\":\"data: {}\"}\n\
         {\"event\":\"b\",\"sid\":\"S\"}\n\
         not json\n",
    );
}

fn with_suffix(dir: &Dir, name: &str, suffix: &str) -> std::path::PathBuf {
    dir.path(&format!("{name}{suffix}"))
}

/// Asserts that `name` has exactly the bytes `before` and that SQLite left no file beside it.
fn assert_untouched(dir: &Dir, name: &str, before: &[u8]) {
    assert!(dir.read(name) == before, "{name} was modified");
    for suffix in ["-journal", "-wal", "-shm", ".building"] {
        let side = with_suffix(dir, name, suffix);
        assert!(!side.exists(), "{} left behind", side.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Item 7: an index is judged by its definition, not its name

/// `(table, unique, partial, keys)` of an index, keys as `(column or NULL, desc, collation)`.
type IndexDef = (String, bool, bool, Vec<(Option<String>, bool, String)>);

fn index_definition(conn: &Connection, name: &str) -> IndexDef {
    let table: String = conn
        .query_row(
            "SELECT tbl_name FROM sqlite_schema WHERE type = 'index' AND name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("index {name}: {e}"));
    let (unique, partial) = conn
        .query_row(
            "SELECT \"unique\", partial FROM pragma_index_list(?1) WHERE name = ?2",
            [&table, name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("index_list");
    let keys = conn
        .prepare("SELECT name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key ORDER BY seqno")
        .expect("prepare")
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("index_xinfo")
        .collect::<Result<_, _>>()
        .expect("keys");
    (table, unique, partial, keys)
}

const ALLOWLIST: [(&str, &str); 7] = [
    ("idx_sse_flow_id", "flow_id"),
    ("idx_sse_sid", "sid"),
    ("idx_sse_t", "t"),
    ("idx_sse_meta_pid", "meta_pid"),
    ("idx_sse_meta_cwd", "meta_cwd"),
    ("idx_sse_round", "round"),
    ("idx_sse_meta_turn_id", "meta_turn_id"),
];

/// Each allowlisted name re-made by hand as something else (another column, unique, partial,
/// another collation, descending, an expression, two columns, another table): a run drops each
/// and builds it right.
#[test]
fn allowlisted_index_names_with_other_definitions_are_rebuilt() {
    let dir = Dir::new();
    small_input(&dir);
    ingest(&dir, &[]);
    dir.db(DB)
        .open_rw()
        .execute_batch(
            "DROP INDEX idx_sse_sid; CREATE INDEX idx_sse_sid ON sse_lines(line);
             DROP INDEX idx_sse_t; CREATE UNIQUE INDEX idx_sse_t ON sse_lines(t);
             DROP INDEX idx_sse_round;
             CREATE INDEX idx_sse_round ON sse_lines(round) WHERE round IS NOT NULL;
             DROP INDEX idx_sse_meta_cwd;
             CREATE INDEX idx_sse_meta_cwd ON sse_lines(meta_cwd COLLATE NOCASE);
             DROP INDEX idx_sse_meta_pid; CREATE INDEX idx_sse_meta_pid ON sse_lines(meta_pid + 0);
             DROP INDEX idx_sse_flow_id; CREATE INDEX idx_sse_flow_id ON sse_lines(flow_id, line);
             DROP INDEX idx_sse_meta_turn_id;
             CREATE INDEX idx_sse_meta_turn_id ON bad_lines(reason);",
        )
        .expect("hand-made indexes");
    ingest(&dir, &[]);
    let conn = dir.db(DB).open();
    for (name, column) in ALLOWLIST {
        assert_eq!(
            index_definition(&conn, name),
            (
                "sse_lines".to_owned(),
                false,
                false,
                vec![(Some(column.to_owned()), false, "BINARY".to_owned())]
            ),
            "{name}"
        );
    }
    // A descending one, on the right column, is not the allowlist's either.
    dir.db(DB)
        .open_rw()
        .execute_batch("DROP INDEX idx_sse_sid; CREATE INDEX idx_sse_sid ON sse_lines(sid DESC);")
        .expect("descending index");
    ingest(&dir, &[]);
    assert_eq!(
        index_definition(&dir.db(DB).open(), "idx_sse_sid").3,
        vec![(Some("sid".to_owned()), false, "BINARY".to_owned())]
    );
}

// ---------------------------------------------------------------------------------------------
// Item 8: a database whose contract tables ingestor did not make is refused, untouched

/// Databases with a contract table ingestor did not make: without a version stamp (any of the
/// three tables, any column order), or stamped but with other columns or a table missing. Each
/// is refused with one line, and left byte for byte as it was, with no file beside it.
#[test]
fn databases_ingestor_did_not_make_are_refused_and_left_alone() {
    let dir = Dir::new();
    small_input(&dir);
    let by_hand = |name: &str, sql: &str| {
        let conn = Connection::open(dir.path(name)).expect("create");
        conn.execute_batch(sql).expect(name);
    };
    by_hand(
        "own_sse.db",
        "CREATE TABLE sse_lines(line TEXT, id INTEGER PRIMARY KEY, event TEXT);
         INSERT INTO sse_lines(line, event) VALUES ('mine', 'x');",
    );
    by_hand(
        "own_bad.db",
        "CREATE TABLE Bad_Lines(raw BLOB, why TEXT); INSERT INTO Bad_Lines VALUES (x'00', 'y');",
    );
    by_hand(
        "own_sources.db",
        "CREATE TABLE ingest_sources(path TEXT, offset INTEGER);",
    );
    by_hand(
        "own_wal.db",
        "PRAGMA journal_mode = WAL;
         CREATE TABLE sse_lines(id INTEGER PRIMARY KEY, data TEXT);
         INSERT INTO sse_lines(data) VALUES ('mine');",
    );
    // Ingestor's own databases, changed by hand afterwards.
    let ours_then = |name: &str, sql: &str| {
        dir.command()
            .args(["--input", INPUT, "--db", name, "--quiet"])
            .assert_ok();
        by_hand(name, sql);
    };
    ours_then(
        "added_column.db",
        "ALTER TABLE sse_lines ADD COLUMN mine TEXT",
    );
    ours_then(
        "renamed_column.db",
        "ALTER TABLE bad_lines RENAME COLUMN reason TO why",
    );
    ours_then("dropped_table.db", "DROP TABLE bad_lines");
    ours_then(
        "view_instead.db",
        "DROP TABLE ingest_sources; CREATE VIEW ingest_sources AS SELECT 1 AS id",
    );
    for (name, names) in [
        ("own_sse.db", "sse_lines"),
        ("own_bad.db", "Bad_Lines"),
        ("own_sources.db", "ingest_sources"),
        ("own_wal.db", "sse_lines"),
        ("added_column.db", "sse_lines"),
        ("renamed_column.db", "bad_lines"),
        ("dropped_table.db", "bad_lines"),
        ("view_instead.db", "ingest_sources"),
    ] {
        let before = dir.read(name);
        for args in [&[][..], &["--from-scratch"][..]] {
            let err = refused(&dir, name, args);
            eprintln!("{name} {args:?}: {err}");
            assert!(err.contains(name) && err.contains(names), "{name}: {err}");
            assert!(err.contains("refusing"), "{name}: {err}");
            assert_untouched(&dir, name, &before);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Item 13: a stopped backfill says so

/// SIGINT during the backfill of a big file: the run commits what it read and its summary says
/// that it stopped early, at which byte of how many, and that indexes were not built; the next
/// run completes and builds them.
#[cfg(target_os = "linux")]
#[test]
fn a_backfill_stopped_by_sigint_says_it_stopped_early() {
    let dir = Dir::new();
    // A million short lines: a second or more of work, so the signal lands in the load.
    let mut bytes = Vec::with_capacity(64 << 20);
    for i in 0..1_000_000u32 {
        writeln!(
            bytes,
            "{{\"event\":\"e\",\"sid\":\"s{}\",\"data_count\":{i}}}",
            i % 997
        )
        .expect("write");
    }
    dir.create(INPUT, &bytes);
    let building = with_suffix(&dir, DB, ".building");
    let mut p = ProcBuilder::new(&dir, &["--input", INPUT, "--db", DB]).spawn();
    p.wait_for("the build file", |_| building.exists().then_some(()));
    p.signal(libc::SIGINT);
    let err = p.assert_ok();
    eprintln!("{err}");
    let line = err.trim_end();
    let rest = util::log_message(line)
        .and_then(|(_, msg)| msg.strip_prefix("stopped early at byte "))
        .unwrap_or_else(|| panic!("the summary does not say it stopped early: {line}"));
    let nums = util::numbers_in(rest);
    let (offset, total) = (nums[0] as usize, nums[1] as usize);
    assert!(
        rest.starts_with(&format!("{offset} of {total} (")),
        "no total: {line}"
    );
    assert_eq!(total, bytes.len(), "{line}");
    assert!(offset < total, "{line}");
    assert!(
        offset == 0 || bytes[offset - 1] == b'\n',
        "not a line end: {line}"
    );
    assert!(line.contains("indexes not built"), "{line}");
    assert!(!line.contains("indexes 0.00"), "{line}");
    let committed = bytes[..offset].iter().filter(|b| **b == b'\n').count();
    let db = dir.db(DB);
    assert_eq!(db.count("sse_lines") as usize, committed, "{line}");
    assert!(
        db.indexes().iter().all(|(n, _)| !n.starts_with("idx_sse_")),
        "indexes built by a stopped run: {:?}",
        db.indexes()
    );
    let summary = ingest(&dir, &[]);
    assert!(!summary.contains("stopped"), "{summary}");
    assert_eq!(db.count("sse_lines"), 1_000_000);
    assert_eq!(
        db.indexes()
            .iter()
            .filter(|(n, _)| n.starts_with("idx_sse_"))
            .count(),
        7
    );
}

// ---------------------------------------------------------------------------------------------
// Item 14: one unit

/// An input of exactly 2 MiB is reported as 2.0 MiB (it is 2.1 MB), and no size says MB.
#[test]
fn summary_sizes_are_in_mib() {
    let dir = Dir::new();
    let mut bytes = Vec::new();
    for i in 0..2048 {
        let head = format!("{{\"event\":\"e{i:04}\",\"line\":\"");
        let pad = 1024 - head.len() - "\"}\n".len();
        bytes.extend_from_slice(head.as_bytes());
        bytes.extend(std::iter::repeat_n(b'a', pad));
        bytes.extend_from_slice(b"\"}\n");
    }
    assert_eq!(bytes.len(), 2 << 20);
    dir.create(INPUT, &bytes);
    let summary = ingest(&dir, &[]);
    assert!(summary.contains(" 2.0 MiB in "), "{summary}");
    assert!(!summary.contains("MB"), "{summary}");
}

// ---------------------------------------------------------------------------------------------
// Item 16: --from-scratch keeps what the user added

/// Every object outside the contract (type, name, SQL), in creation order.
fn user_schema(conn: &Connection) -> Vec<(String, String, String)> {
    conn.prepare(
        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL \
         AND name NOT IN ('sse_lines', 'bad_lines', 'ingest_sources', \
         'requests', 'tool_calls', 'sessions', 'usage_daily') \
         AND name NOT LIKE 'idx_sse_%' AND name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
    .expect("prepare")
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    .expect("schema")
    .collect::<Result<_, _>>()
    .expect("schema rows")
}

fn all_rows(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// What the user's objects hold: their tables' rows with row ids, the AUTOINCREMENT counters.
fn user_data(conn: &Connection) -> Vec<Vec<Vec<Value>>> {
    [
        "SELECT rowid, * FROM notes ORDER BY rowid",
        "SELECT rowid, * FROM plain ORDER BY rowid",
        "SELECT * FROM keyed ORDER BY k",
        "SELECT a, b FROM doubled",
        "SELECT * FROM audit ORDER BY line_id",
        "SELECT name, seq FROM sqlite_sequence ORDER BY name",
    ]
    .iter()
    .map(|sql| all_rows(conn, sql))
    .collect()
}

/// The user's own tables (with their rows, row ids and counters; a WITHOUT ROWID table, a
/// generated column), an index on a contract table and one on their table, a view and a
/// trigger on `sse_lines`: all are in the database `--from-scratch` rebuilt, as they were. The
/// trigger does not fire again for the rebuilt rows, and keeps working after.
#[test]
fn from_scratch_keeps_the_users_tables_views_triggers_and_indexes() {
    let dir = Dir::new();
    let input = generate(&dir, INPUT, 16, 300, "0.05");
    ingest(&dir, &[]);
    dir.db(DB)
        .open_rw()
        .execute_batch(
            "CREATE TABLE notes(id INTEGER PRIMARY KEY AUTOINCREMENT,
                                line_id INTEGER REFERENCES sse_lines(id), note TEXT, data BLOB);
             INSERT INTO notes(line_id, note, data) VALUES (1, 'first', x'00ff'),
                                                           (2, 'gone', NULL), (3, 'third', NULL);
             DELETE FROM notes WHERE note IN ('gone', 'third');
             CREATE TABLE plain(a, b);
             INSERT INTO plain VALUES (1, 'one'), (2, 'two'), (3, 'three');
             DELETE FROM plain WHERE a = 1;
             CREATE TABLE keyed(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
             INSERT INTO keyed VALUES ('x', 1.5);
             CREATE TABLE doubled(a INTEGER, b INTEGER GENERATED ALWAYS AS (a * 2));
             INSERT INTO doubled(a) VALUES (21);
             CREATE INDEX notes_by_line ON notes(line_id);
             CREATE INDEX my_event_t ON sse_lines(event, t);
             CREATE VIEW per_event AS SELECT event, count(*) AS n FROM sse_lines GROUP BY event;
             CREATE TABLE audit(line_id INTEGER);
             CREATE TRIGGER audit_lines AFTER INSERT ON sse_lines
               BEGIN INSERT INTO audit VALUES (new.id); END;",
        )
        .expect("the user's objects");
    dir.append(INPUT, "{\"event\":\"late1\"}\n{\"event\":\"late2\"}\n");
    ingest(&dir, &[]);
    let db = dir.db(DB);
    let (schema, data) = {
        let conn = db.open();
        (user_schema(&conn), user_data(&conn))
    };
    assert_eq!(data[4].len(), 2, "the trigger fired for the two new lines");
    assert_eq!(schema.len(), 9, "{schema:#?}");
    // The old database in WAL mode, as live mode leaves it.
    db.open_rw()
        .execute_batch("PRAGMA journal_mode = WAL")
        .expect("WAL");

    ingest(&dir, &["--from-scratch"]);
    let mut bytes = input;
    bytes.extend_from_slice(b"{\"event\":\"late1\"}\n{\"event\":\"late2\"}\n");
    assert_matches(&db, &bytes);
    {
        let conn = db.open();
        assert_eq!(user_schema(&conn), schema);
        assert_eq!(user_data(&conn), data);
        let late: i64 = conn
            .query_row("SELECT n FROM per_event WHERE event = 'late2'", [], |r| {
                r.get(0)
            })
            .expect("the view works");
        assert_eq!(late, 1);
    }
    dir.append(INPUT, "{\"event\":\"later\"}\n");
    ingest(&dir, &[]);
    assert_eq!(db.count("audit"), 3, "the trigger still fires");
}

/// A virtual table (here an FTS5 index) cannot be re-created with its contents: --from-scratch
/// refuses, names it, and changes nothing.
#[test]
fn from_scratch_refuses_to_lose_a_virtual_table() {
    let dir = Dir::new();
    small_input(&dir);
    ingest(&dir, &[]);
    dir.db(DB)
        .open_rw()
        .execute_batch(
            "CREATE VIRTUAL TABLE search USING fts5(body);
             INSERT INTO search VALUES ('hello');",
        )
        .expect("fts5 table");
    let before = dir.read(DB);
    let err = refused(&dir, DB, &["--from-scratch"]);
    eprintln!("{err}");
    assert!(
        err.contains("search") && err.contains("--from-scratch"),
        "{err}"
    );
    assert_untouched(&dir, DB, &before);
}

// ---------------------------------------------------------------------------------------------
// Item 23: files no wider than the input

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The usual umask, whatever the caller's: the point is that 022 alone would give 0644.
fn usual_umask() {
    // SAFETY: umask has no preconditions; every test in this file wants 022.
    unsafe { libc::umask(0o022) };
}

fn assert_mode(path: &Path, want: u32) {
    let got = mode_of(path);
    assert_eq!(
        got,
        want,
        "{} has mode {got:o}, not {want:o}",
        path.display()
    );
}

/// Every file a run creates, with an input at `input_mode` under umask 022, has exactly
/// `input_mode` (owner read-write kept): the build file (left by a run killed in its first
/// commit), the database, its WAL and shared-memory files (left by a resumed backfill killed
/// in its commit), and those of live mode.
#[cfg(target_os = "linux")]
fn files_follow_the_input_mode(input_mode: u32) {
    usual_umask();
    let dir = Dir::new();
    generate(&dir, INPUT, 21, 600, "0");
    chmod(&dir.path(INPUT), input_mode);
    let killed_in_commit = |dir: &Dir| {
        let mut p = ProcBuilder::new(dir, &["--input", INPUT, "--db", DB, "--batch-rows", "100"])
            .env("INGESTOR_FAILPOINTS", "before-commit:kill")
            .spawn();
        let status = p.wait_exit();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", p.stderr());
    };
    killed_in_commit(&dir);
    assert!(!dir.exists(DB));
    assert_mode(&with_suffix(&dir, DB, ".building"), input_mode);

    ingest(&dir, &["--quiet"]);
    assert_mode(&dir.path(DB), input_mode);

    generate(&dir, "more.jsonl", 22, 300, "0");
    dir.append(INPUT, dir.read("more.jsonl"));
    killed_in_commit(&dir);
    assert_mode(&with_suffix(&dir, DB, "-wal"), input_mode);
    assert_mode(&with_suffix(&dir, DB, "-shm"), input_mode);

    let mut p = ProcBuilder::follow(&dir, &["--follow"]).spawn();
    p.wait_exec();
    let (wal, shm) = (with_suffix(&dir, DB, "-wal"), with_suffix(&dir, DB, "-shm"));
    p.wait_for("the WAL and shared-memory files", |_| {
        (wal.exists() && shm.exists()).then_some(())
    });
    for path in [dir.path(DB), wal, shm] {
        assert_mode(&path, input_mode);
    }
    p.stop();
}

#[cfg(target_os = "linux")]
#[test]
fn files_of_a_private_input_are_private() {
    files_follow_the_input_mode(0o600);
}

#[cfg(target_os = "linux")]
#[test]
fn files_of_a_group_readable_input_are_at_most_group_readable() {
    files_follow_the_input_mode(0o640);
}

/// From a pipe, the build file, the database and its WAL files are the owner's alone.
#[test]
fn files_of_a_pipe_are_private() {
    usual_umask();
    let dir = Dir::new();
    let mut p = ProcBuilder::new(&dir, &["--db", DB, "--idle-secs", "2"])
        .pipe_stdin(true)
        .spawn();
    let building = with_suffix(&dir, DB, ".building");
    p.wait_for("the build file", |_| building.exists().then_some(()));
    assert_mode(&building, 0o600);
    p.stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"{\"event\":\"a\"}\n")
        .expect("write");
    let (wal, shm) = (with_suffix(&dir, DB, "-wal"), with_suffix(&dir, DB, "-shm"));
    p.wait_for("live mode's WAL files", |_| {
        (wal.exists() && shm.exists()).then_some(())
    });
    for path in [dir.path(DB), wal, shm] {
        assert_mode(&path, 0o600);
    }
    p.assert_clean_exit();
    assert_mode(&dir.path(DB), 0o600);

    // Live mode from the start makes the database itself, with the same bits.
    let mut p = ProcBuilder::new(&dir, &["--db", "live.db", "--no-exec-live"])
        .pipe_stdin(true)
        .spawn();
    p.stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"{\"event\":\"b\"}\n")
        .expect("write");
    let (wal, shm) = (dir.path("live.db-wal"), dir.path("live.db-shm"));
    p.wait_for("live mode's WAL files", |_| {
        (wal.exists() && shm.exists()).then_some(())
    });
    for path in [dir.path("live.db"), wal, shm] {
        assert_mode(&path, 0o600);
    }
    p.assert_clean_exit();
}

/// --from-scratch keeps the old database's narrower mode, and a run never widens a database.
#[test]
fn a_rebuilt_database_keeps_its_narrower_mode() {
    usual_umask();
    let dir = Dir::new();
    small_input(&dir);
    chmod(&dir.path(INPUT), 0o644);
    ingest(&dir, &[]);
    assert_mode(&dir.path(DB), 0o644);
    chmod(&dir.path(DB), 0o600);
    ingest(&dir, &[]);
    assert_mode(&dir.path(DB), 0o600);
    ingest(&dir, &["--from-scratch"]);
    assert_mode(&dir.path(DB), 0o600);
}

// ---------------------------------------------------------------------------------------------
// Item 24: names planted beside the database

/// A symbolic link planted where the new database is built (`DB.building`, or its journal's
/// name) is refused, not followed nor removed; the file it points at is left byte for byte, be
/// it one SQLite would take for an empty database.
#[test]
fn a_symlink_planted_at_the_build_name_is_refused() {
    let dir = Dir::new();
    small_input(&dir);
    let victim = dir.create("victim.txt", "someone else's file\n");
    let empty = dir.create("empty-victim", "");
    for (planted, target) in [
        (".building", &victim),
        (".building", &empty),
        (".building-journal", &victim),
    ] {
        let link = with_suffix(&dir, DB, planted);
        std::os::unix::fs::symlink(target, &link).expect("symlink");
        let err = refused(&dir, DB, &[]);
        eprintln!("{planted} -> {}: {err}", target.display());
        assert!(err.contains("symbolic link"), "{err}");
        assert!(
            fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
            "the planted link was removed"
        );
        assert!(!dir.exists(DB), "a database was made");
        fs::remove_file(&link).expect("remove link");
    }
    assert!(dir.read("victim.txt") == b"someone else's file\n");
    assert!(dir.read("empty-victim").is_empty());
    // A stale build that is a plain file of ours is still removed and redone.
    dir.create(&format!("{DB}.building"), "stale");
    ingest(&dir, &[]);
    assert!(!with_suffix(&dir, DB, ".building").exists());
    assert_eq!(dir.db(DB).count("sse_lines"), 2);
}
