//! The service files of `contrib/`, as a service manager would run them: installed by
//! `contrib/install.sh` into a scratch home, their command line (systemd's `ExecStart=`,
//! launchd's `ProgramArguments`) is taken from the installed file as written and run against
//! generated logs: it backfills both, follows appended lines, and stops cleanly on SIGTERM.
//! `systemd-analyze verify` and `plutil -lint` check the files where they are installed. And
//! the unit-file mistake they guard against: no `--input` with standard input at `/dev/null`.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{self, Dir, INGESTOR, ProcBuilder};

const CONTRIB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib");

/// `contrib/install.sh KIND --bin INGESTOR --no-start` with `HOME` at `home`: the installed
/// file's path and text.
fn install(home: &Path, kind: &str) -> (PathBuf, String) {
    let out = Command::new("sh")
        .arg(format!("{CONTRIB}/install.sh"))
        .args([kind, "--bin", INGESTOR, "--no-start"])
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run contrib/install.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh {kind} failed:\n{stderr}");
    let path = match kind {
        "systemd" => home.join(".config/systemd/user/ingestor.service"),
        _ => home.join("Library/LaunchAgents/local.ingestor.plist"),
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("install.sh {kind} wrote no {}: {e}", path.display()));
    assert!(
        !text.contains('@'),
        "a placeholder left in {}:\n{text}",
        path.display()
    );
    (path, text)
}

/// The value of `key=` in a unit, continuation lines (a trailing `\`) joined as systemd joins
/// them.
fn unit_value(unit: &str, key: &str) -> Option<String> {
    let mut lines = unit.lines();
    let first = lines.find(|l| l.starts_with(&format!("{key}=")))?;
    let mut value = first[key.len() + 1..].to_owned();
    while let Some(stripped) = value.strip_suffix('\\') {
        value = format!("{stripped} {}", lines.next().unwrap_or(""));
    }
    Some(value)
}

/// systemd's reading of an `ExecStart=` value: words split at white space, double quotes
/// removed, `%%` and `$$` unescaped. Anything this does not read as systemd does (another
/// specifier, a variable, a backslash escape, a `-@:+!` prefix) fails the test instead of
/// running something else than systemd would.
fn exec_start_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = value.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut word = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => break,
                '%' | '$' => {
                    assert_eq!(
                        chars.next(),
                        Some(c),
                        "a specifier or variable in {value:?}"
                    );
                    word.push(c);
                }
                '\\' | '\'' => panic!("an escape or single quote in {value:?}"),
                c => word.push(c),
            }
        }
        assert!(!quoted, "an unclosed quote in {value:?}");
        if !word.is_empty() {
            words.push(word);
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    }
    assert!(
        !words[0].starts_with(['-', '@', ':', '+', '!']),
        "a prefix on the command in {value:?}"
    );
    words
}

/// The `<string>`s of the plist's `ProgramArguments` array, XML entities decoded.
fn plist_arguments(plist: &str) -> Vec<String> {
    let from = plist
        .find("<key>ProgramArguments</key>")
        .expect("ProgramArguments");
    let array = &plist[from..];
    let array = &array[array.find("<array>").expect("<array>")..array.find("</array>").unwrap()];
    array
        .split("<string>")
        .skip(1)
        .map(|s| {
            let text = &s[..s.find("</string>").expect("</string>")];
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// Lines a log's bytes hold, rows and bad lines together.
fn lines(bytes: &[u8]) -> i64 {
    let e = crate::oracle::expect(bytes);
    (e.rows.len() + e.bad.len()) as i64
}

/// Runs `argv` (the service's command line) in a home holding the two logs, part written:
/// it must backfill both, go live, take the rest of both as it is appended, and on SIGTERM
/// exit 0 with every line committed exactly once and each log's position at its end.
fn run_service(home: &Dir, argv: &[String]) {
    assert_eq!(argv[0], INGESTOR, "the binary given to install.sh");
    let logs = home.path("centralized-logs");
    let path = |log: &str| logs.join(log).join("sse_lines.jsonl");
    let mut full = Vec::new();
    for (i, log) in ["claude", "codex"].into_iter().enumerate() {
        std::fs::create_dir_all(logs.join(log)).expect("log folder");
        let bytes = util::generate(home, &format!("{log}.all"), 70 + i as u64, 2_000, "0.01");
        let cut = util::after_lines(&bytes, 1_200);
        std::fs::write(path(log), &bytes[..cut]).expect("write log");
        full.push((log, bytes, cut));
    }
    let db = logs.join("agents.db");
    let count = || {
        util::try_counts(&db)
            .map(|(rows, bad)| rows + bad)
            .unwrap_or(0)
    };
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    // As systemd and launchd start it: standard input at /dev/null.
    let mut p = ProcBuilder::new(home, &args).spawn();
    let backfill: i64 = full.iter().map(|(_, b, cut)| lines(&b[..*cut])).sum();
    p.wait_for("the backfill of both logs", |_| {
        (count() == backfill).then_some(())
    });
    p.wait_stderr("live from offset");
    #[cfg(target_os = "linux")]
    p.wait_for("the exec into live mode", |p| p.execed().then_some(()));
    for (log, bytes, cut) in &full {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path(log))
            .expect("open log");
        f.write_all(&bytes[*cut..]).expect("append");
    }
    let all: i64 = full.iter().map(|(_, b, _)| lines(b)).sum();
    p.wait_for("the appended lines of both logs", |_| {
        (count() == all).then_some(())
    });
    let err = p.stop_with(libc::SIGTERM);
    assert_eq!(p.status.and_then(|s| s.code()), Some(0), "{err}");
    let conn = util::try_open(&db).expect("open database");
    for (log, bytes, _) in &full {
        let canonical = std::fs::canonicalize(path(log)).expect("canonical path");
        let (id, offset): (i64, i64) = conn
            .query_row(
                "SELECT id, offset FROM ingest_sources WHERE path = ?1",
                [canonical.to_str().expect("utf-8 path")],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("the log's source");
        assert_eq!(
            offset as usize,
            bytes.len(),
            "{log}: position not at its end"
        );
        util::assert_source_matches(&util::Db::new(db.clone()), id, bytes);
    }
}

#[test]
fn the_systemd_units_command_line_follows_and_stops_cleanly() {
    let home = Dir::new();
    let (_, unit) = install(home.root(), "systemd");
    for line in [
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "TimeoutStopSec=30",
        "StandardInput=null",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "no {line} in the unit:\n{unit}"
        );
    }
    let argv = exec_start_words(&unit_value(&unit, "ExecStart").expect("ExecStart="));
    run_service(&home, &argv);
}

#[test]
fn the_launchd_agents_command_line_follows_and_stops_cleanly() {
    let home = Dir::new();
    let (_, plist) = install(home.root(), "launchd");
    let argv = plist_arguments(&plist);
    run_service(&home, &argv);
}

/// What the unit and the plist run is the same command.
#[test]
fn both_service_files_run_the_same_command() {
    let home = Dir::new();
    let (_, unit) = install(home.root(), "systemd");
    let (_, plist) = install(home.root(), "launchd");
    let systemd = exec_start_words(&unit_value(&unit, "ExecStart").unwrap());
    assert_eq!(systemd, plist_arguments(&plist));
    let home = home.root().to_str().unwrap();
    assert_eq!(
        systemd[1..],
        [
            "--db".to_owned(),
            format!("{home}/centralized-logs/agents.db"),
            "--follow".to_owned(),
            "--input".to_owned(),
            format!("{home}/centralized-logs/claude/sse_lines.jsonl"),
            "--input".to_owned(),
            format!("{home}/centralized-logs/codex/sse_lines.jsonl"),
        ]
    );
}

/// Paths that each format must escape (`%` and `$` for systemd, `&` and `<` for XML) come out
/// of install.sh as the same paths once read back.
#[test]
fn install_escapes_what_each_format_needs() {
    let dir = Dir::new();
    let home = dir.path("a %h $HOME & <b>");
    std::fs::create_dir(&home).expect("odd home");
    let (_, unit) = install(&home, "systemd");
    let (_, plist) = install(&home, "launchd");
    let db = format!("{}/centralized-logs/agents.db", home.display());
    assert_eq!(
        exec_start_words(&unit_value(&unit, "ExecStart").unwrap())[2],
        db
    );
    assert_eq!(plist_arguments(&plist)[2], db);
    let out = Command::new("sh")
        .arg(format!("{CONTRIB}/install.sh"))
        .args(["systemd", "--bin", INGESTOR, "--print"])
        .env("HOME", dir.path("q\"uote"))
        .output()
        .expect("run install.sh");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot go into a systemd unit"), "{err}");
}

/// `systemd-analyze verify` on the installed user unit (it also checks that the binary in
/// ExecStart exists and is executable). Skipped, with a note, where systemd is absent.
#[test]
fn systemd_analyze_verifies_the_installed_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: systemd-analyze is not installed here; the unit was not verified");
        return;
    }
    let home = Dir::new();
    let (path, _) = install(home.root(), "systemd");
    // A user manager's lookup needs a runtime folder, which a test run may not have.
    let runtime = home.path("run");
    std::fs::create_dir(&runtime).expect("runtime dir");
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(&path)
        .env("HOME", home.root())
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("run systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{err}"
    );
    // Unknown keys and bad values are warnings with exit 0: none is allowed either.
    assert!(
        err.trim().is_empty(),
        "systemd-analyze verify warned:\n{err}"
    );
}

/// `plutil -lint` on the installed plist where it exists (macOS); elsewhere Python's plistlib
/// reads it and must find the keys launchd acts on. Skipped, with a note, where neither is.
#[test]
fn the_installed_plist_is_valid() {
    let home = Dir::new();
    let (path, plist) = install(home.root(), "launchd");
    if let Ok(out) = Command::new("plutil").arg("-lint").arg(&path).output() {
        assert!(
            out.status.success(),
            "plutil -lint failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        return;
    }
    let script = "import json, plistlib, sys\n\
                  d = plistlib.load(open(sys.argv[1], 'rb'))\n\
                  print(json.dumps(d))";
    let Ok(out) = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
    else {
        eprintln!("note: neither plutil nor python3 is installed here; the plist was not linted");
        return;
    };
    eprintln!("note: plutil is not installed here (macOS only); linted with python3's plistlib");
    assert!(
        out.status.success(),
        "plistlib cannot read the plist:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(d["Label"], "local.ingestor");
    assert_eq!(d["KeepAlive"]["SuccessfulExit"], false);
    assert_eq!(d["RunAtLoad"], true);
    assert_eq!(d["ExitTimeOut"], 30);
    assert_eq!(d["StandardInPath"], "/dev/null");
    let args: Vec<String> = d["ProgramArguments"]
        .as_array()
        .expect("ProgramArguments")
        .iter()
        .map(|a| a.as_str().expect("a string").to_owned())
        .collect();
    // Our reading of the file (which the run test uses) is plistlib's.
    assert_eq!(args, plist_arguments(&plist));
    let log = format!("{}/Library/Logs/ingestor.log", home.root().display());
    assert_eq!(d["StandardErrorPath"], log.as_str());
}

/// A unit that forgot `--input` runs with standard input at /dev/null: one line saying so and
/// exit 2 (which the unit's RestartPreventExitStatus keeps from restarting), not a silent
/// exit 0; nothing is created.
#[test]
fn standard_input_at_dev_null_is_refused() {
    let dir = Dir::new();
    for args in [
        &["--db", "x.db"][..],
        &["--db", "x.db", "--follow"],
        &["--input", "-", "--db", "x.db"],
    ] {
        // TestCommand gives /dev/null as standard input unless told otherwise.
        let mut cmd = dir.command();
        cmd.args(args);
        let err = cmd.assert_err();
        let message = err.lines().next().and_then(util::log_message);
        assert!(
            message.is_some_and(|(level, msg)| level == "ERROR"
                && msg.starts_with("standard input is /dev/null")
                && msg.contains("--input PATH")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_eq!(cmd.run().status.code(), Some(2), "{args:?}");
        assert!(!dir.exists("x.db") && !dir.exists("x.db.lock"), "{args:?}");
    }
    let err = dir
        .command()
        .args(["--db", "x.db"])
        .stdin_file("/dev/zero")
        .assert_err();
    assert!(err.contains("a character device"), "{err}");
}

/// What standard input is meant to be still works: a file (even an empty one) and a socket,
/// besides the pipes the other tests use.
#[test]
fn standard_input_from_a_file_or_a_socket_is_read() {
    let dir = Dir::new();
    dir.create("empty.jsonl", b"");
    dir.command()
        .args(["--db", "empty.db"])
        .stdin_file(dir.path("empty.jsonl"))
        .assert_ok();
    assert_eq!(dir.db("empty.db").count("sse_lines"), 0);

    let (mut ours, theirs) = UnixStream::pair().expect("socketpair");
    let child = Command::new(INGESTOR)
        .current_dir(dir.root())
        .args(["--db", "socket.db", "--quiet"])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ingestor");
    ours.write_all(b"{\"event\":\"a\"}\n{\"event\":\"b\"}\n")
        .expect("write to the socket");
    drop(ours);
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dir.db("socket.db").count("sse_lines"), 2);
}
