//! The log a service manager keeps: stderr redirected (never a terminal in these tests), so
//! every line is `TIMESTAMP LEVEL message` (or one JSON object with `--log-format json`), a
//! heartbeat tells what live mode did at most once per period and only when something
//! happened, and a follower stuck in trouble (over its memory budget, or unable to write its
//! database) says so once instead of once per retry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::util::{self, DB, Dir, INPUT, Proc, ProcBuilder, after_lines, wait_all, wait_counts};

/// The test override of the heartbeat period (60 s otherwise), in seconds.
const HEARTBEAT_ENV: &str = "INGESTOR_HEARTBEAT_SECS";

/// How long the trouble test keeps its followers in trouble.
const TROUBLE: Duration = Duration::from_secs(30);

/// `ingestor --input INPUT --db DB --follow ARGS` with a heartbeat every `beat` seconds.
fn follower(dir: &Dir, args: &[&str], beat: &str) -> ProcBuilder {
    let mut all = vec!["--follow"];
    all.extend_from_slice(args);
    ProcBuilder::follow(dir, &all)
        .env_remove("INGESTOR_FAILPOINTS")
        .env(HEARTBEAT_ENV, beat)
}

/// The lines and seconds of a heartbeat message (`live: N lines in S s, lag X B, rss Y MiB`),
/// if it is one.
fn heartbeat(msg: &str) -> Option<(u64, u64)> {
    let rest = msg.strip_prefix("live: ")?;
    let (lines, rest) = rest.split_once(" lines in ")?;
    let (secs, rest) = rest.split_once(" s, lag ")?;
    let (_lag, rss) = rest.split_once(", rss ")?;
    let rss = rss.strip_suffix(" MiB")?;
    rss.parse::<f64>().ok()?;
    Some((lines.parse().ok()?, secs.parse().ok()?))
}

/// Every stderr line is one timestamped log line; returns (level, message) of each.
fn log_lines(err: &str) -> Vec<(String, String)> {
    assert!(err.is_empty() || err.ends_with('\n'), "a cut line:\n{err}");
    err.lines()
        .map(|line| {
            let (level, msg) = util::log_message(line)
                .unwrap_or_else(|| panic!("not a `TIMESTAMP LEVEL message` line: {line:?}\n{err}"));
            (level.to_owned(), msg.to_owned())
        })
        .collect()
}

/// A followed file growing for a few heartbeat periods: the backfill's summary, the hand-over,
/// heartbeats that count the lines committed, and the live summary, each one line with a UTC
/// timestamp and a level.
#[test]
fn a_service_log_has_timestamps_levels_and_heartbeats() {
    let dir = Dir::new();
    let all = util::generate(&dir, "all.jsonl", 41, 2_000, "0");
    let cut = after_lines(&all, 500);
    dir.create(INPUT, &all[..cut]);
    let mut p = follower(&dir, &[], "1").spawn();
    p.wait_exec();
    // Lines arrive over more than two heartbeat periods.
    util::append_in_pieces(&dir, &all[cut..], 12, Duration::from_millis(250));
    wait_all(&mut p, &dir.path(DB), &all);
    let beats = p.wait_for("a heartbeat that saw the last lines", |p| {
        let err = p.stderr();
        let beats: Vec<(u64, u64)> = log_lines(&err)
            .iter()
            .filter_map(|(_, msg)| heartbeat(msg))
            .collect();
        let counted: u64 = beats.iter().map(|b| b.0).sum();
        (counted == 1_500).then_some(beats)
    });
    let err = p.stop_with(libc::SIGTERM);
    eprintln!("{err}");
    let lines = log_lines(&err);
    assert!(lines.iter().all(|(level, _)| level == "INFO"), "{err}");
    assert!(lines[0].1.contains("live from offset"), "{err}");
    assert!(
        lines.last().unwrap().1.starts_with("live: 1500 lines"),
        "{err}"
    );
    // The lines came over more than two periods: more than one heartbeat counted them.
    assert!(beats.len() >= 2, "{beats:?}\n{err}");
}

/// `--log-format json`: one object per line, with `ts`, `level`, `msg` and the counts as
/// numbers; the re-executed live process keeps the format.
#[test]
fn json_logs_are_one_object_per_line() {
    let dir = Dir::new();
    let all = util::generate(&dir, "all.jsonl", 42, 600, "0");
    let cut = after_lines(&all, 200);
    dir.create(INPUT, &all[..cut]);
    let mut p = follower(&dir, &["--log-format", "json"], "1").spawn();
    p.wait_stderr("live from offset");
    dir.append(INPUT, &all[cut..]);
    wait_all(&mut p, &dir.path(DB), &all);
    p.wait_stderr("\"lag_bytes\"");
    p.signal(libc::SIGTERM);
    let err = p.assert_clean_exit();
    eprintln!("{err}");
    let objects: Vec<serde_json::Map<String, serde_json::Value>> = err
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line:?}"))
        })
        .collect();
    for o in &objects {
        let ts = o["ts"].as_str().expect("ts");
        assert!(
            util::log_message(&format!("{ts} INFO x")).is_some(),
            "{ts:?}"
        );
        assert_eq!(o["level"], "INFO", "{o:?}");
        assert!(o["msg"].as_str().is_some_and(|m| !m.is_empty()), "{o:?}");
    }
    let first = &objects[0];
    assert!(first["msg"].as_str().unwrap().contains("live from offset"));
    assert_eq!(first["lines"], 200, "{first:?}");
    let beat = objects
        .iter()
        .find(|o| o.contains_key("lag_bytes"))
        .expect("a heartbeat");
    assert!(
        beat["msg"].as_str().unwrap().starts_with("live: "),
        "{beat:?}"
    );
    for key in ["lines", "secs", "lag_bytes", "rss_bytes"] {
        assert!(beat[key].is_u64(), "{key} in {beat:?}");
    }
    // The live process (after the exec) wrote JSON too: its summary counts the 400 lines.
    let last = objects.last().unwrap();
    assert!(
        last["msg"].as_str().unwrap().starts_with("live: "),
        "{last:?}"
    );
    assert_eq!(last["lines"], 400, "{last:?}");
}

/// The lines a follower logged from `from` on, each message at most once.
fn assert_no_repeats(what: &str, err: &str, from: usize, most: usize) {
    let lines = log_lines(err);
    let later = &lines[from..];
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (_, msg) in later {
        *seen.entry(msg).or_default() += 1;
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{what}: repeated log lines {repeated:?}:\n{err}"
    );
    assert!(
        later.len() <= most,
        "{what}: {} log lines in {TROUBLE:?} of trouble (at most {most} expected):\n{err}",
        later.len()
    );
}

/// Two followers kept in trouble for 30 s with a heartbeat every second: one over its memory
/// budget (a 24 MiB line still being written, which it must hold and cannot re-execute away),
/// one that cannot write its database (a file-size limit, as a full disk). Each says so once;
/// nothing repeats, and a heartbeat comes only when something changed.
#[test]
fn a_follower_in_trouble_does_not_repeat_itself() {
    // Over budget: lines, then one long line without its end.
    let mem = Dir::new();
    let lines = util::generate(&mem, "all.jsonl", 43, 300, "0");
    let mut input = lines.clone();
    input.extend_from_slice(b"{\"event\":\"x\",\"data\":\"");
    input.resize(input.len() + (24 << 20), b'a');
    mem.create(INPUT, &input);
    let mut over = follower(&mem, &["--rss-budget-mb", "8", "--live-cache-mb", "1"], "1").spawn();

    // Disk full: a database near a file-size limit, then more lines than fit.
    let full = Dir::new();
    let all = util::generate(&full, "all.jsonl", 44, 3_000, "0");
    let cut = after_lines(&all, 300);
    full.create(INPUT, &all[..cut]);
    let mut once = Proc::follow(&full, &[]);
    once.assert_ok();
    let limit = std::fs::metadata(full.path(DB)).expect("db").len() + (1 << 20);
    let mut stuck = follower(&full, &[], "1").file_size_limit(limit).spawn();
    stuck.wait_exec();
    let mut at = cut;
    let step = (all.len() - cut) / 60;
    while !stuck.stderr().contains("retrying") {
        assert!(at < all.len(), "no write failure:\n{}", stuck.stderr());
        let to = (at + step).min(all.len());
        full.append(INPUT, &all[at..to]);
        at = to;
        std::thread::sleep(Duration::from_millis(30));
    }

    over.wait_stderr("over the 8.0 MiB budget");
    wait_counts(&mut over, &mem.path(DB), 300, 0);
    // The trouble starts at the line that reports it; it goes on for 30 s.
    let trouble_line = |err: &str, needle: &str| {
        err.lines()
            .position(|l| l.contains(needle))
            .expect("the trouble line")
    };
    let started = Instant::now();
    while started.elapsed() < TROUBLE {
        assert!(over.alive(), "over budget, it ended:\n{}", over.stderr());
        assert!(stuck.alive(), "at the limit, it ended:\n{}", stuck.stderr());
        std::thread::sleep(Duration::from_millis(500));
    }

    let err = over.stop();
    eprintln!("over the budget:\n{err}");
    let from = trouble_line(&err, "over the 8.0 MiB budget");
    assert_eq!(log_lines(&err)[from].0, "WARN", "{err}");
    // The warning, a heartbeat for the RSS the long line took, the live summary.
    assert_no_repeats("over the budget", &err, from, 4);
    assert_eq!(err.matches("re-executing").count(), 0, "{err}");

    let err = stuck.stop();
    eprintln!("at the file-size limit:\n{err}");
    let from = trouble_line(&err, "retrying");
    assert_eq!(log_lines(&err)[from].0, "WARN", "{err}");
    // The warning, at most two heartbeats (the lag and the RSS once settled), the summary.
    assert_no_repeats("at the file-size limit", &err, from, 4);
    assert_eq!(err.matches("retrying").count(), 1, "{err}");
}
