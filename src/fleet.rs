//! `ingestor fleet`: one query over many hosts' databases (docs/fleet.md).
//!
//! Each machine keeps its own database (replicated elsewhere by Litestream); to ask one
//! question of all of them, SQLite's `ATTACH` puts them side by side in one connection and
//! `UNION ALL` views put their rows in one table with a `host` column. The views must be
//! TEMP: SQLite refuses a view stored in one database file that reads another one ("view v
//! cannot reference objects in database h1"), so a stored "merged" database would have to
//! copy every row, and go stale. The command therefore prints the SQL of a session instead
//! (`sqlite3 -cmd '.read fleet.sql'`), after checking what a wrong answer would hide: a file
//! that is not an ingestor database of this schema, the same file twice, two databases that
//! hold the same log (a database restored twice, or copied), which would count twice, and two
//! databases of one host, whose rows (host, source_id, src_offset) would not tell apart.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};

use crate::db::SCHEMA_VERSION;
use crate::exit::UsageError;
use crate::views::VIEWS;

/// Hosts one script may attach: SQLite's default `SQLITE_MAX_ATTACHED`, which the `sqlite3`
/// shells users have are built with (a build may raise it up to 125; a script written for
/// more would fail in theirs at the eleventh ATTACH).
pub const MAX_HOSTS: usize = 10;

/// The tables and views merged, each with `host` as its first column.
const TABLES: [&str; 3] = ["sse_lines", "bad_lines", "ingest_sources"];

/// One host's database, checked.
#[derive(Debug)]
struct HostDb {
    path: PathBuf,
    /// Its `ingest_sources.host` values, sorted; usually one.
    hosts: Vec<String>,
    /// Which log each source is: (host, dev, ino, first 64 bytes), and its path for messages.
    sources: Vec<(SourceKey, String)>,
    /// Per merged relation: whether it has `source_id` (to find each row's host).
    has_source_id: Vec<(&'static str, bool)>,
}

type SourceKey = (Option<String>, Option<i64>, Option<i64>, Option<Vec<u8>>);

/// Prints the script on standard output (a closed pipe is an error, not a panic).
pub fn run(paths: &[PathBuf]) -> Result<()> {
    use std::io::Write;
    let sql = script(paths)?;
    let mut out = std::io::stdout().lock();
    out.write_all(sql.as_bytes())
        .and_then(|()| out.flush())
        .context("fleet: cannot write the script to standard output")
}

/// The SQL of a session that queries `paths` as one: checks them all, then returns the
/// ATTACH statements and the TEMP views.
pub fn script(paths: &[PathBuf]) -> Result<String> {
    if paths.len() > MAX_HOSTS {
        return Err(UsageError(format!(
            "fleet: {} databases given; a session can attach at most {MAX_HOSTS} \
             (SQLite's default limit): query them in groups",
            paths.len()
        ))
        .into());
    }
    let mut dbs: Vec<HostDb> = Vec::with_capacity(paths.len());
    let mut files: Vec<((u64, u64), PathBuf)> = Vec::new();
    for given in paths {
        let meta = std::fs::metadata(given)
            .with_context(|| format!("fleet: cannot read {}", given.display()))?;
        let path = std::fs::canonicalize(given)
            .with_context(|| format!("fleet: cannot resolve {}", given.display()))?;
        if let Some((_, first)) = files.iter().find(|(id, _)| *id == (meta.dev(), meta.ino())) {
            bail!(
                "fleet: {} and {} are the same file: give each database once",
                first.display(),
                given.display()
            );
        }
        files.push(((meta.dev(), meta.ino()), given.clone()));
        let db = inspect(&path).with_context(|| format!("fleet: {}", given.display()))?;
        for prior in &dbs {
            if let Some((key, log)) = db
                .sources
                .iter()
                .find(|(k, _)| prior.sources.iter().any(|(p, _)| p == k))
            {
                bail!(
                    "fleet: {} and {} hold the same log ({} on host {}): one database \
                     restored or copied twice would count its rows twice; give one of them",
                    prior.path.display(),
                    path.display(),
                    log,
                    key.0.as_deref().unwrap_or("unknown")
                );
            }
            if let Some(host) = db.hosts.iter().find(|h| prior.hosts.contains(h)) {
                bail!(
                    "fleet: {} and {} both hold logs of host {host:?}: their rows could not be \
                     told apart by (host, source_id, src_offset); give one database per host \
                     (both logs of a host go into one: README \"Both logs, one database\")",
                    prior.path.display(),
                    path.display()
                );
            }
        }
        dbs.push(db);
    }
    Ok(render(&dbs))
}

/// Opens a database read-only and reads what the script needs from it.
fn inspect(path: &Path) -> Result<HostDb> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .context("cannot open it")?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .context("not a SQLite database")?;
    let has = |name: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = ?1 AND type IN ('table', 'view')",
            [name],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )
    };
    if !has("sse_lines")? || !has("ingest_sources")? {
        bail!("not an ingestor database (no sse_lines or ingest_sources table)");
    }
    if version != SCHEMA_VERSION {
        bail!(
            "schema version {version}, not {SCHEMA_VERSION}: run this build of ingestor on it \
             once (it migrates it), or use the ingestor that made it"
        );
    }
    let hosts: BTreeSet<String> = conn
        .prepare("SELECT DISTINCT coalesce(host, '') FROM ingest_sources")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let sources = conn
        .prepare("SELECT host, dev, ino, head, path FROM ingest_sources")?
        .query_map([], |r| {
            Ok(((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?), r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut has_source_id = Vec::new();
    for name in TABLES.iter().chain(VIEWS.iter()) {
        if !has(name)? {
            bail!("no {name}: not a complete ingestor database of schema version {SCHEMA_VERSION}");
        }
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = 'source_id'",
            [name],
            |r| r.get(0),
        )?;
        has_source_id.push((*name, n > 0));
    }
    Ok(HostDb {
        path: path.to_owned(),
        hosts: hosts.into_iter().collect(),
        sources,
        has_source_id,
    })
}

fn render(dbs: &[HostDb]) -> String {
    let mut sql = String::new();
    sql.push_str(
        "-- Made by `ingestor fleet`: the databases below queried as one. Run it in a session\n\
         -- (sqlite3 :memory: -cmd '.read THIS_FILE'), then query sse_lines, bad_lines,\n\
         -- ingest_sources, requests, tool_calls, sessions, usage_daily as in one database:\n\
         -- each has `host` first; a row is identified by (host, source_id, src_offset).\n",
    );
    for (i, db) in dbs.iter().enumerate() {
        let _ = writeln!(sql, "ATTACH {} AS h{};", literal(&uri(&db.path)), i + 1);
    }
    sql.push_str("CREATE TEMP VIEW fleet_hosts(schema_name, host, path) AS VALUES\n  ");
    let rows: Vec<String> = dbs
        .iter()
        .enumerate()
        .map(|(i, db)| {
            format!(
                "('h{}', {}, {})",
                i + 1,
                literal(&label(db)),
                literal(&db.path.to_string_lossy())
            )
        })
        .collect();
    sql.push_str(&rows.join(",\n  "));
    sql.push_str(";\n");
    for name in TABLES.iter().chain(VIEWS.iter()) {
        let _ = writeln!(sql, "CREATE TEMP VIEW {name} AS");
        let parts: Vec<String> = dbs
            .iter()
            .enumerate()
            .map(|(i, db)| part(name, &format!("h{}", i + 1), db))
            .collect();
        sql.push_str(&parts.join("\nUNION ALL\n"));
        sql.push_str(";\n");
    }
    sql
}

/// One database's share of a merged relation. With one host (the usual case) `host` is a
/// constant, which lets SQLite skip the other databases under `WHERE host = '…'`; a database
/// holding sources of several hosts gets each row's own from `ingest_sources`.
fn part(name: &str, schema: &str, db: &HostDb) -> String {
    let by_source = db.has_source_id.iter().any(|(n, has)| *n == name && *has);
    let constant = literal(&label(db));
    if name == "ingest_sources" {
        format!("  SELECT coalesce(host, {constant}) AS host, * FROM {schema}.ingest_sources")
    } else if db.hosts.len() > 1 && by_source {
        format!(
            "  SELECT coalesce((SELECT s.host FROM {schema}.ingest_sources s \
             WHERE s.id = r.source_id), {constant}) AS host, r.* FROM {schema}.{name} r"
        )
    } else {
        format!("  SELECT {constant} AS host, * FROM {schema}.{name}")
    }
}

/// A database's host: its sources' one host name, or several joined by commas.
fn label(db: &HostDb) -> String {
    db.hosts.join(",")
}

/// A read-only URI for ATTACH, so that querying can never write a restored copy; the path
/// is percent-encoded byte by byte where URI syntax would read it otherwise.
fn uri(path: &Path) -> String {
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out.push_str("?mode=ro");
    out
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encodes_what_uri_syntax_would_read() {
        assert_eq!(
            uri(Path::new("/a b/c?d#e%f'g.db")),
            "file:/a%20b/c%3Fd%23e%25f%27g.db?mode=ro"
        );
    }

    #[test]
    fn literal_doubles_quotes() {
        assert_eq!(literal("it's"), "'it''s'");
    }
}
