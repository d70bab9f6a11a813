//! Helpers that let integration tests read like a user's shell session (in the style of
//! ripgrep's `tests/util.rs`): a scratch directory, a builder for `ingestor` invocations, and
//! read-only views of the database a run produced; and, for tests that steer a process while it
//! runs (live mode, faults), a running `ingestor` ([`Proc`]) with helpers to grow its input and
//! wait on its database.

mod follow;
mod process;

pub use follow::*;
pub use process::*;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

/// Path of the binary under test.
pub const INGESTOR: &str = env!("CARGO_BIN_EXE_ingestor");

/// No single child process of a test may run longer than this; a hang becomes a failure.
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// A log line as `ingestor` writes it when stderr is not a terminal (as in every test):
/// `2026-11-29T18:40:02Z LEVEL message`. Returns the level and the message; `None` for a line
/// of any other shape.
pub fn log_message(line: &str) -> Option<(&str, &str)> {
    let (ts, rest) = line.split_once(' ')?;
    let (level, msg) = rest.split_once(' ')?;
    let b = ts.as_bytes();
    let digits = [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
        .into_iter()
        .all(|r| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit)));
    let shape = b.len() == 20
        && digits
        && (b[4], b[7], b[10], b[13], b[16], b[19]) == (b'-', b'-', b'T', b':', b':', b'Z');
    let known = matches!(level, "INFO" | "WARN" | "ERROR");
    (shape && known).then_some((level, msg))
}

/// A scratch directory, removed when dropped.
pub struct Dir {
    tmp: tempfile::TempDir,
}

impl Default for Dir {
    fn default() -> Self {
        Self::new()
    }
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix("ingestor-test-")
                .tempdir()
                .expect("create temp dir"),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Path of `name` inside the directory (the file need not exist).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Creates (or truncates) `name` with `bytes`.
    pub fn create(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }

    /// Appends `bytes` to `name`.
    pub fn append(&self, name: &str, bytes: impl AsRef<[u8]>) {
        let p = self.path(name);
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&p)
            .unwrap_or_else(|e| panic!("open {} for append: {e}", p.display()));
        f.write_all(bytes.as_ref()).expect("append");
    }

    /// Reads `name` whole.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let p = self.path(name);
        fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Whether `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).exists()
    }

    /// Generates as `sse-gen ARGS --out name` would (in-process) and returns the path of the
    /// generated file. Relative paths in `args` (such as `--labels`) are inside the directory.
    pub fn generate(&self, name: &str, args: &[&str]) -> PathBuf {
        let p = self.path(name);
        let args: Vec<std::ffi::OsString> = args
            .iter()
            .enumerate()
            .map(|(i, a)| match i.checked_sub(1).map(|j| args[j]) {
                Some("--labels") => self.path(a).into_os_string(),
                _ => a.into(),
            })
            .collect();
        let argv = std::iter::once("sse-gen".into())
            .chain(args.iter().cloned())
            .chain(["--out".into(), p.clone().into_os_string()]);
        if let Err(e) = sse_gen::run_cli(argv) {
            panic!("sse-gen {args:?} failed: {e:#}");
        }
        assert!(p.exists(), "sse-gen {args:?} wrote no {}", p.display());
        p
    }

    /// A fresh `ingestor` invocation whose working directory is this directory.
    pub fn command(&self) -> TestCommand {
        TestCommand::new(self.root())
    }

    /// A read-only view of the database `name`.
    pub fn db(&self, name: &str) -> Db {
        Db::new(self.path(name))
    }
}

enum Input {
    Inherit,
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Makes `cmd` run as the unprivileged user `nobody` when the tests run as root, so that file
/// permissions apply to it as they do to our users; otherwise leaves it as it is.
pub fn drop_privileges(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // SAFETY: setgid/setuid are async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Starts `cmd` with SIGHUP, SIGINT and SIGTERM at their default actions, whatever the test
/// run inherited: under `nohup` SIGHUP is ignored, in a background job of a script SIGINT is,
/// and ingestor keeps a signal ignored that it was started with ignored (as the user asked),
/// so the signal tests would fail for how the suite was started, not for what they test.
pub fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal() is async-signal-safe, as pre_exec requires; nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
}

/// Builder around one `ingestor` process.
pub struct TestCommand {
    cmd: Command,
    args: Vec<String>,
    stdin: Input,
}

impl TestCommand {
    pub fn new(cwd: &Path) -> TestCommand {
        let mut cmd = Command::new(INGESTOR);
        cmd.current_dir(cwd);
        // Keep runs independent of the caller's terminal, locale and signal dispositions.
        cmd.env_remove("RUST_BACKTRACE").env("NO_COLOR", "1");
        default_signals(&mut cmd);
        TestCommand {
            cmd,
            args: Vec::new(),
            stdin: Input::Inherit,
        }
    }

    pub fn arg(&mut self, a: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Runs the process as an unprivileged user (`nobody`) when the tests run as root, so that
    /// file permissions apply to it as they do to our users. The caller makes the directory
    /// reachable (e.g. mode 0777).
    pub fn unprivileged(&mut self) -> &mut Self {
        drop_privileges(&mut self.cmd);
        self
    }

    /// Feeds `bytes` on stdin (written from a separate thread, as a pipe).
    pub fn stdin_bytes(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Input::Bytes(bytes.into());
        self
    }

    /// Connects stdin to a file (`ingestor < file`).
    pub fn stdin_file(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.stdin = Input::File(path.into());
        self
    }

    fn describe(&self) -> String {
        format!("ingestor {}", self.args.join(" "))
    }

    /// Runs the process to completion and returns everything it produced.
    pub fn run(&mut self) -> Output {
        let feed = match std::mem::replace(&mut self.stdin, Input::Inherit) {
            Input::Inherit => {
                self.cmd.stdin(Stdio::null());
                None
            }
            Input::File(p) => {
                let f = File::open(&p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
                self.cmd.stdin(f);
                None
            }
            Input::Bytes(b) => {
                self.cmd.stdin(Stdio::piped());
                Some(b)
            }
        };
        let mut cmd = std::mem::replace(&mut self.cmd, Command::new(INGESTOR));
        let out = run_with_timeout_cmd(&mut cmd, feed, &self.describe());
        self.cmd = cmd;
        out
    }

    /// Runs and asserts success: exit 0, nothing on stdout, no panic, and on stderr exactly one
    /// summary line (nothing at all with `--quiet`). Returns stderr.
    pub fn assert_ok(&mut self) -> String {
        let quiet = self.args.iter().any(|a| a == "--quiet");
        let what = self.describe();
        let out = self.run();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "`{what}` failed ({}), stderr:\n{stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "`{what}` panicked:\n{stderr}");
        assert!(
            stdout.is_empty(),
            "`{what}` wrote to stdout:\n{}",
            crate::oracle::show_bytes(&out.stdout)
        );
        if quiet {
            assert!(
                stderr.is_empty(),
                "`{what}` (quiet) wrote to stderr:\n{stderr}"
            );
        } else {
            assert_one_line(&what, "summary", &stderr);
        }
        stderr
    }

    /// Runs and asserts a clean user error: non-zero exit, exactly one non-empty line on stderr,
    /// no panic. Returns stderr.
    pub fn assert_err(&mut self) -> String {
        let what = self.describe();
        let out = self.run();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "`{what}` succeeded but should have failed; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "`{what}` panicked:\n{stderr}"
        );
        assert_exit_not_signal(&what, out.status);
        assert_one_line(&what, "error message", &stderr);
        stderr
    }
}

fn assert_one_line(what: &str, kind: &str, stderr: &str) {
    let body = stderr.strip_suffix('\n').unwrap_or(stderr);
    assert!(
        !body.trim().is_empty(),
        "`{what}` printed no {kind} on stderr"
    );
    assert!(
        !body.contains('\n') && !body.contains('\r'),
        "`{what}` printed more than one line on stderr (expected one {kind} line):\n{stderr}"
    );
}

#[cfg(unix)]
fn assert_exit_not_signal(what: &str, status: ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    assert!(
        status.signal().is_none(),
        "`{what}` was killed by signal {:?}",
        status.signal()
    );
}

#[cfg(not(unix))]
fn assert_exit_not_signal(_what: &str, _status: ExitStatus) {}

/// Spawns `cmd`, feeds stdin, collects stdout/stderr, and kills it after [`CHILD_TIMEOUT`].
fn run_with_timeout_cmd(cmd: &mut Command, stdin: Option<Vec<u8>>, what: &str) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child: Child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{what}`: {e}"));
    let feeder = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A broken pipe is not our failure: the process may legitimately stop reading.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` still running after {CHILD_TIMEOUT:?}; killed");
        }
        thread::sleep(Duration::from_millis(5));
    };
    if let Some(f) = feeder {
        let _ = f.join();
    }
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// The decimal numbers in a summary line, thousands separators (`,` `_` `'`) removed.
pub fn numbers_in(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_digit() {
            cur.push(c);
        } else if matches!(c, ',' | '_' | '\'')
            && !cur.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
        {
            // separator inside a number
        } else if !cur.is_empty() {
            out.push(cur.parse().unwrap_or(u64::MAX));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        out.push(cur.parse().unwrap_or(u64::MAX));
    }
    out
}

/// One row of `sse_lines`, every column as SQLite returned it.
#[derive(Clone, Debug, PartialEq)]
pub struct SseRow {
    pub id: i64,
    pub source_id: Value,
    pub src_offset: Value,
    pub event: Value,
    pub t: Value,
    pub flow_id: Value,
    pub round: Value,
    pub data_count: Value,
    pub sid: Value,
    pub meta_ver: Value,
    pub meta_pid: Value,
    pub meta_cwd: Value,
    pub meta_turn_id: Value,
    pub metadata: Value,
    pub extra: Value,
    pub line: Value,
}

/// The columns of `sse_lines` in contract (physical) order.
pub const SSE_COLUMNS: [&str; 16] = [
    "id",
    "source_id",
    "src_offset",
    "event",
    "t",
    "flow_id",
    "round",
    "data_count",
    "sid",
    "meta_ver",
    "meta_pid",
    "meta_cwd",
    "meta_turn_id",
    "metadata",
    "extra",
    "line",
];

impl SseRow {
    /// All columns except `id` and `extra`, in the order of `ExpectedRow::plain_columns`.
    pub fn plain_columns(&self) -> [(&'static str, &Value); 12] {
        [
            ("event", &self.event),
            ("t", &self.t),
            ("flow_id", &self.flow_id),
            ("round", &self.round),
            ("data_count", &self.data_count),
            ("sid", &self.sid),
            ("meta_ver", &self.meta_ver),
            ("meta_pid", &self.meta_pid),
            ("meta_cwd", &self.meta_cwd),
            ("meta_turn_id", &self.meta_turn_id),
            ("metadata", &self.metadata),
            ("line", &self.line),
        ]
    }
}

/// One row of `bad_lines`.
#[derive(Clone, Debug, PartialEq)]
pub struct BadRow {
    pub id: i64,
    pub source_id: Value,
    pub src_offset: Value,
    pub reason: Value,
    pub raw: Value,
}

/// Read-only access to a database written by `ingestor`.
pub struct Db {
    pub path: PathBuf,
}

impl Db {
    pub fn new(path: PathBuf) -> Db {
        Db { path }
    }

    /// Opens the database read-only.
    pub fn open(&self) -> Connection {
        Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .unwrap_or_else(|e| panic!("open {} read-only: {e}", self.path.display()))
    }

    /// Opens the database read-write (to play a user who changes it between runs).
    pub fn open_rw(&self) -> Connection {
        Connection::open(&self.path).unwrap_or_else(|e| panic!("open {}: {e}", self.path.display()))
    }

    /// `SELECT count(*) FROM table`.
    pub fn count(&self, table: &str) -> i64 {
        self.open()
            .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })
            .unwrap_or_else(|e| panic!("count {table}: {e}"))
    }

    /// Every row of `sse_lines`, ordered by id. Checks on the way that no two rows claim the
    /// same line (`(source_id, src_offset)` identifies a line, schema.md), so that every test
    /// that reads rows checks it.
    pub fn rows(&self) -> Vec<SseRow> {
        self.assert_lines_unique();
        self.rows_where("1")
    }

    /// The rows of one source, ordered by id.
    pub fn rows_of(&self, source_id: i64) -> Vec<SseRow> {
        self.rows_where(&format!("source_id = {source_id}"))
    }

    /// No line stored twice: `(source_id, src_offset)` is unique in both tables.
    pub fn assert_lines_unique(&self) {
        let conn = self.open();
        for table in ["sse_lines", "bad_lines"] {
            let dups: i64 = conn
                .query_row(
                    &format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {table} \
                         WHERE src_offset IS NOT NULL \
                         GROUP BY source_id, src_offset HAVING count(*) > 1)"
                    ),
                    [],
                    |r| r.get(0),
                )
                .expect("count duplicated lines");
            assert_eq!(dups, 0, "{table}: (source_id, src_offset) not unique");
        }
    }

    fn rows_where(&self, filter: &str) -> Vec<SseRow> {
        let conn = self.open();
        let sql = format!(
            "SELECT {} FROM sse_lines WHERE {filter} ORDER BY id",
            SSE_COLUMNS.join(", ")
        );
        let mut stmt = conn.prepare(&sql).expect("prepare sse_lines select");
        stmt.query_map([], |r| {
            Ok(SseRow {
                id: r.get(0)?,
                source_id: r.get(1)?,
                src_offset: r.get(2)?,
                event: r.get(3)?,
                t: r.get(4)?,
                flow_id: r.get(5)?,
                round: r.get(6)?,
                data_count: r.get(7)?,
                sid: r.get(8)?,
                meta_ver: r.get(9)?,
                meta_pid: r.get(10)?,
                meta_cwd: r.get(11)?,
                meta_turn_id: r.get(12)?,
                metadata: r.get(13)?,
                extra: r.get(14)?,
                line: r.get(15)?,
            })
        })
        .expect("query sse_lines")
        .collect::<Result<_, _>>()
        .expect("read sse_lines")
    }

    /// Every row of `bad_lines`, ordered by id.
    pub fn bad_lines(&self) -> Vec<BadRow> {
        self.bad_lines_where("1")
    }

    /// The bad lines of one source, ordered by id.
    pub fn bad_lines_of(&self, source_id: i64) -> Vec<BadRow> {
        self.bad_lines_where(&format!("source_id = {source_id}"))
    }

    fn bad_lines_where(&self, filter: &str) -> Vec<BadRow> {
        let conn = self.open();
        let sql = format!(
            "SELECT id, source_id, src_offset, reason, raw FROM bad_lines WHERE {filter} \
             ORDER BY id"
        );
        let mut stmt = conn.prepare(&sql).expect("prepare bad_lines select");
        stmt.query_map([], |r| {
            Ok(BadRow {
                id: r.get(0)?,
                source_id: r.get(1)?,
                src_offset: r.get(2)?,
                reason: r.get(3)?,
                raw: r.get(4)?,
            })
        })
        .expect("query bad_lines")
        .collect::<Result<_, _>>()
        .expect("read bad_lines")
    }

    /// `PRAGMA integrity_check`, all result lines joined.
    pub fn integrity_check(&self) -> String {
        let conn = self.open();
        let mut stmt = conn.prepare("PRAGMA integrity_check").expect("prepare");
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("integrity_check")
            .collect::<Result<_, _>>()
            .expect("integrity_check rows");
        lines.join("\n")
    }

    pub fn assert_integrity(&self) {
        let r = self.integrity_check();
        assert_eq!(r, "ok", "PRAGMA integrity_check on {}", self.path.display());
    }

    /// `PRAGMA user_version`.
    pub fn user_version(&self) -> i64 {
        self.open()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("user_version")
    }

    /// `(name, table)` of every explicit index (autoindexes excluded), sorted by name.
    pub fn indexes(&self) -> Vec<(String, String)> {
        let conn = self.open();
        let mut stmt = conn
            .prepare(
                "SELECT name, tbl_name FROM sqlite_master \
                 WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
            )
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("indexes")
            .collect::<Result<_, _>>()
            .expect("index rows")
    }

    /// The column names an index covers, in order.
    pub fn index_columns(&self, index: &str) -> Vec<String> {
        let conn = self.open();
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
            .expect("prepare");
        stmt.query_map([index], |r| r.get::<_, Option<String>>(0))
            .expect("index_info")
            .map(|r| r.expect("row").unwrap_or_else(|| "<expr>".into()))
            .collect()
    }

    /// `(name, declared type)` of a table's columns in physical order.
    pub fn table_columns(&self, table: &str) -> Vec<(String, String)> {
        let conn = self.open();
        let mut stmt = conn
            .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")
            .expect("prepare");
        stmt.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("table_info")
            .collect::<Result<_, _>>()
            .expect("table_info rows")
    }

    /// Whether column `pk` of `table` is the INTEGER PRIMARY KEY (a rowid alias).
    pub fn pk_columns(&self, table: &str) -> Vec<String> {
        let conn = self.open();
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
            .expect("prepare");
        stmt.query_map([table], |r| r.get(0))
            .expect("table_info")
            .collect::<Result<_, _>>()
            .expect("pk rows")
    }
}
