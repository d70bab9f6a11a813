//! `ingestor report`: token usage and time to first token by day, model, folder or session,
//! from the `requests` view, as an aligned table or as JSON.
//!
//! It reads only the views, on a read-only connection: in WAL mode a reader never blocks the
//! writer (a follower keeps committing while the report runs) and sees one consistent
//! snapshot. Groups are per product as well, since the vendors count tokens differently
//! (Codex's input includes its cached tokens, Claude's does not): their sums do not add up.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};

use crate::db;
use crate::report::json_string;

/// What a report groups requests by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Day,
    Model,
    Cwd,
    Session,
}

impl By {
    /// The key's name in JSON, and its SQL expression over `requests`.
    fn key(self) -> (&'static str, &'static str) {
        match self {
            By::Day => ("day", "substr(started_at, 1, 10)"),
            By::Model => ("model", "model"),
            By::Cwd => ("cwd", "meta_cwd"),
            By::Session => ("session", "sid"),
        }
    }

    fn header(self) -> &'static str {
        match self {
            By::Day => "DAY",
            By::Model => "MODEL",
            By::Cwd => "FOLDER",
            By::Session => "SESSION",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Product {
    Claude,
    Codex,
}

impl Product {
    fn name(self) -> &'static str {
        match self {
            Product::Claude => "claude",
            Product::Codex => "codex",
        }
    }
}

/// A report as asked for, its flags checked ([`crate::config::report_query`] builds it).
#[derive(Clone, Debug)]
pub struct Query {
    pub db: PathBuf,
    pub by: By,
    /// Inclusive `YYYY-MM-DD` bounds on the day a request started (local time, as written).
    pub since: Option<String>,
    pub until: Option<String>,
    pub product: Option<Product>,
    pub json: bool,
}

/// One group's figures. Sums are `None` when no request of the group had the value (as SQL's
/// `SUM` gives, so that they equal the views' sums).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub key: Option<String>,
    pub product: String,
    pub requests: i64,
    pub input_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub tool_calls: i64,
    /// Median (nearest rank) and maximum of `ttft_ms` over the requests that have one.
    pub ttft_p50_ms: Option<i64>,
    pub ttft_max_ms: Option<i64>,
    ttfts: Vec<i64>,
}

impl Row {
    fn tokens(&mut self) -> [&mut Option<i64>; 5] {
        [
            &mut self.input_tokens,
            &mut self.cache_read_tokens,
            &mut self.cache_write_tokens,
            &mut self.output_tokens,
            &mut self.reasoning_tokens,
        ]
    }

    fn finish(&mut self) {
        self.ttfts.sort_unstable();
        let n = self.ttfts.len();
        self.ttft_p50_ms = (n > 0).then(|| self.ttfts[n.div_ceil(2) - 1]);
        self.ttft_max_ms = self.ttfts.last().copied();
    }
}

/// Opens the database read-only and checks that it can answer: it exists, it is an ingestor
/// database with the views (schema version 3 or later), and it holds lines.
pub fn open(path: &Path) -> Result<Connection> {
    let display = path.display();
    if !path.exists() {
        bail!("database {display} does not exist");
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open database {display}"))?;
    // A rollback-journal writer holds the file for the moment of its commit.
    conn.busy_timeout(crate::db::BUSY_TIMEOUT)?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'sse_lines'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| db::read_error(path, e))?;
    if tables == 0 {
        bail!("{display} is not an ingestor database (it has no sse_lines table)");
    }
    if !super::present(&conn)? {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        bail!(
            "{display} has no views yet (schema version {version}, they come with version 3): \
             run ingestor on it once to add them"
        );
    }
    let empty: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM sse_lines)", [], |r| {
        r.get(0)
    })?;
    if empty {
        bail!("{display} is empty: no lines have been ingested into it yet");
    }
    Ok(conn)
}

/// The groups of a report, ordered: by day, oldest first; otherwise most requests first.
pub fn rows(conn: &Connection, q: &Query) -> Result<Vec<Row>> {
    let (_, key) = q.by.key();
    let sql = format!(
        "SELECT {key}, product, input_tokens, cache_read_tokens, cache_write_tokens, \
         output_tokens, reasoning_tokens, tool_calls, ttft_ms \
         FROM requests \
         WHERE (?1 IS NULL OR substr(started_at, 1, 10) >= ?1) \
           AND (?2 IS NULL OR substr(started_at, 1, 10) <= ?2) \
           AND (?3 IS NULL OR product = ?3)"
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut query = stmt.query(rusqlite::params![
        q.since,
        q.until,
        q.product.map(Product::name)
    ])?;
    let mut groups: HashMap<(Option<String>, String), Row> = HashMap::new();
    while let Some(r) = query.next()? {
        let key: Option<String> = r.get(0)?;
        let product: String = r.get(1)?;
        let row = groups
            .entry((key.clone(), product.clone()))
            .or_insert_with(|| Row {
                key,
                product,
                ..Row::default()
            });
        row.requests += 1;
        for (i, sum) in row.tokens().into_iter().enumerate() {
            if let Some(v) = r.get::<_, Option<i64>>(2 + i)? {
                *sum = Some(sum.unwrap_or(0) + v);
            }
        }
        row.tool_calls += r.get::<_, Option<i64>>(7)?.unwrap_or(0);
        if let Some(ttft) = r.get::<_, Option<i64>>(8)? {
            row.ttfts.push(ttft);
        }
    }
    let mut rows: Vec<Row> = groups.into_values().collect();
    for row in &mut rows {
        row.finish();
    }
    if q.by == By::Day {
        rows.sort_by(|a, b| (&a.key, &a.product).cmp(&(&b.key, &b.product)));
    } else {
        rows.sort_by(|a, b| {
            b.requests
                .cmp(&a.requests)
                .then_with(|| (&a.key, &a.product).cmp(&(&b.key, &b.product)))
        });
    }
    Ok(rows)
}

/// Runs `ingestor report`: prints the table (or JSON) on stdout.
pub fn run(q: &Query) -> Result<()> {
    let conn = open(&q.db)?;
    let rows = rows(&conn, q).with_context(|| format!("cannot read {}", q.db.display()))?;
    let text = if q.json {
        json(q.by, &rows)
    } else {
        table(q, &rows)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that stopped early (`| head`) is not a failure of the report.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cell(v: Option<i64>) -> String {
    v.map_or_else(|| "-".to_owned(), thousands)
}

/// The aligned table: text columns to the left, numbers to the right, one total line per
/// product (the vendors' token counts are not summed together).
pub fn table(q: &Query, rows: &[Row]) -> String {
    if rows.is_empty() {
        let mut what = String::from("no requests");
        if let Some(p) = q.product {
            let _ = write!(what, " from {}", p.name());
        }
        match (&q.since, &q.until) {
            (Some(s), Some(u)) => {
                let _ = write!(what, " between {s} and {u}");
            }
            (Some(s), None) => {
                let _ = write!(what, " since {s}");
            }
            (None, Some(u)) => {
                let _ = write!(what, " until {u}");
            }
            (None, None) => {}
        }
        return format!("{what}\n");
    }
    let header = [
        q.by.header(),
        "PRODUCT",
        "REQUESTS",
        "INPUT",
        "CACHE READ",
        "CACHE WRITE",
        "OUTPUT",
        "REASONING",
        "TOOL CALLS",
        "TTFT P50 MS",
        "TTFT MAX MS",
    ];
    let line = |r: &Row, key: String| -> Vec<String> {
        vec![
            key,
            r.product.clone(),
            thousands(r.requests),
            cell(r.input_tokens),
            cell(r.cache_read_tokens),
            cell(r.cache_write_tokens),
            cell(r.output_tokens),
            cell(r.reasoning_tokens),
            thousands(r.tool_calls),
            cell(r.ttft_p50_ms),
            cell(r.ttft_max_ms),
        ]
    };
    let mut body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| line(r, r.key.clone().unwrap_or_else(|| "-".to_owned())))
        .collect();
    let mut totals: Vec<Row> = Vec::new();
    for r in rows {
        let t = match totals.iter_mut().find(|t| t.product == r.product) {
            Some(t) => t,
            None => {
                totals.push(Row {
                    product: r.product.clone(),
                    ..Row::default()
                });
                totals.last_mut().expect("just pushed")
            }
        };
        t.requests += r.requests;
        t.tool_calls += r.tool_calls;
        let mut from = r.clone();
        for (sum, v) in t.tokens().into_iter().zip(from.tokens()) {
            if let Some(v) = *v {
                *sum = Some(sum.unwrap_or(0) + v);
            }
        }
        t.ttfts.extend_from_slice(&r.ttfts);
    }
    let footer: Vec<Vec<String>> = totals
        .iter_mut()
        .map(|t| {
            t.finish();
            line(t, "total".to_owned())
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in body.iter().chain(&footer) {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut put = |cells: &[String]| {
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            if i > 0 {
                out.push_str("  ");
            }
            if i < 2 {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            } else {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(c);
            }
        }
        out.push('\n');
    };
    put(&header.map(str::to_owned));
    for row in body.drain(..) {
        put(&row);
    }
    put(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in &footer {
        put(row);
    }
    out
}

/// One JSON array of objects, one per group, keys as the views name them.
pub fn json(by: By, rows: &[Row]) -> String {
    let (key, _) = by.key();
    let mut out = String::from("[");
    for (i, r) in rows.iter().enumerate() {
        out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        json_string(&mut out, key);
        out.push(':');
        match &r.key {
            Some(k) => json_string(&mut out, k),
            None => out.push_str("null"),
        }
        out.push_str(",\"product\":");
        json_string(&mut out, &r.product);
        let numbers = [
            ("requests", Some(r.requests)),
            ("input_tokens", r.input_tokens),
            ("cache_read_tokens", r.cache_read_tokens),
            ("cache_write_tokens", r.cache_write_tokens),
            ("output_tokens", r.output_tokens),
            ("reasoning_tokens", r.reasoning_tokens),
            ("tool_calls", Some(r.tool_calls)),
            ("ttft_p50_ms", r.ttft_p50_ms),
            ("ttft_max_ms", r.ttft_max_ms),
        ];
        for (name, v) in numbers {
            let _ = write!(out, ",\"{name}\":");
            match v {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => out.push_str("null"),
            }
        }
        out.push('}');
    }
    out.push_str(if rows.is_empty() { "]\n" } else { "\n]\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        for (n, s) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
            (-1_234, "-1,234"),
        ] {
            assert_eq!(thousands(n), s);
        }
    }

    #[test]
    fn median_is_the_nearest_rank() {
        let mut r = Row {
            ttfts: vec![40, 10, 30, 20],
            ..Row::default()
        };
        r.finish();
        assert_eq!((r.ttft_p50_ms, r.ttft_max_ms), (Some(20), Some(40)));
        r.ttfts = vec![5, 1, 3];
        r.finish();
        assert_eq!((r.ttft_p50_ms, r.ttft_max_ms), (Some(3), Some(5)));
        r.ttfts.clear();
        r.finish();
        assert_eq!((r.ttft_p50_ms, r.ttft_max_ms), (None, None));
    }

    #[test]
    fn json_escapes_keys() {
        let rows = [Row {
            key: Some("/tmp/\"q\"\\x\n".to_owned()),
            product: "claude".to_owned(),
            requests: 2,
            input_tokens: Some(5),
            ..Row::default()
        }];
        let text = json(By::Cwd, &rows);
        assert!(
            text.contains(r#"{"cwd":"/tmp/\"q\"\\x\n","product":"claude","requests":2,"input_tokens":5,"cache_read_tokens":null"#),
            "{text}"
        );
        assert_eq!(json(By::Day, &[]), "[]\n");
    }
}
