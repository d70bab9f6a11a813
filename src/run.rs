//! One run from resolved settings to a finished database.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::db;
use crate::pipeline::{self, READ_BUFFER};
use crate::reader::LineReader;
use crate::report::{self, Progress};
use crate::source::{self, Start};

pub fn run(config: &Config) -> Result<()> {
    // --from-scratch builds beside the database and renames over it at the
    // end, so the old database stays whole until the new one is.
    let input = source::open_input(config.input.as_deref())?;
    let build_path = if config.from_scratch {
        let tmp = scratch_path(&config.db);
        remove_db_files(&tmp)?;
        tmp
    } else {
        config.db.clone()
    };
    let conn = db::open(&build_path, &config.historical)?;
    let start = if config.from_scratch {
        Start::At(0)
    } else {
        Start::Resume
    };
    let opened = input.resolve(&conn, start)?;
    if let Some(why) = &opened.restarted {
        eprintln!("ingestor: {why}");
    }
    let progress = Progress::new(config.progress, opened.remaining);
    let reader = LineReader::new(
        opened.input,
        opened.row.offset,
        READ_BUFFER,
        config.max_line,
    );
    let mut stats = pipeline::load(
        &conn,
        opened.row.id,
        reader,
        config.max_line,
        config.batch_rows,
        &progress,
    )?;

    progress.phase("building indexes");
    let indexing = Instant::now();
    db::create_indexes(&conn)?;
    stats.index = indexing.elapsed();
    conn.close()
        .map_err(|(_, e)| e)
        .context("cannot close the database")?;

    if config.from_scratch {
        db::retire_wal(&config.db)?;
        std::fs::rename(&build_path, &config.db).with_context(|| {
            format!(
                "cannot move the new database into place at {}",
                config.db.display()
            )
        })?;
    }
    progress.finish();
    if config.summary {
        eprintln!("{}", report::summary(&stats, crate::mem::peak_rss()));
    }
    Ok(())
}

fn scratch_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".from-scratch");
    PathBuf::from(name)
}

/// Removes a database file with its journal, as a stale build leaves them.
fn remove_db_files(path: &Path) -> Result<()> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e)
                    .with_context(|| format!("cannot remove {}", Path::new(&name).display()));
            }
            _ => {}
        }
    }
    Ok(())
}
