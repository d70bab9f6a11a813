//! `ingestor status`: where each log of a database stands: how far it is committed, how far
//! behind its file that is, when it last moved, and which process (if any) is ingesting it.
//!
//! It only looks. The database is opened read-only (in WAL mode a reader never blocks the
//! writer: a follower keeps committing while status runs, and status sees one consistent
//! snapshot); the lock file beside it is opened read-only, never created, and only asked who
//! holds what (`F_GETLK`), so that looking takes no lock a writer could wait for.
//!
//! One entry per path: a path's latest source row is the file there now (older rows are files
//! rotated away, finished); its rows and bad lines are counted over all of its source rows.
//! "Last commit" is the latest row's `updated_at`, which every commit that moves the source's
//! position writes in the same transaction as the rows: it is when the last line of that log
//! landed, not when a follower last looked.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};

use crate::db::{self, SCHEMA_VERSION};
use crate::report::json_string;
use crate::sys::lock::{HeldBy, Locks};
use crate::views::report::thousands;

/// `ingestor status` as asked for ([`crate::config::status_query`] builds it).
#[derive(Clone, Debug)]
pub struct Query {
    pub db: PathBuf,
    pub json: bool,
}

/// Unread tails up to this size have their lines counted; a bigger one is a backlog whose
/// size in bytes says enough, and reading it all would make `status` as slow as `wc -l`.
pub const COUNT_LINES_UP_TO: u64 = 64 << 20;

/// What is at a source's path now, compared with what was ingested from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileNow {
    /// The file the database has been reading (same device and inode).
    Same,
    /// Another file: rotated, deleted and re-created, or rewritten. Its bytes are all unread.
    Replaced,
    Missing,
    /// Standard input: no file to compare with.
    Pipe,
    /// Read on another machine: its path means nothing here.
    OtherHost,
    Unreadable(String),
}

impl FileNow {
    fn word(&self) -> &'static str {
        match self {
            FileNow::Same => "same",
            FileNow::Replaced => "replaced",
            FileNow::Missing => "missing",
            FileNow::Pipe => "pipe",
            FileNow::OtherHost => "other-host",
            FileNow::Unreadable(_) => "unreadable",
        }
    }
}

/// Whether a process is ingesting a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    Nobody,
    /// Held; the pid when the system says it.
    Process(Option<u32>),
    /// The lock file could not be asked (or a pipe, which has no lock of its own).
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Source {
    pub path: String,
    pub host: Option<String>,
    /// Source rows under this path: 1, plus one per rotation or rewrite seen.
    pub files: i64,
    pub offset: u64,
    pub file: FileNow,
    /// The size of the file at the path now.
    pub size: Option<u64>,
    /// Bytes of that file not committed yet (all of it when it replaced the one ingested).
    pub behind_bytes: Option<u64>,
    /// Complete lines in those bytes, when there are at most [`COUNT_LINES_UP_TO`] of them.
    pub behind_lines: Option<u64>,
    pub started_at: Option<String>,
    pub last_commit: Option<String>,
    /// Seconds from `last_commit` to now.
    pub last_commit_age: Option<f64>,
    pub rows: u64,
    pub bad_lines: u64,
    pub holder: Holder,
}

#[derive(Clone, Debug)]
pub struct Status {
    pub db: PathBuf,
    pub schema_version: i64,
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// One of the processes writing to the database, if any is.
    pub writer: Holder,
    pub sources: Vec<Source>,
}

/// Runs `ingestor status`: prints the table (or JSON) on stdout.
pub fn run(q: &Query) -> Result<()> {
    let status = read(&q.db)?;
    let text = if q.json {
        json(&status)
    } else {
        table(&status)
    };
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not a failure.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Everything `status` shows about database `path`.
pub fn read(path: &Path) -> Result<Status> {
    let display = path.display();
    let locks = Locks::probe(path).ok().flatten();
    if !path.exists() {
        // A first backfill builds the database under another name and renames it at the end.
        if let Some(held) = locks
            .as_ref()
            .and_then(|l| l.creation_holder().ok().flatten())
        {
            bail!(
                "database {display} does not exist yet: {held} is creating it (a first backfill \
                 moves it into place when it is complete)"
            );
        }
        bail!("database {display} does not exist");
    }
    let conn = open(path)?;
    let schema_version = check_ours(&conn, path)?;
    let sources = sources(&conn, locks.as_ref())
        .with_context(|| format!("cannot read the sources of {display}"))?;
    drop(conn);
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(Status {
        db: path.to_owned(),
        schema_version,
        db_bytes: size(path),
        wal_bytes: size(Path::new(&wal)),
        writer: holder(locks.as_ref(), Locks::writer_holder),
        sources,
    })
}

fn open(path: &Path) -> Result<Connection> {
    let display = path.display();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open database {display}"))?;
    // A WAL reader waits only while a writer recovers the WAL after a crash.
    conn.busy_timeout(db::BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The schema version, once the file is known to be an ingestor database this build reads.
fn check_ours(conn: &Connection, path: &Path) -> Result<i64> {
    let display = path.display();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| db::read_error(path, e))?;
    let columns = |table: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
        stmt.query_map([table], |r| r.get(0))?.collect()
    };
    let sources = columns("ingest_sources")?;
    if sources.is_empty() {
        bail!("{display} is not an ingestor database (it has no ingest_sources table)");
    }
    if version == 1 {
        bail!(
            "{display} has schema version 1 (an older ingestor's): run ingestor on it once to \
             migrate it, then ask again"
        );
    }
    if version > SCHEMA_VERSION {
        bail!(
            "{display} has schema version {version}, newer than this ingestor's \
             {SCHEMA_VERSION}: upgrade ingestor"
        );
    }
    let needed = [
        (
            "ingest_sources",
            &["path", "host", "offset", "dev", "ino"][..],
        ),
        ("sse_lines", &["source_id"]),
        ("bad_lines", &["source_id"]),
    ];
    for (table, wanted) in needed {
        let found = if table == "ingest_sources" {
            sources.clone()
        } else {
            columns(table)?
        };
        if let Some(missing) = wanted.iter().find(|c| !found.iter().any(|f| f == *c)) {
            bail!(
                "{display} is not an ingestor database (its table {table} has no column \
                 {missing})"
            );
        }
    }
    if version == 0 {
        bail!("{display} is not an ingestor database (its schema version is 0)");
    }
    Ok(version)
}

/// One entry per path, in the order the paths were first ingested.
fn sources(conn: &Connection, locks: Option<&Locks>) -> Result<Vec<Source>> {
    // One read transaction: the counts and the positions are of the same snapshot.
    conn.execute_batch("BEGIN")?;
    let mut counts = std::collections::HashMap::<i64, (u64, u64)>::new();
    let only: Option<i64> = conn.query_row(
        "SELECT CASE WHEN count(*) = 1 THEN max(id) END FROM ingest_sources",
        [],
        |r| r.get(0),
    )?;
    if let Some(id) = only {
        // Every row is the one source's: SQLite counts them on its smallest index.
        let n: i64 = conn.query_row("SELECT count(*) FROM sse_lines", [], |r| r.get(0))?;
        counts.entry(id).or_default().0 = n as u64;
    } else {
        // No index holds source_id: one pass over the table (about 0.2 s of CPU per million
        // rows), counted here rather than grouped by SQLite, which would sort them first.
        let mut stmt = conn.prepare("SELECT source_id FROM sse_lines")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            counts.entry(r.get(0)?).or_default().0 += 1;
        }
    }
    let mut stmt = conn.prepare("SELECT source_id, count(*) FROM bad_lines GROUP BY source_id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        counts.entry(r.get(0)?).or_default().1 += r.get::<_, i64>(1)? as u64;
    }
    drop(rows);
    let mut stmt = conn.prepare(
        "SELECT s.id, s.path, s.host, s.offset, s.dev, s.ino, s.started_at, s.updated_at, \
                (julianday('now') - julianday(s.updated_at)) * 86400.0, \
                (SELECT count(*) FROM ingest_sources o WHERE o.path = s.path), \
                (SELECT min(o.id) FROM ingest_sources o WHERE o.path = s.path) AS first \
           FROM ingest_sources s \
          WHERE s.id = (SELECT max(o.id) FROM ingest_sources o WHERE o.path = s.path) \
          ORDER BY first",
    )?;
    let latest = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<f64>>(8)?,
                r.get::<_, i64>(9)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let ids_of = |path: &str| -> rusqlite::Result<Vec<i64>> {
        let mut stmt = conn.prepare_cached("SELECT id FROM ingest_sources WHERE path = ?1")?;
        stmt.query_map([path], |r| r.get(0))?.collect()
    };
    let here = db::host_name();
    let mut out = Vec::with_capacity(latest.len());
    for (_, path, host, offset, dev, ino, started_at, updated_at, age, files) in latest {
        let (mut rows, mut bad) = (0, 0);
        for id in ids_of(&path)? {
            let (r, b) = counts.get(&id).copied().unwrap_or_default();
            rows += r;
            bad += b;
        }
        let offset = offset.max(0) as u64;
        let elsewhere = host.as_deref().is_some_and(|h| !h.is_empty() && h != here);
        let (file, size, behind_bytes, behind_lines) = if path == "-" {
            (FileNow::Pipe, None, None, None)
        } else if elsewhere {
            (FileNow::OtherHost, None, None, None)
        } else {
            look_at(Path::new(&path), offset, dev.zip(ino))
        };
        let holder = if path == "-" {
            // A pipe has no source lock: the process reading it holds only the writers' one.
            Holder::Unknown
        } else if elsewhere {
            // Locks are per machine (and a database on a network share is not supported).
            Holder::Unknown
        } else {
            holder(locks, |l| l.source_holder(&path))
        };
        out.push(Source {
            path,
            host,
            files,
            offset,
            file,
            size,
            behind_bytes,
            behind_lines,
            started_at,
            last_commit: updated_at,
            last_commit_age: age,
            rows,
            bad_lines: bad,
            holder,
        });
    }
    conn.execute_batch("COMMIT")?;
    Ok(out)
}

/// What is at `path` now, its size, and how much of it is not committed yet.
fn look_at(
    path: &Path,
    offset: u64,
    id: Option<(i64, i64)>,
) -> (FileNow, Option<u64>, Option<u64>, Option<u64>) {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return (FileNow::Missing, None, None, None);
        }
        Err(e) => return (FileNow::Unreadable(e.to_string()), None, None, None),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return (FileNow::Unreadable(e.to_string()), None, None, None),
    };
    let size = meta.len();
    let same = id.is_none_or(|id| id == (meta.dev() as i64, meta.ino() as i64));
    // A file cut below the committed offset is a rewrite, whatever its inode.
    let (now, from) = if same && size >= offset {
        (FileNow::Same, offset)
    } else {
        (FileNow::Replaced, 0)
    };
    let behind = size - from;
    let lines = (behind <= COUNT_LINES_UP_TO)
        .then(|| newlines(&file, from, size).ok())
        .flatten();
    (now, Some(size), Some(behind), lines)
}

/// Newlines in bytes `from..to` of `file`: the complete lines there.
fn newlines(file: &File, from: u64, to: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let (mut at, mut n) = (from, 0);
    while at < to {
        let want = ((to - at) as usize).min(buf.len());
        let got = file.read_at(&mut buf[..want], at)?;
        if got == 0 {
            break;
        }
        n += memchr::memchr_iter(b'\n', &buf[..got]).count() as u64;
        at += got as u64;
    }
    Ok(n)
}

fn holder(locks: Option<&Locks>, ask: impl FnOnce(&Locks) -> io::Result<Option<HeldBy>>) -> Holder {
    match locks {
        // No lock file: no writer has ever run on this database.
        None => Holder::Nobody,
        Some(l) => match ask(l) {
            Ok(None) => Holder::Nobody,
            Ok(Some(HeldBy(pid))) => Holder::Process(pid),
            Err(_) => Holder::Unknown,
        },
    }
}

/// `1234567` bytes as `1.2 MiB` (every size the program reports is in MiB).
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn age(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn held(h: Holder) -> String {
    match h {
        Holder::Nobody => "-".to_owned(),
        Holder::Process(Some(pid)) => format!("pid {pid}"),
        Holder::Process(None) => "yes".to_owned(),
        Holder::Unknown => "?".to_owned(),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| thousands(v as i64))
}

/// The aligned table: the database on one line, then one line per source.
pub fn table(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "database {}: schema {}, {}, WAL {}, writer {}",
        s.db.display(),
        s.schema_version,
        mib(s.db_bytes),
        mib(s.wal_bytes),
        match s.writer {
            Holder::Nobody => "none".to_owned(),
            Holder::Process(Some(pid)) => format!("pid {pid}"),
            Holder::Process(None) => "another process".to_owned(),
            Holder::Unknown => "unknown".to_owned(),
        }
    );
    if s.sources.is_empty() {
        out.push_str("no sources yet: nothing has been ingested into it\n");
        return out;
    }
    let header = [
        "SOURCE",
        "HOST",
        "FILE",
        "OFFSET",
        "SIZE",
        "BEHIND",
        "LINES BEHIND",
        "LAST COMMIT (UTC)",
        "ROWS",
        "BAD",
        "HELD BY",
    ];
    let rows: Vec<[String; 11]> = s
        .sources
        .iter()
        .map(|src| {
            let last = match (&src.last_commit, src.last_commit_age) {
                (Some(t), Some(a)) => {
                    let t = t.get(..19).unwrap_or(t).replace('T', " ");
                    format!("{t} ({})", age(a))
                }
                (Some(t), None) => t.clone(),
                _ => "-".to_owned(),
            };
            [
                src.path.clone(),
                src.host.clone().unwrap_or_else(|| "-".to_owned()),
                src.file.word().to_owned(),
                thousands(src.offset as i64),
                opt(src.size),
                opt(src.behind_bytes),
                opt(src.behind_lines),
                last,
                thousands(src.rows as i64),
                thousands(src.bad_lines as i64),
                held(src.holder),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Text to the left, numbers to the right.
    let left = [
        true, true, true, false, false, false, false, true, false, false, true,
    ];
    let mut put = |cells: &[String]| {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            if i > 0 {
                line.push_str("  ");
            }
            if left[i] {
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    put(&header.map(str::to_owned));
    for row in &rows {
        put(row);
    }
    for src in &s.sources {
        if let FileNow::Unreadable(why) = &src.file {
            let _ = writeln!(out, "{}: cannot read the file: {why}", src.path);
        }
    }
    out
}

/// One JSON object: the database's figures and an array of sources.
pub fn json(s: &Status) -> String {
    let mut out = String::from("{\"db\":");
    json_string(&mut out, &s.db.to_string_lossy());
    let _ = write!(
        out,
        ",\"schema_version\":{},\"db_bytes\":{},\"wal_bytes\":{},\"writer\":",
        s.schema_version, s.db_bytes, s.wal_bytes
    );
    holder_json(&mut out, s.writer);
    out.push_str(",\"sources\":[");
    let num = |out: &mut String, name: &str, v: Option<u64>| {
        let _ = write!(out, ",\"{name}\":");
        match v {
            Some(v) => {
                let _ = write!(out, "{v}");
            }
            None => out.push_str("null"),
        }
    };
    let text = |out: &mut String, name: &str, v: Option<&str>| {
        let _ = write!(out, ",\"{name}\":");
        match v {
            Some(v) => json_string(out, v),
            None => out.push_str("null"),
        }
    };
    for (i, src) in s.sources.iter().enumerate() {
        out.push_str(if i == 0 {
            "\n  {\"path\":"
        } else {
            ",\n  {\"path\":"
        });
        json_string(&mut out, &src.path);
        text(&mut out, "host", src.host.as_deref());
        let _ = write!(out, ",\"files\":{}", src.files);
        num(&mut out, "offset", Some(src.offset));
        text(&mut out, "file", Some(src.file.word()));
        if let FileNow::Unreadable(why) = &src.file {
            text(&mut out, "file_error", Some(why));
        }
        num(&mut out, "size", src.size);
        num(&mut out, "behind_bytes", src.behind_bytes);
        num(&mut out, "behind_lines", src.behind_lines);
        text(&mut out, "started_at", src.started_at.as_deref());
        text(&mut out, "last_commit", src.last_commit.as_deref());
        out.push_str(",\"last_commit_age_s\":");
        match src.last_commit_age {
            Some(a) => {
                let _ = write!(out, "{:.3}", a.max(0.0));
            }
            None => out.push_str("null"),
        }
        num(&mut out, "rows", Some(src.rows));
        num(&mut out, "bad_lines", Some(src.bad_lines));
        out.push_str(",\"held_by\":");
        holder_json(&mut out, src.holder);
        out.push('}');
    }
    out.push_str(if s.sources.is_empty() {
        "]}\n"
    } else {
        "\n]}\n"
    });
    out
}

/// `null` when nobody holds it, `{"pid":N}` (`N` null when the system does not say) when a
/// process does, `"unknown"` when it cannot be told.
fn holder_json(out: &mut String, h: Holder) {
    match h {
        Holder::Nobody => out.push_str("null"),
        Holder::Process(Some(pid)) => {
            let _ = write!(out, "{{\"pid\":{pid}}}");
        }
        Holder::Process(None) => out.push_str("{\"pid\":null}"),
        Holder::Unknown => out.push_str("\"unknown\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_count_complete_lines_in_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let body: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| if i % 7 == 0 { *b"\n" } else { *b"x" })
            .collect();
        std::fs::write(&p, &body).unwrap();
        let f = File::open(&p).unwrap();
        let expect = |from: usize| body[from..].iter().filter(|&&b| b == b'\n').count() as u64;
        for from in [0, 1, 7, 8, 1 << 20, 2_999_999] {
            assert_eq!(
                newlines(&f, from as u64, body.len() as u64).unwrap(),
                expect(from)
            );
        }
    }

    #[test]
    fn a_file_cut_below_the_offset_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"a\nb\n").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        let id = Some((m.dev() as i64, m.ino() as i64));
        assert_eq!(
            look_at(&p, 2, id),
            (FileNow::Same, Some(4), Some(2), Some(1))
        );
        assert_eq!(
            look_at(&p, 9, id),
            (FileNow::Replaced, Some(4), Some(4), Some(2))
        );
        let other = Some((m.dev() as i64, m.ino() as i64 + 1));
        assert_eq!(look_at(&p, 2, other).0, FileNow::Replaced);
        assert_eq!(look_at(&dir.path().join("g"), 0, id).0, FileNow::Missing);
    }

    #[test]
    fn ages_read_as_people_say_them() {
        assert_eq!(age(-0.5), "0 s ago");
        assert_eq!(age(59.9), "59 s ago");
        assert_eq!(age(600.0), "10 min ago");
        assert_eq!(age(3.0 * 3600.0), "3 h ago");
        assert_eq!(age(3.0 * 86_400.0), "3 days ago");
    }
}
