//! What a person sees: a progress display while a backfill runs on a
//! terminal, and one summary line at the end. Nothing goes to stdout.

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
                "{bar:30} {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec} \
                 {msg} ETA {eta}"
            } else {
                "{spinner} {decimal_bytes} {decimal_bytes_per_sec} {msg}"
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

/// The one-line summary printed at the end of a run.
pub fn summary(stats: &Stats, peak_rss: u64) -> String {
    let secs = (stats.load + stats.index).as_secs_f64().max(1e-6);
    format!(
        "{} lines ({} rows, {} bad, {} blank), {:.1} MB in {:.2} s \
         (load {:.2} s, indexes {:.2} s): {:.0} lines/s, {:.1} MB/s, peak RSS {:.1} MB, \
         RSS now {:.1} MB",
        stats.lines,
        stats.rows,
        stats.bad,
        stats.blank,
        stats.bytes as f64 / 1e6,
        secs,
        stats.load.as_secs_f64(),
        stats.index.as_secs_f64(),
        stats.lines as f64 / secs,
        stats.bytes as f64 / 1e6 / secs,
        peak_rss as f64 / 1e6,
        crate::mem::current_rss() as f64 / 1e6,
    )
}
