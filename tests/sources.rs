//! Several sources in one database: more than one `--input`, several processes writing one
//! database (created by none of them yet, or existing), the locks between them, readers
//! during writes, and the in-place migration of a database made by the previous release.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::util::{
    self, DB, Dir, INPUT, Proc, ProcBuilder, assert_matches, assert_source_matches, generate,
    wait_all,
};

/// The newest source recorded for the file `name` of `dir`.
fn source_id(dir: &Dir, name: &str) -> i64 {
    let path = std::fs::canonicalize(dir.path(name)).expect("canonical path");
    dir.db(DB)
        .open()
        .query_row(
            "SELECT id FROM ingest_sources WHERE path = ?1 ORDER BY id DESC LIMIT 1",
            [path.to_str().expect("utf-8 path")],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("no source for {name}: {e}"))
}

#[test]
fn two_inputs_land_in_one_database_each_as_its_own_source() {
    let dir = Dir::new();
    let a = generate(&dir, "a.jsonl", 1, 500, "0.05");
    let b = generate(&dir, "b.jsonl", 2, 400, "0.05");
    let args = ["--input", "a.jsonl", "--input", "b.jsonl", "--db", DB];
    dir.command().args(args).assert_ok();
    let db = dir.db(DB);
    let (sa, sb) = (source_id(&dir, "a.jsonl"), source_id(&dir, "b.jsonl"));
    assert_ne!(sa, sb);
    assert_source_matches(&db, sa, &a);
    assert_source_matches(&db, sb, &b);
    // The contract columns of ingest_sources: absolute paths, this host, positions, times.
    let conn = db.open();
    let mut stmt = conn
        .prepare(
            "SELECT path, host, offset, started_at, updated_at FROM ingest_sources ORDER BY id",
        )
        .expect("prepare");
    let sources: Vec<(String, String, i64, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(sources.len(), 2);
    for ((path, host, offset, started, updated), bytes) in sources.iter().zip([&a, &b]) {
        assert!(Path::new(path).is_absolute(), "{path}");
        assert!(!host.is_empty(), "no host for {path}");
        assert_eq!(*offset as usize, bytes.len(), "{path}");
        assert!(
            started.ends_with('Z') && updated.ends_with('Z'),
            "{started} {updated}"
        );
    }
    drop(stmt);
    // Again: nothing is added, and the query that splits rows by source works.
    dir.command().args(args).assert_ok();
    let per_source: Vec<(String, i64)> = conn
        .prepare(
            "SELECT s.path, count(*) FROM sse_lines l JOIN ingest_sources s \
             ON l.source_id = s.id GROUP BY s.path ORDER BY s.path",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read");
    let expected = |bytes: &[u8]| crate::oracle::expect(bytes).rows.len() as i64;
    assert_eq!(per_source[0].1, expected(&a));
    assert_eq!(per_source[1].1, expected(&b));
}

#[test]
fn standard_input_only_alone_and_no_file_twice() {
    let dir = Dir::new();
    dir.create("a.jsonl", "{\"event\":\"a\"}\n");
    let err = dir
        .command()
        .args(["--input", "a.jsonl", "--input", "-", "--db", DB])
        .assert_err();
    assert!(err.contains("standard input"), "{err}");
    let err = dir
        .command()
        .args(["--input", "a.jsonl", "--input", "./a.jsonl", "--db", DB])
        .assert_err();
    assert!(err.contains("twice"), "{err}");
    let err = dir
        .command()
        .args(["--input", "a.jsonl", "--input", "b.jsonl", "--db", DB])
        .args(["--start-offset", "0"])
        .assert_err();
    assert!(err.contains("--start-offset"), "{err}");
    assert!(!dir.exists(DB));
}

/// A small deterministic generator of delays, so that a failing round can be replayed.
fn delays(seed: u64, n: usize) -> Vec<Duration> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Duration::from_millis((x >> 33) % 40)
        })
        .collect()
}

/// Two processes on different sources and a third on the same source as the first, started
/// together with random delays, on a new database and on an existing one: every run that
/// exits 0 has stored all its lines, the third either says who holds its source (exit 1) or
/// finds nothing left to do, and after one more pass every line of every file is there exactly
/// once.
#[test]
fn writers_started_together_store_every_line_exactly_once() {
    for round in 0..6u64 {
        let dir = Dir::new();
        let a = generate(&dir, "a.jsonl", 10 + round, 3000, "0.02");
        let b = generate(&dir, "b.jsonl", 20 + round, 2000, "0.02");
        let existing = round % 2 == 1;
        if existing {
            let c = generate(&dir, "c.jsonl", 30 + round, 300, "0");
            dir.command()
                .args(["--input", "c.jsonl", "--db", DB])
                .assert_ok();
            assert_source_matches(&dir.db(DB), source_id(&dir, "c.jsonl"), &c);
        }
        let inputs = ["a.jsonl", "b.jsonl", "a.jsonl"];
        let mut procs: Vec<(usize, Proc)> = Vec::new();
        for (i, (input, delay)) in inputs.iter().zip(delays(round, 3)).enumerate() {
            thread::sleep(delay);
            let p = ProcBuilder::new(&dir, &["--input", input, "--db", DB, "--batch-rows", "500"])
                .spawn();
            procs.push((i, p));
        }
        let mut ok = [false; 3];
        for (i, p) in &mut procs {
            let status = p.wait_exit();
            let err = p.stderr();
            assert!(!err.contains("panicked"), "{err}");
            match status.code() {
                Some(0) => ok[*i] = true,
                Some(1) if *i == 2 => assert!(
                    err.contains("is being ingested") && err.contains("process"),
                    "round {round}: the second reader of a.jsonl: {err}"
                ),
                other => panic!(
                    "round {round}: run {i} ({}) ended with {other:?}: {err}",
                    inputs[*i]
                ),
            }
        }
        assert!(ok[0] && ok[1], "round {round}: {ok:?}");
        let db = dir.db(DB);
        // Each run that exited 0 has all its lines: a.jsonl's and b.jsonl's whole files.
        assert_source_matches(&db, source_id(&dir, "a.jsonl"), &a);
        assert_source_matches(&db, source_id(&dir, "b.jsonl"), &b);
        // One more pass changes nothing.
        let before = db.count("sse_lines") + db.count("bad_lines");
        dir.command()
            .args(["--input", "a.jsonl", "--input", "b.jsonl", "--db", DB])
            .assert_ok();
        assert_eq!(db.count("sse_lines") + db.count("bad_lines"), before);
        let sources: i64 = db
            .open()
            .query_row("SELECT count(*) FROM ingest_sources", [], |r| r.get(0))
            .expect("count sources");
        assert_eq!(sources, 2 + i64::from(existing), "round {round}");
        db.assert_integrity();
    }
}

/// The same source is never ingested by two processes at once: a second run names the process
/// that holds it and exits 1; `--from-scratch` needs the database to itself; a second follower
/// waits and takes over when the first ends.
#[test]
fn a_source_is_held_by_one_process_and_taken_over_when_it_ends() {
    let dir = Dir::new();
    let first_part = generate(&dir, "all.jsonl", 5, 600, "0");
    dir.create(INPUT, &first_part);
    let mut first = Proc::follow(&dir, &["--follow"]);
    first.wait_exec();
    wait_all(&mut first, &dir.path(DB), &first_part);
    let holder = format!("process {}", first.pid);

    let err = dir
        .command()
        .args(["--input", INPUT, "--db", DB])
        .assert_err();
    assert!(
        err.contains(&holder) && err.contains("is being ingested"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    dir.create("other.jsonl", "{\"event\":\"x\"}\n");
    let err = dir
        .command()
        .args(["--input", "other.jsonl", "--db", DB, "--from-scratch"])
        .assert_err();
    assert!(
        err.contains(&holder) && err.contains("--from-scratch"),
        "{err}"
    );

    let mut second = ProcBuilder::follow(&dir, &["--follow"]).spawn();
    second.wait_stderr("waiting to take over");
    let err = first.stop_with(libc::SIGTERM);
    assert!(!err.contains("panicked"), "{err}");
    second.wait_exec();
    let mut all = first_part.clone();
    let more = generate(&dir, "more.jsonl", 6, 300, "0");
    dir.append(INPUT, &more);
    all.extend_from_slice(&more);
    wait_all(&mut second, &dir.path(DB), &all);
    second.stop_with(libc::SIGTERM);
    assert_matches(&dir.db(DB), &all);
}

/// A reader polling every 50 ms with a 200 ms busy timeout never gets an error, during a
/// resumed backfill (which used to switch the database to a rollback journal and lock readers
/// out for each commit) and during live bursts.
#[test]
fn readers_are_never_locked_out() {
    let dir = Dir::new();
    let all = generate(&dir, "all.jsonl", 8, 80_000, "0");
    let cut = util::after_lines(&all, 2_000);
    dir.create(INPUT, &all[..cut]);
    dir.command()
        .args(["--input", INPUT, "--db", DB])
        .assert_ok();

    let stop = Arc::new(AtomicBool::new(false));
    let (queries, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let reader = {
        let (db, stop) = (dir.path(DB), stop.clone());
        let (queries, failures) = (queries.clone(), failures.clone());
        thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let counted = Connection::open(&db).and_then(|c| {
                    c.busy_timeout(Duration::from_millis(200))?;
                    c.query_row("SELECT count(*) FROM sse_lines", [], |r| r.get::<_, i64>(0))
                });
                queries.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = counted {
                    failures.fetch_add(1, Ordering::Relaxed);
                    errors.push(e.to_string());
                }
                thread::sleep(Duration::from_millis(50));
            }
            errors
        })
    };
    // A resumed backfill in its usual big transactions: their pages spill out of the page
    // cache, which in a rollback journal takes the database's exclusive lock until the commit.
    let half = util::after_lines(&all, 50_000);
    dir.create(INPUT, &all[..half]);
    dir.command()
        .args(["--input", INPUT, "--db", DB])
        .assert_ok();
    // Live bursts (cut anywhere: a follower waits for each line's newline).
    let mut p = Proc::follow(&dir, &["--follow"]);
    p.wait_exec();
    let step = (all.len() - half) / 4;
    for i in 0..4 {
        let end = if i == 3 {
            all.len()
        } else {
            half + (i + 1) * step
        };
        dir.append(INPUT, &all[half + i * step..end]);
        thread::sleep(Duration::from_millis(300));
    }
    wait_all(&mut p, &dir.path(DB), &all);
    p.stop_with(libc::SIGTERM);
    stop.store(true, Ordering::Relaxed);
    let errors = reader.join().expect("reader thread");
    let n = queries.load(Ordering::Relaxed);
    assert!(n > 5, "the reader ran only {n} queries");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "{n} queries; errors: {:?}",
        &errors[..errors.len().min(5)]
    );
    assert_matches(&dir.db(DB), &all);
}

/// A fixture made by the previous release (tests/fixtures/README.md).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const V1_COLUMNS: &str = "id, event, t, flow_id, round, data_count, sid, meta_ver, meta_pid, \
     meta_cwd, meta_turn_id, metadata, extra, line";

fn all_values(conn: &Connection, sql: &str) -> Vec<Vec<Value>> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("read")
}

/// A version-1 database (made by the previous release) is migrated in place: every row kept
/// with every value, provenance where it is certain (one source) and NULL otherwise, the
/// user's view, trigger and index kept, the indexes rebuilt, and the run says what it did.
#[test]
fn a_version_1_database_is_migrated_in_place() {
    for (name, only_source) in [("v1-one-source.db", Some(1)), ("v1-two-sources.db", None)] {
        let dir = Dir::new();
        std::fs::copy(fixture(name), dir.path(DB)).expect("copy fixture");
        let db = dir.db(DB);
        assert_eq!(db.user_version(), 1, "{name}");
        let (rows, bad) = {
            let conn = db.open_rw();
            conn.execute_batch(
                "CREATE VIEW mine AS SELECT event, count(*) AS n FROM sse_lines GROUP BY event;
                 CREATE TABLE notes(line_id INTEGER, note TEXT);
                 CREATE TRIGGER remember AFTER INSERT ON sse_lines
                   BEGIN INSERT INTO notes VALUES (new.id, 'new'); END;
                 CREATE INDEX my_event ON sse_lines(event);",
            )
            .expect("user objects");
            (
                all_values(
                    &conn,
                    &format!("SELECT {V1_COLUMNS} FROM sse_lines ORDER BY id"),
                ),
                all_values(
                    &conn,
                    "SELECT id, src_offset, reason, raw FROM bad_lines ORDER BY id",
                ),
            )
        };
        dir.create("new.jsonl", "{\"event\":\"after\"}\n");
        let out = dir
            .command()
            .args(["--input", "new.jsonl", "--db", DB])
            .run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert!(
            err.contains("migrated from schema version 1 to 3")
                && err.contains(&format!("{} rows", rows.len())),
            "{name}: {err}"
        );
        assert_eq!(db.user_version(), 3, "{name}");
        db.assert_integrity();
        let conn = db.open();
        let kept = all_values(
            &conn,
            &format!("SELECT {V1_COLUMNS} FROM sse_lines WHERE id <= ?1 ORDER BY id")
                .replace("?1", &rows.len().to_string()),
        );
        assert_eq!(kept.len(), rows.len(), "{name}");
        assert!(kept == rows, "{name}: rows changed by the migration");
        let kept_bad = all_values(
            &conn,
            "SELECT id, src_offset, reason, raw FROM bad_lines ORDER BY id",
        );
        assert!(
            kept_bad == bad,
            "{name}: bad lines changed by the migration"
        );
        let provenance = all_values(
            &conn,
            &format!(
                "SELECT DISTINCT source_id, src_offset FROM sse_lines WHERE id <= {}",
                rows.len()
            ),
        );
        let want_source = only_source.map_or(Value::Null, Value::Integer);
        assert_eq!(
            provenance,
            vec![vec![want_source.clone(), Value::Null]],
            "{name}"
        );
        let bad_sources = all_values(&conn, "SELECT DISTINCT source_id FROM bad_lines");
        assert_eq!(bad_sources, vec![vec![want_source]], "{name}");
        // The new line was stored after the migration, with its provenance, and the user's
        // trigger saw it; the view and the index are there.
        let new_id: i64 = conn
            .query_row(
                "SELECT id FROM sse_lines WHERE event = 'after' AND src_offset = 0 \
                 AND source_id = (SELECT max(id) FROM ingest_sources)",
                [],
                |r| r.get(0),
            )
            .expect("the new line");
        let noted: i64 = conn
            .query_row(
                "SELECT count(*) FROM notes WHERE line_id = ?1",
                [new_id],
                |r| r.get(0),
            )
            .expect("notes");
        assert_eq!(noted, 1, "{name}: the user's trigger");
        let objects: Vec<Vec<Value>> = all_values(
            &conn,
            "SELECT name FROM sqlite_schema WHERE name IN ('mine', 'my_event', 'remember') \
             ORDER BY name",
        );
        assert_eq!(objects.len(), 3, "{name}: {objects:?}");
        assert_eq!(
            db.indexes()
                .iter()
                .filter(|(n, _)| n.starts_with("idx_sse_"))
                .count(),
            7
        );
        let hosts = all_values(
            &conn,
            "SELECT DISTINCT host IS NOT NULL FROM ingest_sources",
        );
        assert_eq!(hosts, vec![vec![Value::Integer(1)]], "{name}");
        // A second run has nothing to migrate.
        let again = dir
            .command()
            .args(["--input", "new.jsonl", "--db", DB])
            .assert_ok();
        assert!(!again.contains("migrat"), "{name}: {again}");
    }
}

/// Two processes following two logs into one database, each killed with SIGKILL at random
/// moments (in the backfill, around the exec, in live mode) and restarted while a writer
/// appends to both: after every kill the database passes `integrity_check` and no line is
/// stored twice; at the end every line of both logs is there exactly once.
#[cfg(target_os = "linux")]
#[test]
fn two_writers_of_one_database_killed_at_random_lose_and_duplicate_nothing() {
    let dir = Dir::new();
    let logs = ["a.jsonl", "b.jsonl"];
    let data = [
        generate(&dir, "a.all", 41, 6_000, "0.01"),
        generate(&dir, "b.all", 42, 6_000, "0.01"),
    ];
    for log in logs {
        dir.create(log, "");
    }
    let start =
        |log: &str| ProcBuilder::new(&dir, &["--input", log, "--db", DB, "--follow"]).spawn();
    let mut procs = [start(logs[0]), start(logs[1])];
    let mut written = [0usize; 2];
    let pauses = delays(7, 64);
    let mut kills = 0;
    for (step, pause) in pauses.iter().enumerate() {
        // Append a piece of each log, cut anywhere (inside lines too).
        for (i, log) in logs.iter().enumerate() {
            let to = (written[i] + 211 * (1 + step % 5) * 7).min(data[i].len());
            dir.append(log, &data[i][written[i]..to]);
            written[i] = to;
        }
        thread::sleep(*pause * 3);
        if step % 3 == 2 {
            let i = (step / 3) % 2;
            procs[i].signal(libc::SIGKILL);
            let _ = procs[i].wait_exit();
            kills += 1;
            dir.db(DB).assert_integrity();
            dir.db(DB).assert_lines_unique();
            procs[i] = start(logs[i]);
        }
    }
    for (i, log) in logs.iter().enumerate() {
        dir.append(log, &data[i][written[i]..]);
    }
    let db = dir.path(DB);
    for (i, p) in procs.iter_mut().enumerate() {
        p.wait_for("all lines of its log", |_| {
            let sid: Option<i64> = util::try_open(&db)
                .ok()?
                .query_row(
                    "SELECT id FROM ingest_sources WHERE path LIKE ?1 ORDER BY id DESC LIMIT 1",
                    [format!("%/{}", logs[i])],
                    |r| r.get(0),
                )
                .ok()?;
            let (rows, bad): (i64, i64) = util::try_open(&db)
                .ok()?
                .query_row(
                    "SELECT (SELECT count(*) FROM sse_lines WHERE source_id = ?1), \
                 (SELECT count(*) FROM bad_lines WHERE source_id = ?1)",
                    [sid?],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ok()?;
            let exp = crate::oracle::expect(&data[i]);
            ((rows as usize, bad as usize) == (exp.rows.len(), exp.bad.len())).then_some(())
        });
    }
    for p in &mut procs {
        let err = p.stop_with(libc::SIGTERM);
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(kills >= 20, "only {kills} kills");
    let db = dir.db(DB);
    for (i, log) in logs.iter().enumerate() {
        assert_source_matches(&db, source_id(&dir, log), &data[i]);
    }
}

/// The two-log setup of the README, through the real binary: `--input A --input B --follow`
/// backfills both, hands over by one exec to one live process that follows both (appends to
/// each, a rename rotation of one), stays within the memory targets, and stops cleanly on
/// SIGTERM; every line of both logs once, rows naming their log.
#[cfg(target_os = "linux")]
#[test]
fn one_follower_follows_both_logs() {
    let dir = Dir::new();
    let a = generate(&dir, "a.all", 61, 3_000, "0.01");
    let b = generate(&dir, "b.all", 62, 3_000, "0.01");
    let (a_cut, b_cut) = (util::after_lines(&a, 1_000), util::after_lines(&b, 1_000));
    dir.create("a.jsonl", &a[..a_cut]);
    dir.create("b.jsonl", &b[..b_cut]);
    let args = [
        "--input", "a.jsonl", "--input", "b.jsonl", "--db", DB, "--follow",
    ];
    let mut p = ProcBuilder::new(&dir, &args).spawn();
    p.wait_stderr("live from offsets");
    p.wait_for("the exec into live mode", |p| p.execed().then_some(()));
    let count = |dir: &Dir| dir.db(DB).count("sse_lines") + dir.db(DB).count("bad_lines");
    let lines = |bytes: &[u8]| {
        let e = crate::oracle::expect(bytes);
        (e.rows.len() + e.bad.len()) as i64
    };
    p.wait_for("the backfill of both", |_| {
        util::try_counts(&dir.path(DB))
            .ok()
            .filter(|(rows, bad)| rows + bad == lines(&a[..a_cut]) + lines(&b[..b_cut]))
    });
    thread::sleep(Duration::from_millis(1500));
    let idle = util::vm_rss(p.pid);
    // Bursts into both, then a rotation of a.jsonl by rename, then more into both.
    let (a_mid, b_mid) = (util::after_lines(&a, 2_000), util::after_lines(&b, 2_000));
    dir.append("a.jsonl", &a[a_cut..a_mid]);
    dir.append("b.jsonl", &b[b_cut..b_mid]);
    p.wait_for("the first burst", |_| {
        (count(&dir) == lines(&a[..a_mid]) + lines(&b[..b_mid])).then_some(())
    });
    std::fs::rename(dir.path("a.jsonl"), dir.path("a.jsonl.1")).expect("rotate");
    dir.create("a.jsonl", &a[a_mid..]);
    dir.append("b.jsonl", &b[b_mid..]);
    p.wait_for("everything", |_| {
        (count(&dir) == lines(&a) + lines(&b)).then_some(())
    });
    let err = p.stop_with(libc::SIGTERM);
    assert_eq!(p.status.and_then(|s| s.code()), Some(0), "{err}");
    eprintln!("idle RSS of the live process following two logs: {idle} bytes");
    assert!(idle <= 8 << 20, "idle RSS {idle} bytes, over 8 MiB");
    let db = dir.db(DB);
    // a.jsonl's two files are two sources; b.jsonl is one.
    let a_sources: Vec<Vec<Value>> = all_values(
        &db.open(),
        "SELECT id FROM ingest_sources WHERE path LIKE '%/a.jsonl' ORDER BY id",
    );
    assert_eq!(a_sources.len(), 2, "{a_sources:?}");
    let id = |v: &Vec<Value>| match v[0] {
        Value::Integer(i) => i,
        _ => unreachable!(),
    };
    assert_source_matches(&db, id(&a_sources[0]), &a[..a_mid]);
    assert_source_matches(&db, id(&a_sources[1]), &a[a_mid..]);
    assert_source_matches(&db, source_id(&dir, "b.jsonl"), &b);
}

/// A version-2 database (made by the build before the views) gets the views of views.md in
/// place: nothing else changes, the run says so once, and the views answer.
#[test]
fn a_version_2_database_gets_its_views() {
    let dir = Dir::new();
    std::fs::copy(fixture("v2-one-source.db"), dir.path(DB)).expect("copy fixture");
    let db = dir.db(DB);
    assert_eq!(db.user_version(), 2);
    let before = all_values(&db.open(), "SELECT * FROM sse_lines ORDER BY id");
    dir.create("new.jsonl", "");
    let out = dir
        .command()
        .args(["--input", "new.jsonl", "--db", DB])
        .run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("schema version 2 to 3"), "{err}");
    assert_eq!(db.user_version(), 3);
    let conn = db.open();
    assert!(all_values(&conn, "SELECT * FROM sse_lines ORDER BY id") == before);
    for view in ["requests", "tool_calls", "sessions", "usage_daily"] {
        all_values(&conn, &format!("SELECT * FROM {view}"));
    }
    let again = dir
        .command()
        .args(["--input", "new.jsonl", "--db", DB])
        .assert_ok();
    assert!(!again.contains("schema version"), "{again}");
}
