//! The views of views.md (issue 11) against the generator's own answers: `sse-gen --flows`
//! writes coherent Claude messages and Codex responses, traps included, and with `--expect`
//! the rows each view must give, computed from what it generated. The real binary ingests
//! them; every view is compared with those rows column by column (0 divergences), through the
//! bundled SQLite and through the system `sqlite3`. Then `ingestor report` on such databases.

use crate::util;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::Value;
use serde_json::{Map, Value as Json};

use crate::util::{DB, Dir, INPUT, ProcBuilder};

/// Checks that the database `path`, made by the real binary, holds this build's views: `ingestor`
/// creates them when it opens a database (schema version 3).
fn add_views(path: &Path) {
    let conn = Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    assert!(
        ingestor::views::current(&conn).expect("read the schema"),
        "{} does not hold this build's views",
        path.display()
    );
}

/// `sse-gen --flows ARGS --expect exp.jsonl` into `name`, ingested with the real binary into
/// [`DB`], with the views; returns the expectations.
fn flows_db(dir: &Dir, name: &str, args: &[&str]) -> Expected {
    let expect = dir.path("exp.jsonl");
    let mut all = vec!["--flows", "--expect", expect.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let input = dir.generate(name, &all);
    dir.command()
        .arg("--input")
        .arg(&input)
        .arg("--db")
        .arg(dir.path(DB))
        .arg("--quiet")
        .assert_ok();
    add_views(&dir.path(DB));
    Expected::read(&expect)
}

/// The generator's answers: rows per view, and how often each trap was written.
struct Expected {
    views: HashMap<String, Vec<Map<String, Json>>>,
    traps: Map<String, Json>,
}

impl Expected {
    fn read(path: &Path) -> Expected {
        let text = std::fs::read_to_string(path).expect("read the expectations");
        let mut views: HashMap<String, Vec<Map<String, Json>>> = HashMap::new();
        let mut traps = Map::new();
        for line in text.lines() {
            let mut row: Map<String, Json> = serde_json::from_str(line).expect("expectation");
            let Some(Json::String(view)) = row.remove("view") else {
                panic!("no view in {line}")
            };
            if view == "traps" {
                traps = row;
            } else {
                views.entry(view).or_default().push(row);
            }
        }
        Expected { views, traps }
    }
}

/// What identifies a row of each view, and its INTEGER columns (never REAL, views.md).
const VIEWS: [(&str, &[&str], &[&str]); 4] = [
    (
        "requests",
        &["product", "sid", "response_id"],
        &[
            "source_id",
            "meta_pid",
            "ttft_ms",
            "duration_ms",
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
            "tool_calls",
            "lines",
        ],
    ),
    ("tool_calls", &["product", "call_id"], &["source_id"]),
    (
        "sessions",
        &["product", "sid"],
        &[
            "requests",
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
            "tool_calls",
            "lines",
            "reported_total_tokens",
        ],
    ),
    (
        "usage_daily",
        &["day", "product", "model"],
        &[
            "requests",
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
            "tool_calls",
            "max_ttft_ms",
        ],
    ),
];

/// The traps views.md names, each of which the generated data must hold at least once.
const TRAPS: [&str; 14] = [
    "duplicated_message_start",
    "cumulative_message_deltas",
    "two_tool_blocks",
    "empty_tool_input",
    "tool_without_piece",
    "message_without_delta",
    "message_without_stop",
    "request_line_first",
    "killed_response",
    "created_without_model",
    "incomplete_response",
    "failed_response",
    "response_without_delta",
    "cumulative_token_count",
];

fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(*i),
        Value::Real(f) => Json::from(*f),
        Value::Text(t) => Json::from(t.as_str()),
        Value::Blob(b) => Json::from(format!("<blob of {} bytes>", b.len())),
    }
}

/// Every row of `view`, as column name → value.
fn view_rows(conn: &Connection, view: &str) -> Vec<Vec<(String, Value)>> {
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {view}"))
        .unwrap_or_else(|e| panic!("{view}: {e}"));
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    stmt.query_map([], |r| {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((n.clone(), r.get::<_, Value>(i)?)))
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .unwrap_or_else(|e| panic!("{view}: {e}"))
}

fn same(want: &Json, got: &Json) -> bool {
    match (want.as_f64(), got.as_f64()) {
        (Some(w), Some(g)) if want.is_f64() || got.is_f64() => {
            (w - g).abs() <= 1e-9 * w.abs().max(1.0)
        }
        _ => want == got,
    }
}

/// Compares every view of `conn` with the expectations, column by column; returns the
/// divergences, described.
fn divergences(conn: &Connection, expected: &Expected) -> Vec<String> {
    let source: i64 = conn
        .query_row("SELECT max(id) FROM ingest_sources", [], |r| r.get(0))
        .expect("source id");
    let mut out = Vec::new();
    for (view, key, integers) in VIEWS {
        let key_of = |row: &Map<String, Json>| -> String {
            key.iter()
                .map(|k| row.get(*k).map_or("?".to_owned(), Json::to_string))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut want: HashMap<String, &Map<String, Json>> = HashMap::new();
        for row in expected
            .views
            .get(view)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            assert!(
                want.insert(key_of(row), row).is_none(),
                "{view}: the generator wrote {} twice",
                key_of(row)
            );
        }
        assert!(
            !want.is_empty(),
            "no expected {view} rows: the test checks nothing"
        );
        let mut seen = 0;
        for cells in view_rows(conn, view) {
            for (name, value) in &cells {
                if integers.contains(&name.as_str()) && matches!(value, Value::Real(_)) {
                    out.push(format!("{view}.{name} holds a REAL: {value:?}"));
                }
            }
            let got: Map<String, Json> =
                cells.iter().map(|(n, v)| (n.clone(), to_json(v))).collect();
            let k = key_of(&got);
            let Some(w) = want.remove(&k) else {
                out.push(format!("{view}: unexpected row {k}: {got:?}"));
                continue;
            };
            seen += 1;
            for (name, g) in &got {
                let w = match name.as_str() {
                    // The database assigns it: the one source of the test database.
                    "source_id" => &Json::from(source),
                    _ => w
                        .get(name)
                        .unwrap_or_else(|| panic!("{view}.{name}: no expectation")),
                };
                if !same(w, g) {
                    out.push(format!("{view} {k}: {name} is {g}, expected {w}"));
                }
            }
            let extra: Vec<&String> = w.keys().filter(|c| !got.contains_key(*c)).collect();
            if !extra.is_empty() {
                out.push(format!("{view}: columns {extra:?} are missing"));
            }
        }
        for k in want.keys() {
            out.push(format!("{view}: missing row {k}"));
        }
        assert!(seen > 0, "{view}: no row compared");
    }
    out
}

fn assert_matches(what: &str, conn: &Connection, expected: &Expected) {
    let d = divergences(conn, expected);
    assert!(
        d.is_empty(),
        "{what}: {} divergences from the generator's answers, first ones:\n{}",
        d.len(),
        d.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
}

fn assert_every_trap(what: &str, expected: &Expected) {
    for trap in TRAPS {
        let n = expected.traps.get(trap).and_then(Json::as_i64).unwrap_or(0);
        assert!(
            n > 0,
            "{what}: the data holds no {trap}: {:?}",
            expected.traps
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The views, column by column

#[test]
fn views_give_the_generators_answers() {
    for (seed, product, lines) in [
        ("11", "both", "40000"),
        ("12", "claude", "15000"),
        ("13", "codex", "15000"),
    ] {
        let dir = Dir::new();
        let what = format!("--seed {seed} --product {product} --lines {lines}");
        let expected = flows_db(
            &dir,
            INPUT,
            &["--seed", seed, "--product", product, "--lines", lines],
        );
        if product == "both" {
            assert_every_trap(&what, &expected);
        }
        let conn = dir.db(DB).open();
        assert_matches(&what, &conn, &expected);
        // Several days, or usage_daily would not be tested as such.
        let days: i64 = conn
            .query_row("SELECT count(DISTINCT day) FROM usage_daily", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(days >= 2, "{what}: {days} day(s)");
    }
}

/// `create` is idempotent on a real database, and a run cut short (`--bytes`, mid-request)
/// is answered for what was written.
#[test]
fn views_survive_re_creation_and_a_cut_input() {
    let dir = Dir::new();
    let expected = flows_db(
        &dir,
        INPUT,
        &["--seed", "21", "--bytes", "3M", "--no-final-newline"],
    );
    add_views(&dir.path(DB));
    assert_matches("--bytes 3M", &dir.db(DB).open(), &expected);
}

/// The system `sqlite3` (another SQLite version, with its own JSON functions) gives the same
/// answers as the bundled library, type for type.
#[test]
fn system_sqlite3_gives_the_same_answers() {
    let version = Command::new("sqlite3").arg("--version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        eprintln!("note: no sqlite3 on PATH, system_sqlite3_gives_the_same_answers skipped");
        return;
    };
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    let dir = Dir::new();
    let expected = flows_db(&dir, INPUT, &["--seed", "31", "--lines", "20000"]);
    let conn = dir.db(DB).open();
    assert_matches("bundled", &conn, &expected);
    for (view, key, _) in VIEWS {
        let sql = format!("SELECT * FROM {view} ORDER BY {}", key.join(", "));
        let ours: Vec<Vec<(String, Value)>> = {
            let mut stmt = conn.prepare(&sql).unwrap();
            let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            stmt.query_map([], |r| {
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Ok((n.clone(), r.get::<_, Value>(i)?)))
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let out = Command::new("sqlite3")
            .arg("-json")
            .arg(dir.path(DB))
            .arg(&sql)
            .output()
            .expect("run sqlite3");
        assert!(
            out.status.success(),
            "sqlite3 {version}: {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<Map<String, Json>> = if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Vec::new()
        } else {
            serde_json::from_slice(&out.stdout).expect("sqlite3 -json output")
        };
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{view}: row counts (sqlite3 {version})"
        );
        for (a, b) in ours.iter().zip(&theirs) {
            for (name, v) in a {
                let t = b
                    .get(name)
                    .unwrap_or_else(|| panic!("{view}.{name} missing"));
                let agree = match v {
                    Value::Integer(i) => t.as_i64() == Some(*i),
                    Value::Real(f) => t
                        .as_f64()
                        .is_some_and(|g| (f - g).abs() <= 1e-9 * f.abs().max(1.0)),
                    Value::Null => t.is_null(),
                    Value::Text(s) => t.as_str() == Some(s),
                    Value::Blob(_) => false,
                };
                assert!(
                    agree,
                    "{view}.{name}: bundled SQLite {} gives {v:?}, sqlite3 {version} gives {t}",
                    rusqlite::version()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ingestor report

fn report(dir: &Dir, args: &[&str]) -> Output {
    dir.command()
        .arg("report")
        .arg("--db")
        .arg(dir.path(DB))
        .args(args)
        .run()
}

fn report_json(dir: &Dir, args: &[&str]) -> Vec<Map<String, Json>> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = report(dir, &all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "report {args:?} failed: {stderr}");
    assert!(
        stderr.is_empty(),
        "report {args:?} wrote on stderr: {stderr}"
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

/// `(key, product)` → the report's row.
fn by_key(rows: &[Map<String, Json>], key: &str) -> HashMap<(Json, Json), Map<String, Json>> {
    rows.iter()
        .map(|r| ((r[key].clone(), r["product"].clone()), r.clone()))
        .collect()
}

const SUMS: [&str; 6] = [
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "tool_calls",
];

/// `sum(expr)` per `(key, product)` from a view, as JSON values (NULL when SQL says so).
fn view_sums(conn: &Connection, sql: &str) -> HashMap<(Json, Json), Vec<Json>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let cells: Vec<Json> = (0..n)
            .map(|i| r.get::<_, Value>(i).map(|v| to_json(&v)))
            .collect::<Result<_, _>>()?;
        Ok(((cells[0].clone(), cells[1].clone()), cells[2..].to_vec()))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The median (nearest rank) and maximum TTFT of each `(key, product)`, from `requests`.
fn ttfts(conn: &Connection, key: &str) -> HashMap<(Json, Json), (Json, Json)> {
    let mut all: HashMap<(Json, Json), Vec<i64>> = HashMap::new();
    let mut stmt = conn
        .prepare(&format!("SELECT {key}, product, ttft_ms FROM requests"))
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                to_json(&r.get::<_, Value>(0)?),
                to_json(&r.get::<_, Value>(1)?),
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (k, p, t) = row.unwrap();
        let v = all.entry((k, p)).or_default();
        v.extend(t);
    }
    all.into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            let p50 = v.get(v.len().div_ceil(2).saturating_sub(1)).copied();
            (k, (Json::from(p50), Json::from(v.last().copied())))
        })
        .collect()
}

fn assert_report_equals_views(
    what: &str,
    rows: &[Map<String, Json>],
    key: &str,
    sums: &HashMap<(Json, Json), Vec<Json>>,
    ttft: &HashMap<(Json, Json), (Json, Json)>,
) {
    let report = by_key(rows, key);
    assert_eq!(report.len(), sums.len(), "{what}: groups");
    for (k, want) in sums {
        let got = report
            .get(k)
            .unwrap_or_else(|| panic!("{what}: no row for {k:?}"));
        assert_eq!(got["requests"], want[0], "{what} {k:?}: requests");
        for (name, w) in SUMS.iter().zip(&want[1..]) {
            assert_eq!(&got[*name], w, "{what} {k:?}: {name}");
        }
        let (p50, max) = &ttft[k];
        assert_eq!(
            (&got["ttft_p50_ms"], &got["ttft_max_ms"]),
            (p50, max),
            "{what} {k:?}: ttft"
        );
    }
}

#[test]
fn report_adds_up_to_the_views() {
    let dir = Dir::new();
    flows_db(&dir, INPUT, &["--seed", "41", "--lines", "20000"]);
    let conn = dir.db(DB).open();
    let sum_cols = "sum(requests), sum(input_tokens), sum(cache_read_tokens), \
                    sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens), \
                    sum(tool_calls)";

    // By day (the default): usage_daily summed over models.
    let rows = report_json(&dir, &[]);
    let sums = view_sums(
        &conn,
        &format!("SELECT day, product, {sum_cols} FROM usage_daily GROUP BY day, product"),
    );
    assert!(
        sums.len() >= 4,
        "two products over two days at least: {}",
        sums.len()
    );
    let ttft = ttfts(&conn, "substr(started_at, 1, 10)");
    assert_report_equals_views("--by day", &rows, "day", &sums, &ttft);
    let days: Vec<&str> = rows.iter().map(|r| r["day"].as_str().unwrap()).collect();
    assert!(days.is_sorted(), "days in order: {days:?}");

    // By session: the sessions view (sessions with requests).
    let rows = report_json(&dir, &["--by", "session"]);
    let sums = view_sums(
        &conn,
        &format!(
            "SELECT sid, product, {sum_cols} FROM sessions WHERE requests > 0 \
             GROUP BY sid, product"
        ),
    );
    assert_report_equals_views(
        "--by session",
        &rows,
        "session",
        &sums,
        &ttfts(&conn, "sid"),
    );

    // By model and by folder, filtered: one product, a range of days.
    let first_day: String = conn
        .query_row("SELECT min(day) FROM usage_daily", [], |r| r.get(0))
        .unwrap();
    let args = [
        "--by",
        "model",
        "--product",
        "codex",
        "--since",
        &first_day,
        "--until",
        &first_day,
    ];
    let rows = report_json(&dir, &args);
    let sums = view_sums(
        &conn,
        &format!(
            "SELECT model, product, {sum_cols} FROM usage_daily \
             WHERE product = 'codex' AND day = '{first_day}' GROUP BY model, product"
        ),
    );
    assert!(!sums.is_empty(), "codex requests on {first_day}");
    let ttft: HashMap<_, _> = {
        let mut stmt = conn
            .prepare(
                "SELECT model, product, ttft_ms FROM requests \
                 WHERE product = 'codex' AND substr(started_at, 1, 10) = ?1",
            )
            .unwrap();
        let mut all: HashMap<(Json, Json), Vec<i64>> = HashMap::new();
        for row in stmt
            .query_map([&first_day], |r| {
                Ok((
                    to_json(&r.get::<_, Value>(0)?),
                    to_json(&r.get::<_, Value>(1)?),
                    r.get::<_, Option<i64>>(2)?,
                ))
            })
            .unwrap()
        {
            let (k, p, t) = row.unwrap();
            all.entry((k, p)).or_default().extend(t);
        }
        all.into_iter()
            .map(|(k, mut v)| {
                v.sort_unstable();
                let p50 = v.get(v.len().div_ceil(2).saturating_sub(1)).copied();
                (k, (Json::from(p50), Json::from(v.last().copied())))
            })
            .collect()
    };
    assert_report_equals_views(&args.join(" "), &rows, "model", &sums, &ttft);
    let rows = report_json(&dir, &["--by", "cwd"]);
    let requests: i64 = rows.iter().map(|r| r["requests"].as_i64().unwrap()).sum();
    let total: i64 = conn
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap();
    assert_eq!(requests, total, "--by cwd covers every request once");
    let none = report_json(&dir, &["--since", "2999-01-01"]);
    assert!(none.is_empty(), "no request in 2999: {none:?}");
}

#[test]
fn report_table_is_aligned_with_separated_thousands() {
    let dir = Dir::new();
    flows_db(&dir, INPUT, &["--seed", "42", "--lines", "15000"]);
    let conn = dir.db(DB).open();
    let out = report(&dir, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("DAY ") && lines[0].contains("TTFT P50 MS"),
        "{text}"
    );
    let width = lines[0].chars().count();
    assert!(
        lines.iter().all(|l| l.chars().count() == width),
        "lines of different widths:\n{text}"
    );
    // One total line per product, equal to the views' sums, with thousands separators.
    for product in ["claude", "codex"] {
        let total = lines
            .iter()
            .find(|l| l.starts_with("total") && l.contains(product))
            .unwrap_or_else(|| panic!("no {product} total:\n{text}"));
        let (requests, output): (i64, i64) = conn
            .query_row(
                "SELECT sum(requests), sum(output_tokens) FROM usage_daily WHERE product = ?1",
                [product],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        // total, product, requests, input, cache read, cache write, output, ...
        let cells: Vec<&str> = total.split_whitespace().collect();
        let number = |i: usize| cells[i].replace(',', "").parse::<i64>().ok();
        assert_eq!(number(2), Some(requests), "{product} requests: {total}");
        assert_eq!(number(6), Some(output), "{product} output tokens: {total}");
        assert!(output < 1000 || total.contains(&ingestor::views::report::thousands(output)));
    }
    assert!(text.contains(','), "no thousands separator:\n{text}");
}

#[test]
fn report_says_when_there_is_nothing_to_report() {
    let dir = Dir::new();
    let assert_refused = |what: &str, words: &str| {
        let out = report(&dir, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: wrote on stdout");
        util::assert_no_panic(what, &stderr);
        let body = stderr.trim_end();
        assert!(
            !body.is_empty() && !body.contains('\n') && body.contains(words),
            "{what}: expected one line saying {words:?}: {stderr}"
        );
    };
    assert_refused("a missing database", "does not exist");
    assert!(!dir.exists(DB), "report created the database");

    Connection::open(dir.path(DB))
        .unwrap()
        .execute_batch("CREATE TABLE notes(x)")
        .unwrap();
    assert_refused("another program's database", "not an ingestor database");
    std::fs::remove_file(dir.path(DB)).unwrap();

    // A database of today's ingestor, empty: it has its views.
    let empty = dir.create("empty.jsonl", "");
    dir.command()
        .arg("--input")
        .arg(&empty)
        .arg("--db")
        .arg(dir.path(DB))
        .arg("--quiet")
        .assert_ok();
    add_views(&dir.path(DB));
    assert_refused("an empty database", "empty");

    // Without its views (as a database of schema version 2 is, until ingestor opens it).
    Connection::open(dir.path(DB))
        .unwrap()
        .execute_batch(
            "DROP VIEW usage_daily; DROP VIEW sessions; DROP VIEW tool_calls; DROP VIEW requests;",
        )
        .unwrap();
    assert_refused("a database without views", "no views yet");

    let out = report(&dir, &["--since", "2025-02-30"]);
    assert_eq!(out.status.code(), Some(2), "an impossible day is bad usage");
}

/// A reader of a WAL database needs its `-shm` file; where it cannot create one (a folder it
/// cannot write, no writer running), the report says so in one line.
#[test]
fn report_on_a_wal_database_in_a_read_only_folder_says_why_it_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dir::new();
    flows_db(&dir, INPUT, &["--seed", "43", "--lines", "2000"]);
    let conn = Connection::open(dir.path(DB)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    drop(conn);
    assert!(
        !dir.exists(&format!("{DB}-shm")),
        "a clean close removes the -shm file"
    );
    let set = |mode: u32| {
        std::fs::set_permissions(dir.root(), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set(0o555);
    let out = dir
        .command()
        .arg("report")
        .arg("--db")
        .arg(dir.path(DB))
        .unprivileged()
        .run();
    set(0o755);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.trim_end().lines().count() == 1 && stderr.contains("WAL mode"),
        "{stderr}"
    );
}

/// A follower keeps writing (WAL, live mode) while reports read the same database: each report
/// succeeds, and the last one, once the follower has caught up, counts every request.
#[test]
fn report_reads_while_a_follower_writes() {
    let dir = Dir::new();
    let expect = dir.path("exp.jsonl");
    dir.generate(
        "all.jsonl",
        &[
            "--flows",
            "--seed",
            "51",
            "--lines",
            "12000",
            "--expect",
            expect.to_str().unwrap(),
        ],
    );
    let all = dir.read("all.jsonl");
    let half = util::after_lines(&all, 6000);
    dir.create(INPUT, &all[..half]);
    dir.command()
        .arg("--input")
        .arg(dir.path(INPUT))
        .arg("--db")
        .arg(dir.path(DB))
        .arg("--quiet")
        .assert_ok();
    add_views(&dir.path(DB));
    let mut p = ProcBuilder::follow(&dir, &["--follow"]).spawn();
    assert_eq!(
        p.wait_exec(),
        half as u64,
        "live mode from the committed offset"
    );
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            util::append_in_pieces(&dir, &all[half..], 20, Duration::from_millis(30));
        });
        let mut reports = 0;
        while !writer.is_finished() || reports < 3 {
            let out = report(&dir, &["--json"]);
            assert!(
                out.status.success(),
                "report while following: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Json>(&out.stdout).expect("JSON");
            reports += 1;
        }
    });
    util::wait_counts(&mut p, &dir.path(DB), 12000, 0);
    let rows = report_json(&dir, &[]);
    let requests: i64 = rows.iter().map(|r| r["requests"].as_i64().unwrap()).sum();
    let expected = Expected::read(&expect);
    assert_eq!(requests, expected.views["requests"].len() as i64);
    p.stop_with(libc::SIGTERM);
}
