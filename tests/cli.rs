//! The command line of the real `ingestor` binary: what it says about a mistake (which flag,
//! exit status 2, nothing written).

mod oracle;
mod util;

use std::process::{ExitStatus, Output};
use std::time::Duration;

use util::{DB, Dir, INPUT, ProcBuilder};

const LINE: &str = "{\"event\":\"a\"}\n";

/// How a run ended.
struct Ended {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `ingestor --input INPUT --db DB ARGS` on a one-line input, run to its end (a run that should
/// have been refused but follows fails after the patience).
fn run(dir: &Dir, args: &[&str]) -> Ended {
    dir.create(INPUT, LINE);
    let mut p = ProcBuilder::follow(dir, args)
        .patience(Duration::from_secs(20))
        .spawn();
    let status = p.wait_exit();
    Ended {
        status,
        stdout: p.stdout(),
        stderr: p.stderr(),
    }
}

impl From<Output> for Ended {
    fn from(out: Output) -> Ended {
        Ended {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Asserts a usage error: status 2 (not a signal, no panic), nothing on stdout, no database
/// created. Returns stderr.
fn assert_usage(dir: &Dir, what: &str, ended: impl Into<Ended>) -> String {
    let Ended {
        status,
        stdout,
        stderr,
    } = ended.into();
    assert_eq!(
        status.code(),
        Some(2),
        "`{what}` exited with {status}; stderr:\n{stderr}"
    );
    util::assert_no_panic(what, &stderr);
    assert!(stdout.is_empty(), "`{what}` wrote to stdout:\n{stdout}");
    assert!(!dir.exists(DB), "`{what}` created the database");
    stderr
}

// ---------------------------------------------------------------------------------------------
// Item 11: clap's own message, with its usage line

#[test]
fn missing_db_is_named_with_the_usage_line() {
    let dir = Dir::new();
    let input = dir.create(INPUT, LINE);
    let out = dir.command().arg("--input").arg(&input).run();
    let err = assert_usage(&dir, "ingestor --input F", out);
    assert!(
        err.contains("--db <PATH>"),
        "the missing --db is not named:\n{err}"
    );
    assert!(err.contains("Usage: ingestor"), "no usage line:\n{err}");
}

#[test]
fn unknown_flag_is_named_with_the_usage_line() {
    let dir = Dir::new();
    let err = assert_usage(&dir, "--no-such-flag", run(&dir, &["--no-such-flag"]));
    assert!(err.contains("'--no-such-flag'"), "not named:\n{err}");
    assert!(err.contains("Usage: ingestor"), "no usage line:\n{err}");
}
