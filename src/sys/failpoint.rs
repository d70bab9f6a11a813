//! Failure injection for tests: `INGESTOR_FAILPOINTS=name[@n]:action,...`
//! makes the n-th (default first) pass through the named point either kill
//! the process on the spot (`kill`, as `kill -9` would, with no clean-up) or
//! fail with an injected I/O error (`error`).
//!
//! Like the `fail` crate, this keeps a process-wide registry; unlike it, the
//! points are compiled into release builds, because the tests drive the very
//! binary users run. Each point is a handful of instructions on a path taken
//! once per commit or hand-over, never per line, and the variable is read
//! once.
//!
//! Points: `before-position` (rows inserted, position not yet written),
//! `before-commit` (position written, not committed), `after-commit`,
//! `before-exec` (database closed, hand-over not yet made),
//! `rotate-before-commit` (the finished file's last rows and final position
//! written, not committed) and `rotate-after-commit` (those committed, the
//! next file not begun: its source row is stored with its first lines).

use std::sync::Mutex;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Kill,
    Error,
}

struct Point {
    name: String,
    nth: u64,
    seen: u64,
    action: Action,
}

fn registry() -> &'static Mutex<Vec<Point>> {
    static POINTS: OnceLock<Mutex<Vec<Point>>> = OnceLock::new();
    POINTS.get_or_init(|| {
        Mutex::new(parse(
            &std::env::var("INGESTOR_FAILPOINTS").unwrap_or_default(),
        ))
    })
}

fn parse(spec: &str) -> Vec<Point> {
    spec.split(',')
        .filter_map(|item| {
            let (target, action) = item.trim().split_once(':')?;
            let (name, nth) = match target.split_once('@') {
                Some((name, n)) => (name, n.parse().ok()?),
                None => (target, 1),
            };
            let action = match action {
                "kill" => Action::Kill,
                "error" => Action::Error,
                _ => return None,
            };
            Some(Point {
                name: name.to_owned(),
                nth,
                seen: 0,
                action,
            })
        })
        .collect()
}

/// Passes through point `name`: returns an error, or does not return at all,
/// when a failure is armed there for this pass. The error is an SQLite I/O
/// error, so that it takes the path a failing disk would.
pub fn hit(name: &str) -> rusqlite::Result<()> {
    let mut points = registry().lock().unwrap_or_else(|e| e.into_inner());
    for p in points.iter_mut().filter(|p| p.name == name) {
        p.seen += 1;
        if p.seen != p.nth {
            continue;
        }
        match p.action {
            // SAFETY: raising a signal has no memory-safety preconditions.
            Action::Kill => unsafe {
                libc::raise(libc::SIGKILL);
            },
            Action::Error => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                    Some(format!("injected failure at {name}")),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_ignores_junk() {
        let p = parse("before-commit:kill, after-commit@3:error,bad,x:nope");
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].nth, p[0].action),
            ("before-commit", 1, Action::Kill)
        );
        assert_eq!(
            (p[1].name.as_str(), p[1].nth, p[1].action),
            ("after-commit", 3, Action::Error)
        );
    }
}
