//! What a person sees: lines on stderr through one [`Log`] handle, a progress
//! display while a long phase runs on a terminal, and one summary line at the
//! end. Nothing goes to stdout.

use std::fmt::{Display, Write as _};
use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// On a terminal `ingestor: message`; otherwise (a service's log, a
    /// file) `2026-11-29T18:40:02Z INFO message`, one line each.
    #[default]
    Text,
    /// One JSON object per line: `ts`, `level`, `msg`, and the counts a
    /// message has (`lines`, `lag_bytes`, `rss_bytes`, ...) as numbers.
    Json,
}

/// How much a log line matters to whoever reads the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// What the program does: phases, summaries, heartbeats.
    Info,
    /// Something is wrong and the program works around it or waits (a full
    /// disk, the memory budget, a failed hand-over).
    Warn,
    /// The run failed: its last line.
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// The one way the program talks to its user, made once from the flags and
/// passed to whatever logs: every message goes through here (`--quiet`
/// silences all but errors), and progress bars are made here, only for a
/// terminal.
#[derive(Clone, Copy, Debug)]
pub struct Log {
    quiet: bool,
    format: Format,
    /// Whether stderr is a terminal: a person watching, not a log file.
    terminal: bool,
}

impl Log {
    pub fn new(quiet: bool, format: Format) -> Log {
        Log {
            quiet,
            format,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Whether `--quiet` was given (forwarded to the live process).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn info(&self, msg: impl Display) {
        self.write(Level::Info, msg, &[]);
    }

    pub fn warn(&self, msg: impl Display) {
        self.write(Level::Warn, msg, &[]);
    }

    /// The line that ends a failed run: printed even with `--quiet`.
    pub fn error(&self, msg: impl Display) {
        self.write(Level::Error, msg, &[]);
    }

    /// A message with counts that a JSON log carries as fields of their own
    /// (the text says them in words already).
    pub fn info_with(&self, msg: impl Display, fields: &[(&str, u64)]) {
        self.write(Level::Info, msg, fields);
    }

    fn write(&self, level: Level, msg: impl Display, fields: &[(&str, u64)]) {
        if self.quiet && level != Level::Error {
            return;
        }
        let line = self.line(level, &msg.to_string(), fields, SystemTime::now());
        // One write per line, so that lines of concurrent writers do not mix;
        // a closed stderr is no reason to fail (nor to panic, as eprintln does).
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    /// The line as written, newline included.
    fn line(&self, level: Level, msg: &str, fields: &[(&str, u64)], now: SystemTime) -> String {
        let mut out = String::with_capacity(msg.len() + 48);
        match (self.format, self.terminal) {
            (Format::Text, true) => {
                out.push_str("ingestor: ");
                out.push_str(msg);
            }
            (Format::Text, false) => {
                rfc3339(&mut out, now);
                out.push(' ');
                out.push_str(level.word());
                out.push(' ');
                // One line per message, whatever it quotes.
                for c in msg.chars() {
                    match c {
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
            (Format::Json, _) => {
                out.push_str("{\"ts\":\"");
                rfc3339(&mut out, now);
                out.push_str("\",\"level\":\"");
                out.push_str(level.word());
                out.push_str("\",\"msg\":");
                json_string(&mut out, msg);
                for (key, value) in fields {
                    out.push(',');
                    json_string(&mut out, key);
                    let _ = write!(out, ":{value}");
                }
                out.push('}');
            }
        }
        out.push('\n');
        out
    }

    /// A byte-counting progress display for reading `total` bytes (when known).
    pub fn progress(&self, total: Option<u64>) -> Progress {
        Progress::new(self.bars(), total)
    }

    /// A progress display counting `what` (rows, say) up to `total`.
    pub fn counter(&self, total: u64, what: &str) -> Progress {
        let bar = self.bars().then(|| {
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

    /// Bars are for a person at a terminal; in a log they would be noise.
    fn bars(&self) -> bool {
        self.terminal && !self.quiet && self.format == Format::Text
    }
}

/// `s` as a JSON string.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `now` in UTC as RFC 3339 to the second (`2026-11-29T18:40:02Z`).
fn rfc3339(out: &mut String, now: SystemTime) {
    let secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`: eras of 400 years, each 146097 days, with years that
/// start on March 1st so that the leap day is the last of its year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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

/// A size for a person: `512 B`, `3.5 KiB`, `6.1 MiB`, `2.0 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
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

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    fn utc(secs: i64) -> String {
        let mut out = String::new();
        rfc3339(&mut out, at(secs));
        out
    }

    #[test]
    fn utc_timestamps_are_rfc3339() {
        // Values checked with `date -u -d @SECS +%FT%TZ`.
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_399, "2000-02-28T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (4_107_456_000, "2100-02-28T00:00:00Z"),
            (1_798_569_602, "2026-12-29T18:40:02Z"),
            (1_795_891_202, "2026-11-28T18:40:02Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(utc(secs), want, "{secs}");
        }
        // Every day of four centuries maps to the next date after the previous one.
        let mut last = civil_from_days(-1);
        for day in 0..146_097 * 4 {
            let (y, m, d) = civil_from_days(day);
            let next_day = (y, m, d) > last && (d == last.2 + 1 || d == 1);
            assert!(
                next_day && (1..=12).contains(&m),
                "{day}: {last:?} -> {y}-{m}-{d}"
            );
            last = (y, m, d);
        }
    }

    fn log(format: Format, terminal: bool) -> Log {
        Log {
            quiet: false,
            format,
            terminal,
        }
    }

    #[test]
    fn text_lines_say_time_and_level_off_a_terminal() {
        let now = at(1_795_891_202);
        let line = log(Format::Text, false).line(Level::Warn, "over\nbudget", &[("n", 1)], now);
        assert_eq!(line, "2026-11-28T18:40:02Z WARN over\\nbudget\n");
        let line = log(Format::Text, true).line(Level::Info, "live", &[], now);
        assert_eq!(line, "ingestor: live\n");
    }

    #[test]
    fn json_lines_are_objects_with_fields() {
        let now = at(1_795_891_202);
        let line = log(Format::Json, true).line(
            Level::Error,
            "a \"b\"\\c\n\u{1}é",
            &[("lines", 12), ("lag_bytes", 0)],
            now,
        );
        assert_eq!(
            line,
            "{\"ts\":\"2026-11-28T18:40:02Z\",\"level\":\"ERROR\",\
             \"msg\":\"a \\\"b\\\"\\\\c\\n\\u0001é\",\"lines\":12,\"lag_bytes\":0}\n"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(6_396_313), "6.1 MiB");
        assert_eq!(human_bytes(3 << 40), "3072.0 GiB");
    }

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
