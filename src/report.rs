//! What a person sees: lines on stderr through one [`Log`] handle, a progress
//! display while a long phase runs on a terminal, and one summary line at the
//! end. Nothing goes to stdout.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub lines: u64,
    pub rows: u64,
    pub bad: u64,
    pub blank: u64,
    pub bytes: u64,
    pub load: Duration,
    pub index: Duration,
}

impl Stats {
    /// Adds another source's counts (a backfill of several inputs).
    pub fn add(&mut self, other: &Stats) {
        self.lines += other.lines;
        self.rows += other.rows;
        self.bad += other.bad;
        self.blank += other.blank;
        self.bytes += other.bytes;
        self.load += other.load;
        self.index += other.index;
    }
}

/// The one way the program talks to its user: every message goes through
/// here (`--quiet` silences them), and progress bars are made here, only
/// for a terminal.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    quiet: bool,
    progress: bool,
}

impl Log {
    pub fn new(quiet: bool, progress: bool) -> Log {
        Log { quiet, progress }
    }

    /// One line on stderr, prefixed with the program's name.
    pub fn info(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("ingestor: {msg}");
        }
    }

    /// A byte-counting progress display for reading `total` bytes (when known).
    pub fn progress(&self, total: Option<u64>) -> Progress {
        Progress::new(self.progress, total)
    }

    /// A progress display counting `what` (rows, say) up to `total`.
    pub fn counter(&self, total: u64, what: &str) -> Progress {
        let bar = self.progress.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template =
                format!("{{bar:30}} {{human_pos}}/{{human_len}} {what} {{msg}} ETA {{eta}}");
            bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }
}

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// `total` is the number of bytes to read when known.
    pub fn new(enabled: bool, total: Option<u64>) -> Progress {
        let bar = enabled.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} \
                 {msg} ETA {eta}"
            } else {
                "{spinner} {binary_bytes} {binary_bytes_per_sec} {msg}"
            };
            bar.set_style(ProgressStyle::with_template(template).expect("static template"));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    pub fn update(&self, stats: &Stats) {
        if let Some(bar) = &self.bar {
            bar.set_position(stats.bytes);
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{:.0} lines/s", stats.lines as f64 / secs));
        }
    }

    /// Moves a [`Log::counter`] display to `pos`.
    pub fn set(&self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    pub fn phase(&self, what: &'static str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// One mebibyte: every size the program reports is in MiB, the unit its
/// flags (`--rss-budget-mb`, the cache sizes) are counted in.
pub const MIB: f64 = 1_048_576.0;

/// Bytes in MiB, for messages.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// How far a backfill got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// It read its input to the end (or to an idle pipe), and built the
    /// indexes.
    Complete,
    /// A stop signal ended it at `offset` (committed), of `total` bytes when
    /// the input's size is known; the indexes were not built.
    Stopped { offset: u64, total: Option<u64> },
}

/// The one-line summary printed at the end of a run.
pub fn summary(stats: &Stats, peak_rss: u64) -> String {
    summary_of(stats, Reach::Complete, peak_rss)
}

/// The one-line summary of a backfill; a stopped one says so first, and
/// that its indexes are left for the next run that completes.
pub fn summary_of(stats: &Stats, reach: Reach, peak_rss: u64) -> String {
    use std::fmt::Write;
    let secs = (stats.load + stats.index).as_secs_f64().max(1e-6);
    let mut out = String::new();
    if let Reach::Stopped { offset, total } = reach {
        let _ = write!(out, "stopped early at byte {offset}");
        if let Some(total) = total {
            let pct = if total == 0 {
                100.0
            } else {
                offset as f64 * 100.0 / total as f64
            };
            let _ = write!(out, " of {total} ({pct:.1}%)");
        }
        out.push_str(", indexes not built (the next run that completes builds them): ");
    }
    let _ = write!(
        out,
        "{} lines ({} rows, {} bad, {} blank), {:.1} MiB in {:.2} s ",
        stats.lines,
        stats.rows,
        stats.bad,
        stats.blank,
        mib(stats.bytes),
        secs,
    );
    match reach {
        Reach::Complete => {
            let _ = write!(
                out,
                "(load {:.2} s, indexes {:.2} s)",
                stats.load.as_secs_f64(),
                stats.index.as_secs_f64()
            );
        }
        Reach::Stopped { .. } => {
            let _ = write!(out, "(load {:.2} s)", stats.load.as_secs_f64());
        }
    }
    let _ = write!(
        out,
        ": {:.0} lines/s, {:.1} MiB/s, peak RSS {:.1} MiB, RSS now {:.1} MiB",
        stats.lines as f64 / secs,
        mib(stats.bytes) / secs,
        mib(peak_rss),
        mib(crate::sys::mem::current_rss()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        Stats {
            lines: 219_438,
            rows: 219_000,
            bad: 400,
            blank: 38,
            bytes: 3 << 20,
            load: Duration::from_millis(1500),
            index: Duration::ZERO,
        }
    }

    #[test]
    fn sizes_are_in_mib() {
        let s = summary(&stats(), 5 << 20);
        assert!(s.contains("3.0 MiB in 1.50 s"), "{s}");
        assert!(s.contains("2.0 MiB/s"), "{s}");
        assert!(s.contains("peak RSS 5.0 MiB"), "{s}");
        assert!(!s.contains(" MB"), "{s}");
    }

    #[test]
    fn a_stopped_backfill_says_so_and_how_far() {
        let known = summary_of(
            &stats(),
            Reach::Stopped {
                offset: 3 << 20,
                total: Some(12 << 20),
            },
            0,
        );
        assert!(
            known.starts_with(
                "stopped early at byte 3145728 of 12582912 (25.0%), indexes not built \
                 (the next run that completes builds them): 219438 lines"
            ),
            "{known}"
        );
        assert!(!known.contains("indexes 0.00"), "{known}");
        let pipe = summary_of(
            &stats(),
            Reach::Stopped {
                offset: 42,
                total: None,
            },
            0,
        );
        assert!(
            pipe.starts_with("stopped early at byte 42, indexes not built"),
            "{pipe}"
        );
        let whole = summary(&stats(), 0);
        assert!(whole.starts_with("219438 lines"), "{whole}");
        assert!(whole.contains("indexes 0.00 s"), "{whole}");
    }
}
