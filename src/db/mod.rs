//! The SQLite side: opening and checking a database, the contract's schema,
//! mode settings, the index allowlist, and the stored ingest positions;
//! `migrate` upgrades older databases in place, `stmt` binds rows, and
//! [`writer`] commits batches with their sources' positions.
//!
//! May call `scan::batch` (the rows it writes), `views` (created on open),
//! `report` (progress of long steps), `sys::failpoint` and `sys::file_id`.

mod migrate;
mod stmt;
pub mod writer;

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::report::{Log, Progress};
use crate::sys::file_id::FileId;

pub use stmt::RawStmt;

/// How long to wait for another writer before giving up with an error.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `PRAGMA user_version` of the schema this build writes: 2 adds row
/// provenance (`source_id`, `src_offset`) and `ingest_sources.host`; 3 adds
/// the views of views.md (`crate::views`).
pub const SCHEMA_VERSION: i64 = 3;

/// The allowlist of schema.md: small, hot lookup columns only.
pub const INDEXES: [(&str, &str); 7] = [
    ("idx_sse_flow_id", "flow_id"),
    ("idx_sse_sid", "sid"),
    ("idx_sse_t", "t"),
    ("idx_sse_meta_pid", "meta_pid"),
    ("idx_sse_meta_cwd", "meta_cwd"),
    ("idx_sse_round", "round"),
    ("idx_sse_meta_turn_id", "meta_turn_id"),
];

/// Version 1, as the first release wrote it: what a version-1 database must
/// hold to be migrated.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS sse_lines(
    id INTEGER PRIMARY KEY,
    event TEXT,
    t TEXT,
    flow_id TEXT,
    round TEXT,
    data_count INTEGER,
    sid TEXT,
    meta_ver TEXT,
    meta_pid INTEGER,
    meta_cwd TEXT,
    meta_turn_id TEXT,
    metadata TEXT,
    extra TEXT,
    line TEXT
);
CREATE TABLE IF NOT EXISTS bad_lines(
    id INTEGER PRIMARY KEY,
    src_offset INTEGER,
    reason TEXT,
    raw BLOB
);
-- One row per input source. `offset` is the byte just past the last line
-- whose rows are committed; it is written in the same transaction as them.
CREATE TABLE IF NOT EXISTS ingest_sources(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    dev INTEGER,
    ino INTEGER,
    head BLOB,
    offset INTEGER NOT NULL,
    tail BLOB,
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')),
    updated_at TEXT
);
";

/// The current schema (schema.md): small, indexed columns first, the big
/// ones last, since SQLite reads a record's columns in order.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sse_lines(
    id INTEGER PRIMARY KEY,
    source_id INTEGER,
    src_offset INTEGER,
    event TEXT,
    t TEXT,
    flow_id TEXT,
    round TEXT,
    data_count INTEGER,
    sid TEXT,
    meta_ver TEXT,
    meta_pid INTEGER,
    meta_cwd TEXT,
    meta_turn_id TEXT,
    metadata TEXT,
    extra TEXT,
    line TEXT
);
CREATE TABLE IF NOT EXISTS bad_lines(
    id INTEGER PRIMARY KEY,
    source_id INTEGER,
    src_offset INTEGER,
    reason TEXT,
    raw BLOB
);
-- One row per input source. `offset` is the byte just past the last line
-- whose rows are committed; it is written in the same transaction as them.
CREATE TABLE IF NOT EXISTS ingest_sources(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    dev INTEGER,
    ino INTEGER,
    head BLOB,
    offset INTEGER NOT NULL,
    tail BLOB,
    started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')),
    updated_at TEXT,
    host TEXT
);
";

/// The tables a database of `version` holds (versions 2 and 3 differ only
/// by their views).
fn schema_of(version: i64) -> &'static str {
    match version {
        1 => SCHEMA_V1,
        _ => SCHEMA,
    }
}

/// A row: its source and offset, then the cells of a batch row in order.
pub const INSERT_ROW: &str = "INSERT INTO sse_lines(source_id, src_offset, event, t, flow_id, \
     round, data_count, sid, meta_ver, meta_pid, meta_cwd, meta_turn_id, metadata, extra, line) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

pub const INSERT_BAD: &str =
    "INSERT INTO bad_lines(source_id, src_offset, reason, raw) VALUES (?1, ?2, ?3, ?4)";

/// Settings that differ between a bulk backfill and live following.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub cache_mb: u64,
    pub page_size: u32,
    pub journal: Journal,
    pub synchronous: Synchronous,
}

/// How a database is journaled while this run writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// None: only for a database being built under another name, which a
    /// crash leaves as a stale build to redo.
    Off,
    /// Write-ahead log: the mode of every database published under its name,
    /// so that readers are never locked out (schema.md).
    Wal,
    /// The rollback journal: only for folding a WAL back into its database
    /// before another file is renamed over it ([`retire_wal`]).
    Delete,
}

impl Journal {
    fn pragma(self) -> &'static str {
        match self {
            Journal::Off => "OFF",
            Journal::Wal => "WAL",
            Journal::Delete => "DELETE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    Off,
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Opens (creating if needed) and checks a database, bringing its schema to
/// [`SCHEMA_VERSION`]. Nothing is written to a file that turns out not to be
/// an ingestor database of this version or older.
pub fn open(path: &Path, tuning: &Tuning, log: &Log) -> Result<Connection> {
    open_as(path, tuning, None, log)
}

/// Opens a database file this run has just made with [`create_file`]
/// (`id` is what that returned): a symbolic link at its name is refused,
/// not followed, and the file SQLite opened must be that very file.
pub fn open_created(path: &Path, tuning: &Tuning, id: FileId, log: &Log) -> Result<Connection> {
    open_as(path, tuning, Some(id), log)
}

fn open_as(path: &Path, tuning: &Tuning, created: Option<FileId>, log: &Log) -> Result<Connection> {
    let display = path.display();
    check_folder(path)?;
    // URI names are on in the bundled SQLite anyway (SQLITE_USE_URI);
    // `recreate_user_objects` attaches the old database by one.
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if created.is_some() {
        // SQLite would resolve a link planted at the name and write into its
        // target. NOFOLLOW refuses a link anywhere in the path, so the
        // caller passes a path whose folders are already resolved.
        flags |= OpenFlags::SQLITE_OPEN_NOFOLLOW;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let rusqlite::Error::SqliteFailure(f, _) = &e
            && f.extended_code == rusqlite::ffi::SQLITE_CANTOPEN_SYMLINK
        {
            anyhow::anyhow!("cannot open database {display}: it is a symbolic link, not followed")
        } else if !path.exists() && !writable(dir) {
            anyhow::anyhow!(
                "cannot create database {display}: folder {} is not writable",
                dir.display()
            )
        } else {
            let why = match &e {
                rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
                other => other.to_string(),
            };
            anyhow::anyhow!("cannot open database {display}: {why}")
        }
    })?;
    if let Some(id) = created
        && conn_file(&conn) != Some(id)
    {
        bail!(
            "cannot open database {display}: the file changed between its creation and its \
             opening (another process is using that name)"
        );
    }
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version = inspect(&conn, path)?;
    let fresh: bool = conn.query_row("SELECT count(*) = 0 FROM sqlite_schema", [], |r| r.get(0))?;
    if fresh {
        // Only takes effect before the first table exists.
        conn.pragma_update(None, "page_size", tuning.page_size)?;
    }
    apply(&conn, tuning)?;
    match version {
        0 => {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA}"))
                .and_then(|()| crate::views::create(&conn))
                .and_then(|()| {
                    conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"))
                })
                .inspect_err(|_| {
                    let _ = conn.execute_batch("ROLLBACK");
                })
                .with_context(|| format!("cannot write the schema into {display}"))?;
        }
        1 | 2 => upgrade(&conn, path, version, log)?,
        _ => {}
    }
    // A newer ingestor that changed the views re-creates them (they hold no
    // data); an older one refuses the database (its version is newer).
    if !crate::views::current(&conn)? {
        crate::views::create(&conn)
            .with_context(|| format!("cannot create the views in {display}"))?;
    }
    drop_misfit_indexes(&conn)?;
    Ok(conn)
}

/// Brings a database of an older `version` to the current one in place,
/// saying what it does and how long it took (1 → 2 rewrites the tables).
fn upgrade(conn: &Connection, path: &Path, version: i64, log: &Log) -> Result<()> {
    if version == 1 {
        migrate_v1(conn, path, log)?;
    }
    // 2 → 3: the views, created in one transaction with the new stamp.
    conn.execute_batch("BEGIN IMMEDIATE")
        .and_then(|()| {
            let now: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if now == 2 {
                crate::views::create(conn)?;
                conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
            }
            conn.execute_batch("COMMIT")
        })
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })
        .with_context(|| {
            format!(
                "cannot add the views to {} (schema version 2 to 3; it is left as it was)",
                path.display()
            )
        })?;
    if version == 2 {
        log.info(format_args!(
            "{}: schema version 2 to {SCHEMA_VERSION}: the views requests, tool_calls, \
             sessions, usage_daily added",
            path.display()
        ));
    }
    Ok(())
}

/// Migrates a version-1 database to version 2 in place: every row rewritten.
fn migrate_v1(conn: &Connection, path: &Path, log: &Log) -> Result<()> {
    log.info(format_args!(
        "{}: schema version 1; migrating it in place to version {SCHEMA_VERSION} \
         (row provenance: every row is rewritten once, then the indexes)",
        path.display()
    ));
    let mut bar: Option<Progress> = None;
    let migrated = migrate::v1_to_v2(
        conn,
        SCHEMA,
        &host_name(),
        create_indexes,
        &mut |done, total| {
            bar.get_or_insert_with(|| log.counter(total, "rows"))
                .set(done)
        },
    )
    .with_context(|| {
        format!(
            "cannot migrate {} to schema version {SCHEMA_VERSION} (it is left as it was)",
            path.display()
        )
    })?;
    if let Some(bar) = bar {
        bar.finish();
    }
    if migrated.to > migrated.from {
        log.info(format_args!(
            "{}: migrated from schema version {} to {SCHEMA_VERSION}: {} rows and {} bad \
             lines rewritten, indexes rebuilt, views added, in {:.2} s",
            path.display(),
            migrated.from,
            migrated.rows,
            migrated.bad,
            migrated.took.as_secs_f64()
        ));
    }
    Ok(())
}

/// This machine's name, recorded with each source (`ingest_sources.host`).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// Fails with a clear line when the database's folder does not exist
/// (SQLite would only say "unable to open database file").
pub fn check_folder(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!(
            "cannot create database {}: folder {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The file a connection has open, by the path SQLite resolved.
fn conn_file(conn: &Connection) -> Option<FileId> {
    let path = conn.path().filter(|p| !p.is_empty())?;
    FileId::at(Path::new(path)).ok()
}

/// Creates an empty file for a database (or a file beside one) with `mode`
/// (the umask narrows it further): never through a symbolic link and never
/// over an existing file, so a name planted in a shared folder cannot make
/// the run write into a file it does not own. SQLite gives the database's
/// `-wal`, `-shm` and `-journal` the database file's permission bits
/// (`findCreateFileMode` in os_unix.c), so they follow this mode too.
pub fn create_file(path: &Path, mode: u32) -> io::Result<FileId> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // Closed before SQLite opens it: closing a second descriptor of a file
    // would drop the POSIX locks SQLite holds on it.
    FileId::of_file(&file)
}

/// Why a database's tables are not ones ingestor made.
#[derive(Debug)]
pub enum NotOurs {
    /// A file without ingestor's version stamp already has an object named
    /// like one of the contract's tables.
    Unstamped {
        kind: String,
        name: String,
    },
    /// A contract table is something else than ingestor's table.
    Different {
        table: &'static str,
        found: String,
        ours: String,
    },
    Missing {
        table: &'static str,
        version: i64,
    },
}

impl std::fmt::Display for NotOurs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotOurs::Unstamped { kind, name } => write!(
                f,
                "has a {kind} named {name} that ingestor did not create (no ingestor schema \
                 version)"
            ),
            NotOurs::Different { table, found, ours } => write!(
                f,
                "has a table {table} that ingestor did not create: {found} instead of ingestor's \
                 columns ({ours})"
            ),
            NotOurs::Missing { table, version } => write!(
                f,
                "has ingestor's schema version {version} but no table {table}"
            ),
        }
    }
}

/// A database that is not ingestor's, refused before anything is written.
#[derive(Debug)]
pub struct Refused {
    path: std::path::PathBuf,
    why: NotOurs,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: refusing to write into it (give --db another file)",
            self.path.display(),
            self.why
        )
    }
}

impl std::error::Error for Refused {}

/// The tables of the contract, in the order SCHEMA creates them.
const CONTRACT_TABLES: [&str; 3] = ["sse_lines", "bad_lines", "ingest_sources"];

/// Reads the schema version and checks, before anything is written, that the
/// file is an ingestor database this build can write: not newer, and its
/// contract tables (if any) made by ingestor.
fn inspect(conn: &Connection, path: &Path) -> Result<i64> {
    let display = path.display();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase) => {
                anyhow::anyhow!("{display} is not a SQLite database")
            }
            Some(rusqlite::ErrorCode::DatabaseBusy) => anyhow::anyhow!(
                "{display} is locked by another process (waited {} s)",
                BUSY_TIMEOUT.as_secs()
            ),
            _ if moved(&e) => moved_error(&display),
            _ => anyhow::Error::new(e).context(format!("cannot read database {display}")),
        })?;
    if version > SCHEMA_VERSION {
        bail!(
            "{display} has schema version {version}, newer than this ingestor's \
             {SCHEMA_VERSION}: upgrade ingestor"
        );
    }
    if let Some(why) = not_ours(conn, version)? {
        return Err(Refused {
            path: path.to_owned(),
            why,
        }
        .into());
    }
    Ok(version)
}

/// Whether the contract's tables in `conn` are ingestor's own: none at all
/// before the version stamp, exactly ours after it.
fn not_ours(conn: &Connection, version: i64) -> Result<Option<NotOurs>> {
    let object = |name: &str| -> rusqlite::Result<Option<(String, String)>> {
        conn.query_row(
            "SELECT type, name FROM sqlite_schema WHERE lower(name) = ?1 LIMIT 1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
    };
    if version == 0 {
        for table in CONTRACT_TABLES {
            if let Some((kind, name)) = object(table)? {
                return Ok(Some(NotOurs::Unstamped { kind, name }));
            }
        }
        return Ok(None);
    }
    let reference = Connection::open_in_memory()?;
    reference.execute_batch(schema_of(version))?;
    for table in CONTRACT_TABLES {
        match object(table)? {
            None => return Ok(Some(NotOurs::Missing { table, version })),
            Some((kind, _)) if kind != "table" => {
                return Ok(Some(NotOurs::Different {
                    table,
                    found: format!("a {kind}"),
                    ours: columns(&reference, table)?.join(", "),
                }));
            }
            Some(_) => {}
        }
        let (found, ours) = (columns(conn, table)?, columns(&reference, table)?);
        if found != ours {
            return Ok(Some(NotOurs::Different {
                table,
                found: format!("columns ({})", found.join(", ")),
                ours: ours.join(", "),
            }));
        }
    }
    Ok(None)
}

/// A table's columns as declared: name, type, constraints, in order.
fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare(
        "SELECT name, type, \"notnull\", dflt_value, pk, hidden \
         FROM pragma_table_xinfo(?1, 'main') ORDER BY cid",
    )?
    .query_map([table], |r| {
        let mut col = format!("{} {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?);
        if r.get::<_, bool>(2)? {
            col.push_str(" NOT NULL");
        }
        if let Some(d) = r.get::<_, Option<String>>(3)? {
            col.push_str(" DEFAULT ");
            col.push_str(&d);
        }
        if r.get::<_, i64>(4)? > 0 {
            col.push_str(" PRIMARY KEY");
        }
        if r.get::<_, i64>(5)? != 0 {
            col.push_str(" HIDDEN");
        }
        Ok(col.trim_end().to_owned())
    })?
    .collect()
}

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// Applies a mode's settings; safe to call again to switch modes.
pub fn apply(conn: &Connection, t: &Tuning) -> Result<()> {
    set_journal_mode(conn, t.journal)?;
    conn.pragma_update(None, "synchronous", t.synchronous.pragma())?;
    conn.pragma_update(None, "cache_size", -((t.cache_mb * 1024) as i64))?;
    conn.pragma_update(None, "temp_store", "FILE")?;
    // On Apple systems fsync() only hands the data to the drive, whose cache
    // a power loss may lose; F_FULLFSYNC flushes it. The journaled settings
    // are the ones the README promises power-loss safety for. SQLite falls
    // back to fsync() where a volume refuses F_FULLFSYNC.
    #[cfg(target_vendor = "apple")]
    if t.synchronous != Synchronous::Off {
        conn.pragma_update(None, "fullfsync", true)?;
        conn.pragma_update(None, "checkpoint_fullfsync", true)?;
    }
    if t.journal == Journal::Wal {
        // The WAL file keeps its size when the WAL starts over: writing over
        // pages the file already has costs less than growing it again (the
        // file system allocates blocks, the kernel fresh cache pages): a 16 MiB
        // limit cost more CPU per line appended live (the dated runs are in
        // docs/performance.md). Live mode truncates the WAL when it rests
        // (`live::release`).
        conn.pragma_update(None, "journal_size_limit", -1)?;
    }
    Ok(())
}

/// Sets the journal mode. Changing it to or from WAL needs the database to
/// itself, and SQLite refuses at once rather than waiting through the busy
/// timeout: retry for as long as the busy timeout would have waited.
fn set_journal_mode(conn: &Connection, journal: Journal) -> Result<()> {
    let mode = journal.pragma();
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", mode, |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                if started.elapsed() >= BUSY_TIMEOUT {
                    bail!(
                        "{} is in use by another process: cannot switch it to {mode} journal mode \
                         (waited {} s)",
                        conn.path().unwrap_or("the database"),
                        BUSY_TIMEOUT.as_secs()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Puts a database built under another name into WAL mode before it is
/// published under its own: from then on it stays in WAL, whoever writes it,
/// so that readers are never locked out (schema.md).
pub fn prepare_to_publish(conn: &Connection) -> Result<()> {
    set_journal_mode(conn, Journal::Wal)
}

/// Drops every `idx_sse_*` index that is not exactly one of the allowlist
/// (a large TEXT index would cripple every insert, and a unique or partial
/// one would change what the contract's name promises); the allowlisted ones
/// are then built right by [`create_indexes`]. Other indexes are the user's.
fn drop_misfit_indexes(conn: &Connection) -> Result<()> {
    let found: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, tbl_name FROM sqlite_schema \
             WHERE type = 'index' AND name LIKE 'idx\\_sse\\_%' ESCAPE '\\'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, table) in found {
        let fits = match INDEXES.iter().find(|(n, _)| *n == name) {
            Some((_, column)) => table == "sse_lines" && plain_index_on(conn, &name, column)?,
            None => false,
        };
        if !fits {
            conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        }
    }
    Ok(())
}

/// Whether index `name` of `sse_lines` is what the allowlist means: one key,
/// the column itself (no expression), ascending, binary collation, neither
/// unique nor partial.
fn plain_index_on(conn: &Connection, name: &str, column: &str) -> Result<bool> {
    let (unique, partial): (bool, bool) = conn.query_row(
        "SELECT \"unique\", partial FROM pragma_index_list('sse_lines') WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if unique || partial {
        return Ok(false);
    }
    let keys: Vec<(Option<String>, bool, Option<String>)> = conn
        .prepare(
            "SELECT name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key ORDER BY seqno",
        )?
        .query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(matches!(
        keys.as_slice(),
        [(Some(col), false, Some(coll))] if col == column && coll.eq_ignore_ascii_case("BINARY")
    ))
}

/// Whether the allowlisted indexes exist (a completed earlier run built them).
pub fn has_indexes(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE 'idx\\_sse\\_%' ESCAPE '\\'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// Builds the allowlisted indexes that are missing.
///
/// CREATE INDEX sorts its keys in runs of `cache_size` bytes: a 1 MiB cache
/// keeps the runs in the CPU caches. Sorter helper threads sort while the
/// main thread scans, which pays only with a free core: they take a third of
/// the work off the main thread but add a third more in all, so on one core
/// they are slower than none (docs/scanner.md, "The index phase"). The
/// caller's cache is restored.
pub fn create_indexes(conn: &Connection) -> Result<()> {
    let cache: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    let threads = sorter_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -1024; PRAGMA threads = {threads}"
    ))?;
    let built = INDEXES.iter().try_for_each(|(name, column)| {
        conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {name} ON sse_lines({column})"
        ))
        .map_err(|e| write_error(conn, e))
    });
    conn.execute_batch(&format!("PRAGMA cache_size = {cache}; PRAGMA threads = 0"))?;
    Ok(built?)
}

/// `PRAGMA threads` (helper threads allowed) for the index build with `cores`
/// cores available (machine, CPU affinity or cgroup quota): none on one.
fn sorter_threads(cores: usize) -> usize {
    if cores >= 2 { 2 } else { 0 }
}

/// Whether SQLite found the database file unlinked or renamed since it was
/// opened (in rollback mode it says so; in WAL mode its `fstat` of the file
/// fails).
fn moved(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED
            || f.extended_code == rusqlite::ffi::SQLITE_IOERR_FSTAT)
}

fn moved_error(path: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(moved_message(path))
}

fn moved_message(path: impl std::fmt::Display) -> String {
    format!(
        "database {path} was removed or replaced while ingestor was writing to it; \
         stopping (run again to rebuild it from the sources)"
    )
}

/// A write to the database that failed, told in one line.
#[derive(Debug)]
pub enum WriteError {
    /// No space (or quota) left, or an I/O error from the disk: it may go
    /// away by itself, and live mode waits and retries.
    Transient(String),
    /// Anything else: a broken or replaced database, or a bug.
    Fatal(String),
}

impl WriteError {
    pub fn is_transient(&self) -> bool {
        matches!(self, WriteError::Transient(_))
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::Transient(msg) | WriteError::Fatal(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for WriteError {}

/// What a failure to read a database that was opened read-only means to the
/// user who named it (`ingestor status`, `ingestor report`).
pub fn read_error(path: &Path, e: rusqlite::Error) -> anyhow::Error {
    let display = path.display();
    match (&e, e.sqlite_error_code()) {
        (_, Some(rusqlite::ErrorCode::NotADatabase)) => {
            anyhow::anyhow!("{display} is not a SQLite database")
        }
        // A reader of a WAL database needs its `-shm` file, which only a writer
        // of the folder can create (once a writer has run, it is there).
        (rusqlite::Error::SqliteFailure(f, _), _)
            if f.extended_code == rusqlite::ffi::SQLITE_READONLY_DIRECTORY
                || f.extended_code == rusqlite::ffi::SQLITE_READONLY_CANTINIT =>
        {
            anyhow::anyhow!(
                "cannot read database {display}: it is in WAL mode and its folder is not \
                 writable, so SQLite cannot create {display}-shm beside it"
            )
        }
        _ => anyhow::Error::new(e).context(format!("cannot read database {display}")),
    }
}

/// Describes a failed write on `conn`: SQLite's own text for a full disk or
/// an I/O error says neither which file nor why, so name the database and
/// add the operating system's reason (e.g. "File too large" at a size limit).
pub fn write_error(conn: &Connection, e: rusqlite::Error) -> WriteError {
    let path = conn.path().unwrap_or("(in memory)");
    let code = e.sqlite_error_code();
    if moved(&e) {
        return WriteError::Fatal(moved_message(path));
    }
    let what = match (code, &e) {
        (Some(rusqlite::ErrorCode::DiskFull), _) => "no space left on its disk".to_owned(),
        (Some(rusqlite::ErrorCode::SystemIoFailure), rusqlite::Error::SqliteFailure(_, msg)) => {
            // SAFETY: the handle is valid while `conn` lives; the call only
            // reads the connection's last error number.
            let errno = unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) };
            let msg = msg.as_deref().unwrap_or("disk I/O error");
            if errno == 0 {
                msg.to_owned()
            } else {
                format!("{msg} ({})", std::io::Error::from_raw_os_error(errno))
            }
        }
        (_, rusqlite::Error::SqliteFailure(_, Some(msg))) => msg.clone(),
        _ => e.to_string(),
    };
    let message = format!("cannot write to database {path}: {what}");
    match code {
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
            WriteError::Transient(message)
        }
        _ => WriteError::Fatal(message),
    }
}

/// The database file as opened, by its path, to notice it being removed or
/// replaced while rows are written: they would go to a file no one can see
/// any more.
pub struct DbFile {
    path: std::path::PathBuf,
    id: FileId,
}

impl DbFile {
    /// The file `conn` has open, by its path; `None` in memory. A path that
    /// no longer names a file was removed already: that is the error.
    pub fn of(conn: &Connection) -> Result<Option<DbFile>> {
        let Some(path) = conn.path().filter(|p| !p.is_empty()).map(Path::new) else {
            return Ok(None);
        };
        let id = FileId::at(path).map_err(|_| moved_error(path.display()))?;
        Ok(Some(DbFile {
            path: path.to_owned(),
            id,
        }))
    }

    /// Fails when the path no longer names the file opened.
    pub fn check(&self) -> Result<()> {
        match FileId::at(&self.path) {
            Ok(id) if id == self.id => Ok(()),
            _ => Err(moved_error(self.path.display())),
        }
    }
}

/// A source's stored identity and position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceRow {
    pub id: i64,
    pub path: String,
    /// The file it was read from; `None` for a pipe.
    pub file: Option<FileId>,
    pub head: Vec<u8>,
    pub offset: u64,
    pub tail: Vec<u8>,
}

/// The most recent source recorded under `path`.
pub fn last_source(conn: &Connection, path: &str) -> Result<Option<SourceRow>> {
    Ok(conn
        .query_row(
            "SELECT id, path, dev, ino, head, offset, tail FROM ingest_sources \
             WHERE path = ?1 ORDER BY id DESC LIMIT 1",
            [path],
            |r| {
                Ok(SourceRow {
                    id: r.get(0)?,
                    path: r.get(1)?,
                    file: FileId::from_columns(r.get(2)?, r.get(3)?),
                    head: r.get::<_, Option<Vec<u8>>>(4)?.unwrap_or_default(),
                    offset: r.get::<_, i64>(5)? as u64,
                    tail: r.get::<_, Option<Vec<u8>>>(6)?.unwrap_or_default(),
                })
            },
        )
        .optional()?)
}

/// Records a new source starting at `offset`, read on this machine; returns
/// its id.
pub fn insert_source(conn: &Connection, s: &SourceRow) -> rusqlite::Result<i64> {
    let (dev, ino) = s.file.map(FileId::columns).unzip();
    conn.execute(
        "INSERT INTO ingest_sources(path, host, dev, ino, head, offset, tail, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, strftime('%Y-%m-%dT%H:%M:%fZ'))",
        params![
            s.path,
            host_name(),
            dev,
            ino,
            s.head,
            s.offset as i64,
            s.tail
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Moves a source's committed position; call inside the transaction that
/// holds the rows up to `offset`. `head`, the source's first bytes as read
/// (empty when unknown), replaces a shorter stored head it begins with: a
/// source recorded while its file was empty or shorter than its fingerprint
/// (just after a copy-truncate) has an empty or short head, and without one
/// no copy of the file can be recognised after a restart.
pub fn save_position(
    conn: &Connection,
    id: i64,
    offset: u64,
    tail: &[u8],
    head: &[u8],
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE ingest_sources SET offset = ?2, tail = ?3, \
         head = CASE WHEN length(?4) > length(coalesce(head, x'')) \
                      AND substr(?4, 1, length(coalesce(head, x''))) = coalesce(head, x'') \
                     THEN ?4 ELSE head END, \
         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ') WHERE id = ?1",
    )?
    .execute(params![id, offset as i64, tail, head])?;
    Ok(())
}

/// Folds a database's WAL back into it and leaves it in rollback mode, so that
/// renaming another file over it cannot pair the new file with a stale WAL.
pub fn retire_wal(path: &Path) -> Result<()> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if !Path::new(&wal).exists() {
        return Ok(());
    }
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    set_journal_mode(&conn, Journal::Delete)?;
    Ok(())
}

/// Who may run the checkpoints that wait for readers (`--checkpoint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Checkpoint {
    /// SQLite's automatic (passive) checkpoints, plus a RESTART when the WAL passes 64 MiB
    /// and a TRUNCATE once live mode rests: the WAL stays small under readers that never
    /// pause.
    #[default]
    Auto,
    /// Only SQLite's automatic checkpoints, which never wait: for a database replicated by
    /// Litestream, which checkpoints itself and takes a full snapshot again when another
    /// process restarts the WAL under it; its read transaction also makes every RESTART or
    /// TRUNCATE wait its 100 ms for nothing (docs/fleet.md).
    Passive,
}

/// Folds the WAL back into the database and truncates it once live mode rests: a burst's
/// big transactions grew it, and at rest no commit would trigger a checkpoint. A reader
/// holding a snapshot only makes this partial (and the truncation waits for the next rest).
/// Not under `--checkpoint passive`.
pub fn rest_wal(conn: &Connection, policy: Checkpoint) {
    if policy == Checkpoint::Passive {
        return;
    }
    checkpoint_waiting_briefly(conn, "TRUNCATE");
}

/// Keeps the WAL from growing without bound under readers that never pause.
///
/// An automatic checkpoint copies back only frames no reader still needs,
/// and the WAL restarts from its beginning only once no reader uses it; with
/// a reader always in some query (a sqlite3 shell counting rows every 100 ms
/// in the 3M+3M test) the WAL grew by gigabytes (docs/performance.md). A
/// RESTART checkpoint waits for the readers of old frames to finish, so the
/// next commit starts the WAL over (journal_size_limit then truncates the
/// file).
pub fn restrain_wal(conn: &Connection, limit: u64, policy: Checkpoint) -> Result<()> {
    let Some(path) = conn
        .path()
        .filter(|p| !p.is_empty() && policy == Checkpoint::Auto)
    else {
        return Ok(());
    };
    let size = std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
    if size <= limit {
        return Ok(());
    }
    checkpoint_waiting_briefly(conn, "RESTART");
    Ok(())
}

/// How long the checkpoints that wait for readers (RESTART, TRUNCATE) may wait: nothing is
/// written meanwhile, and a reader may hold its snapshot for as long as it likes (a database
/// browser with a transaction open, Litestream), so the wait must not be the busy timeout's
/// 10 s (tests/live.rs `a_reader_holding_a_snapshot_does_not_hold_up_live_mode`).
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs `PRAGMA wal_checkpoint(MODE)`, waiting at most [`CHECKPOINT_WAIT`] for readers and
/// writers. Busy is the expected answer while a reader holds old frames; what could be copied
/// back has been, and the caller tries again at its next occasion.
fn checkpoint_waiting_briefly(conn: &Connection, mode: &str) {
    if conn.busy_timeout(CHECKPOINT_WAIT).is_err() {
        return;
    }
    let _ = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
    // Setting a busy timeout only stores it (sqlite3_busy_timeout cannot fail on an open
    // connection); the caller's statements wait as before.
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
}

/// Objects a user added to an ingestor database (their own tables with
/// their rows, views, triggers, and indexes other than `idx_sse_*`), to be
/// carried over into a `--from-scratch` rebuild of it.
#[derive(Debug, Default)]
pub struct UserObjects {
    objects: Vec<UserObject>,
}

#[derive(Debug)]
struct UserObject {
    kind: Kind,
    name: String,
    sql: String,
}

/// In the order they are re-created: a table before its indexes and the
/// views and triggers that use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Table,
    Index,
    View,
    Trigger,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Index => "index",
            Kind::View => "view",
            Kind::Trigger => "trigger",
        }
    }
}

impl UserObjects {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// Checks that the database at `path` is one ingestor may rebuild (as
/// [`open`] would, without writing anything) and lists what the user added
/// to it. Refuses, naming them, objects that a rebuild could not re-create
/// with their contents (virtual tables, such as FTS indexes).
pub fn user_objects(path: &Path) -> Result<UserObjects> {
    let display = path.display();
    // Read and write, though it only reads: a read-only connection to a
    // database in WAL mode leaves the -wal and -shm files it had to create,
    // where the last read-write connection to close removes them.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open database {display}"))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    inspect(&conn, path)?;
    let all: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY rowid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let ours = |name: &str| CONTRACT_TABLES.iter().any(|t| t.eq_ignore_ascii_case(name));
    let mut kept = UserObjects::default();
    let mut lost = Vec::new();
    for (kind, name, sql) in all {
        // Automatic indexes have no SQL; sqlite_* are SQLite's own
        // (AUTOINCREMENT counters are carried with their tables).
        let Some(sql) = sql else { continue };
        if name.to_ascii_lowercase().starts_with("sqlite_") {
            continue;
        }
        let kind = match kind.as_str() {
            "table" if ours(&name) => continue,
            "table" => Kind::Table,
            // Ours, or not allowlisted and dropped by every run (schema.md).
            "index" if name.to_ascii_lowercase().starts_with("idx_sse_") => continue,
            "index" => Kind::Index,
            // The views of views.md are ingestor's own, made again by every open.
            "view"
                if crate::views::VIEWS
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(&name)) =>
            {
                continue;
            }
            "view" => Kind::View,
            "trigger" => Kind::Trigger,
            _ => continue,
        };
        if kind == Kind::Table
            && sql
                .trim_start()
                .to_ascii_uppercase()
                .starts_with("CREATE VIRTUAL")
        {
            lost.push(name);
            continue;
        }
        kept.objects.push(UserObject { kind, name, sql });
    }
    if !lost.is_empty() {
        bail!(
            "--from-scratch would lose virtual table {} of {display}, which a rebuild cannot \
             re-create with its contents; nothing was changed (drop it first, or run without \
             --from-scratch)",
            lost.join(", ")
        );
    }
    kept.objects.sort_by_key(|o| o.kind);
    Ok(kept)
}

/// Re-creates `objects` (listed by [`user_objects`] from the database at
/// `old`) in `conn`, the rebuilt database, with the user's tables' rows,
/// row ids and AUTOINCREMENT counters. Run after the load, so the user's
/// triggers do not fire again for the rebuilt rows (their effects are in
/// the tables copied).
pub fn recreate_user_objects(conn: &Connection, old: &Path, objects: &UserObjects) -> Result<()> {
    if objects.is_empty() {
        return Ok(());
    }
    // The rows are copied as they were, references included.
    let fk: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    conn.execute("ATTACH DATABASE ?1 AS ingestor_old", [read_only_uri(old)?])
        .with_context(|| format!("cannot read the old database {}", old.display()))?;
    let copied = copy_objects(conn, objects);
    if copied.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let detached = conn.execute_batch("DETACH DATABASE ingestor_old");
    conn.pragma_update(None, "foreign_keys", fk)?;
    copied?;
    detached?;
    Ok(())
}

fn copy_objects(conn: &Connection, objects: &UserObjects) -> Result<()> {
    conn.execute_batch("BEGIN")?;
    for o in &objects.objects {
        let what = || {
            format!(
                "cannot carry {} {} of the old database into the rebuilt one; the old \
                 database is left as it was",
                o.kind.name(),
                o.name
            )
        };
        conn.execute_batch(&o.sql).with_context(what)?;
        if o.kind == Kind::Table {
            copy_rows(conn, &o.name).with_context(what)?;
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

fn copy_rows(conn: &Connection, table: &str) -> rusqlite::Result<()> {
    let quoted = quote(table);
    // Generated columns are computed, not inserted.
    let cols: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_xinfo(?1, 'ingestor_old') WHERE hidden = 0")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut list: Vec<String> = cols.iter().map(|c| quote(c)).collect();
    // Row ids are kept too, as the user may refer to them: under a name no
    // column takes, unless the table has none (WITHOUT ROWID).
    let rowid = ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|r| !cols.iter().any(|c| c.eq_ignore_ascii_case(r)));
    if let Some(r) = rowid
        && conn
            .prepare(&format!("SELECT {r} FROM ingestor_old.{quoted} LIMIT 0"))
            .is_ok()
    {
        list.insert(0, r.to_owned());
    }
    let list = list.join(", ");
    conn.execute_batch(&format!(
        "INSERT INTO main.{quoted}({list}) SELECT {list} FROM ingestor_old.{quoted}"
    ))?;
    let counters = "SELECT 1 FROM {db}.sqlite_schema WHERE name = 'sqlite_sequence'";
    let has = |db: &str| -> rusqlite::Result<bool> {
        conn.query_row(&counters.replace("{db}", db), [], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    };
    if has("main")? && has("ingestor_old")? {
        conn.execute("DELETE FROM main.sqlite_sequence WHERE name = ?1", [table])?;
        conn.execute(
            "INSERT INTO main.sqlite_sequence(name, seq) \
             SELECT name, seq FROM ingestor_old.sqlite_sequence WHERE name = ?1",
            [table],
        )?;
    }
    Ok(())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `file:` URI opening `path` read-only, so that reading the old database
/// through ATTACH can never write to it.
fn read_only_uri(path: &Path) -> Result<String> {
    let abs = std::path::absolute(path)?;
    let mut uri = String::from("file:");
    for &b in abs.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?mode=ro");
    Ok(uri)
}
