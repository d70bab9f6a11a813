//! A pipe that stays busy: every line shows up within a second, before and after the switch to
//! live mode, and a large backlog still goes through the historical phase.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{self, DB, Dir, Proc, after_lines, assert_matches, generate, try_counts};

/// How soon a line written to the pipe must be queryable.
const VISIBLE_WITHIN: Duration = Duration::from_secs(1);

/// A producer writes a backlog, then one line every 250 ms for 20 s, as an agent streaming
/// steadily does: each line must be visible within a second of being written, through the
/// historical phase (the backlog), the switch, and live mode; the switch must still happen, and
/// live mode must stay inside its memory budget.
#[test]
fn a_busy_pipe_shows_every_line_within_a_second() {
    let dir = Dir::new();
    let db = dir.path(DB);
    let all = generate(&dir, "all.jsonl", 11, 3080, "0");
    let backlog = after_lines(&all, 3000);

    let mut p = Proc::spawn(&dir, &["--db", db.to_str().expect("utf-8 path")], true);
    let mut slowest = Duration::ZERO;
    let write = |p: &mut Proc, upto_line: usize, from: usize, to: usize| {
        let written = Instant::now();
        let stdin = p.stdin.as_mut().expect("piped stdin");
        stdin.write_all(&all[from..to]).expect("write");
        stdin.flush().expect("flush");
        // Sampled every 10 ms; the line is late if a second passes first.
        loop {
            let rows = try_counts(&db).map_or(0, |(rows, _)| rows);
            assert!(rows as usize <= upto_line, "more rows than lines written");
            if rows as usize == upto_line {
                break;
            }
            assert!(
                written.elapsed() <= VISIBLE_WITHIN,
                "line {upto_line} not visible {VISIBLE_WITHIN:?} after it was written \
                 ({rows} rows); stderr:\n{}",
                p.stderr()
            );
            thread::sleep(Duration::from_millis(10));
        }
        written.elapsed()
    };
    slowest = slowest.max(write(&mut p, 3000, 0, backlog));
    let started = Instant::now();
    for line in 3001..=3080 {
        let due = started + Duration::from_millis(250) * (line as u32 - 3001);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let (from, to) = (after_lines(&all, line - 1), after_lines(&all, line));
        slowest = slowest.max(write(&mut p, line, from, to));
    }
    let err = p.stderr();
    assert!(
        err.contains("live on standard input"),
        "no switch to live mode: {err}"
    );
    #[cfg(target_os = "linux")]
    {
        let rss = util::vm_rss(p.pid);
        assert!(rss <= 12 << 20, "live RSS {rss} B over the 12 MiB budget");
    }
    let status = p.wait_exit();
    assert!(status.success(), "exit {status:?}; stderr:\n{}", p.stderr());
    assert_matches(&util::Db::new(db), &all);
    eprintln!("slowest line became visible after {slowest:?}");
}
