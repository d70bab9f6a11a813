//! The command line of the real `ingestor` binary: what it says about a mistake (which flag,
//! which range, exit status 2, nothing written), what `--help` states, and the flags the
//! hand-over to live mode passes to the re-executed process.

use crate::util;

use std::process::{ExitStatus, Output};
use std::time::Duration;

use crate::util::{DB, Dir, INPUT, ProcBuilder, wait_counts};

const LINE: &str = "{\"event\":\"a\"}\n";

/// How a run ended.
struct Ended {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `ingestor --input INPUT --db DB ARGS` on a one-line input, run to its end. A run that should
/// have been refused may follow forever (`--no-exec-live`): it fails after the patience.
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

/// Asserts that `err` is one line naming `flag` and `range`.
fn assert_one_line_naming(what: &str, err: &str, flag: &str, range: &str) {
    let body = err.strip_suffix('\n').unwrap_or(err);
    assert!(
        !body.is_empty() && !body.contains('\n'),
        "`{what}`: expected one line on stderr:\n{err}"
    );
    assert!(
        body.contains(flag) && body.contains(range),
        "`{what}`: the error does not name {flag} and {range}: {body}"
    );
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

#[test]
fn conflicting_flags_are_named() {
    let dir = Dir::new();
    for pair in [
        ["--start-offset=0", "--from-scratch"],
        ["--start-at-end", "--from-scratch"],
        // Live mode writes into the database in place: a rebuild from the start would add the
        // input a second time.
        ["--no-exec-live", "--from-scratch"],
    ] {
        let what = pair.join(" ");
        let err = assert_usage(&dir, &what, run(&dir, &pair));
        let flag = |f: &str| f.split('=').next().unwrap().to_owned();
        assert!(
            err.contains(&flag(pair[0])) && err.contains(&flag(pair[1])),
            "`{what}`: both flags should be named:\n{err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Item 12: values out of range are refused, in one line naming the flag and the range

#[test]
fn out_of_range_values_are_refused() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "--historical-cache-mb",
            &["0", "-1", "65537", "nan", "lots"],
            "1 to 65536 MiB",
        ),
        (
            "--batch-rows",
            &["0", "-5", "10000001", "inf", "abc"],
            "1 to 10000000 lines",
        ),
        (
            "--live-cache-mb",
            &["0", "-1", "4097", "nan"],
            "1 to 4096 MiB",
        ),
        (
            "--rss-budget-mb",
            &["0", "1", "7", "-1", "65537", "inf"],
            "8 to 65536 MiB",
        ),
        (
            "--idle-secs",
            &["nan", "inf", "-inf", "-1", "0", "0.001", "86401", "1e999"],
            "0.01 to 86400 seconds",
        ),
        (
            "--start-offset",
            &["-1", "9223372036854775808", "nan"],
            "0 to 9223372036854775807 bytes",
        ),
        (
            "--max-line-bytes",
            &["0", "1", "-1", "998951425", "ten"],
            "2 to 998951424 bytes",
        ),
    ];
    let dir = Dir::new();
    for (flag, values, range) in cases {
        for value in *values {
            // Both spellings: a negative number after a space must reach the range check too
            // (`-inf` is not one: clap takes it for a flag).
            let mut spellings = vec![vec![format!("{flag}={value}")]];
            if *value != "-inf" {
                spellings.push(vec![flag.to_string(), value.to_string()]);
            }
            for args in spellings {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let what = args.join(" ");
                let err = assert_usage(&dir, &what, run(&dir, &args));
                assert_one_line_naming(&what, &err, flag, range);
            }
        }
    }
}

#[test]
fn the_rss_budget_must_hold_the_live_cache() {
    let dir = Dir::new();
    let args = ["--rss-budget-mb", "8", "--live-cache-mb", "3"];
    let what = args.join(" ");
    let err = assert_usage(&dir, &what, run(&dir, &args));
    assert_one_line_naming(&what, &err, "--rss-budget-mb 8", "--live-cache-mb 3");
}

#[test]
fn offsets_on_standard_input_are_a_usage_error() {
    let dir = Dir::new();
    for args in [
        &["--start-offset", "0"][..],
        &["--start-at-end"],
        &["--input", "-", "--start-offset", "0"],
    ] {
        let what = args.join(" ");
        let out = dir
            .command()
            .arg("--db")
            .arg(dir.path(DB))
            .args(args)
            .stdin_bytes(LINE)
            .run();
        let err = assert_usage(&dir, &what, out);
        let flag = args.iter().find(|a| a.starts_with("--start")).unwrap();
        assert_one_line_naming(&what, &err, flag, "--input FILE");
    }
}

#[test]
fn values_at_the_edges_are_accepted() {
    let dir = Dir::new();
    let out = run(
        &dir,
        &[
            "--historical-cache-mb=1",
            "--batch-rows=1",
            "--live-cache-mb=2",
            "--rss-budget-mb=8",
            "--idle-secs=0.01",
            "--max-line-bytes=2",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    // `{"event":"a"}` is longer than 2 bytes: a bad line.
    assert_eq!(dir.db(DB).count("bad_lines"), 1);
}

// ---------------------------------------------------------------------------------------------
// --help: every numeric flag with its unit and range; item 14: MiB

#[test]
fn help_states_units_and_ranges() {
    let dir = Dir::new();
    for flag in ["--help", "-h"] {
        let out = dir.command().arg(flag).run();
        let help = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "`ingestor {flag}` failed");
        assert!(out.stderr.is_empty(), "`ingestor {flag}` wrote to stderr");
        // One flag's help as printed, wrapped lines joined: from its name to the next line that
        // starts a flag (help text is indented further than any flag).
        let help_of = |name: &str| -> String {
            let mut lines = help
                .lines()
                .skip_while(|l| !l.contains(&format!("{name} <")));
            let first = lines
                .next()
                .unwrap_or_else(|| panic!("`ingestor {flag}` lacks {name}:\n{help}"));
            let starts_flag = |l: &&str| {
                let body = l.trim_start();
                body.starts_with('-') && l.len() - body.len() <= 6
            };
            std::iter::once(first)
                .chain(lines.take_while(|l| !starts_flag(l)))
                .flat_map(str::split_whitespace)
                .collect::<Vec<_>>()
                .join(" ")
        };
        for (name, unit, range) in [
            ("--historical-cache-mb", "MiB", "1 to 65536"),
            ("--batch-rows", "Lines", "1 to 10000000"),
            ("--start-offset", "bytes", "0 to 9223372036854775807"),
            ("--live-cache-mb", "MiB", "1 to 4096"),
            ("--rss-budget-mb", "MiB", "8 to 65536"),
            ("--idle-secs", "Seconds", "0.01 to 86400"),
        ] {
            let text = help_of(name);
            assert!(
                text.contains(unit) && text.contains(range),
                "`ingestor {flag}`: {name} does not state {unit} and {range}: {text}"
            );
        }
        assert!(!help.contains(" MB"), "`ingestor {flag}` says MB:\n{help}");
    }
}

// ---------------------------------------------------------------------------------------------
// The hand-over: the re-executed process gets the same (valid) settings

/// The arguments of `p` as `/proc` shows them, one per element.
#[cfg(target_os = "linux")]
fn argv_of(p: &util::Proc) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{}/cmdline", p.pid)).expect("cmdline");
    raw.split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The value of `--name` in `argv`, given as `--name=V` or `--name V`.
#[cfg(target_os = "linux")]
fn value_of<'a>(argv: &'a [String], name: &str) -> Option<&'a str> {
    let attached = format!("{name}=");
    argv.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix(&attached) {
            Some(value) => Some(value),
            None if a == name => argv.get(i + 1).map(String::as_str),
            None => None,
        })
}

// Linux only: it reads the re-executed command line from /proc/PID/cmdline.
#[cfg(target_os = "linux")]
#[test]
fn follow_hands_over_validated_flags() {
    let dir = Dir::new();
    dir.create(INPUT, LINE);
    let flags = [
        "--rss-budget-mb",
        "16",
        "--live-cache-mb",
        "3",
        "--batch-rows",
        "7",
        "--historical-cache-mb",
        "5",
        "--idle-secs",
        "0.5",
        "--max-line-bytes",
        "1000",
    ];
    let mut args = vec!["--follow"];
    args.extend_from_slice(&flags);
    let mut p = util::Proc::follow(&dir, &args);
    assert_eq!(p.wait_exec(), LINE.len() as u64);
    let argv = argv_of(&p);
    for pair in flags.chunks(2) {
        assert_eq!(
            value_of(&argv, pair[0]),
            Some(pair[1]),
            "the live process lost {} {}: {argv:?}",
            pair[0],
            pair[1]
        );
    }
    // The live process took them: it runs and follows.
    dir.append(INPUT, LINE);
    wait_counts(&mut p, &dir.path(DB), 2, 0);
    p.stop_with(libc::SIGTERM);
}

/// A path that starts with `-` is handed over as a path, not read as a flag by the new
/// process (which would then refuse its command line and end live mode).
#[test]
fn follow_hands_over_a_path_that_looks_like_a_flag() {
    let dir = Dir::new();
    let input = "-in.jsonl";
    dir.create(input, LINE);
    let mut p = ProcBuilder::new(
        &dir,
        &[&format!("--input={input}"), "--db=-out.db", "--follow"],
    )
    .spawn();
    assert_eq!(p.wait_exec(), LINE.len() as u64);
    dir.append(input, LINE);
    wait_counts(&mut p, &dir.path("-out.db"), 2, 0);
    p.stop_with(libc::SIGTERM);
}
