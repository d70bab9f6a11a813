//! One run from resolved settings: the backfill, the switch to live mode, and
//! live following.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::Connection;

use crate::config::Config;
use crate::db;
use crate::db::writer::SourceRef;
use crate::follow::handover::{self, NotExecuted};
use crate::follow::live::{self, End, LIVE_READ_BUFFER};
use crate::input::reader::{Framing, LineReader, ReadError};
use crate::input::source::{self, CatchUp, Input, Start};
use crate::pipeline::{self, Ending, READ_BUFFER};
use crate::report::{self, Log, Reach, Stats};
use crate::scan::batch::Builder;
use crate::sys::lock::Locks;
use crate::sys::mem;
use crate::sys::signals;
use crate::sys::writeback;

pub fn run(config: &Config) -> Result<()> {
    if let Err(e) = signals::install() {
        config.log.warn(format_args!(
            "cannot handle stop signals ({e}); SIGINT, SIGTERM and SIGHUP will end the process \
             without committing what was read since the last commit"
        ));
    }
    mem::pin_mmap_threshold();
    // A file cut between being recorded and being read (a copytruncate at
    // that instant) is caught by the reader; the run then starts over, and
    // resolving the source again finds the copy.
    let mut attempts = 0;
    loop {
        match run_once(config) {
            Err(e) if attempts < 3 && rewritten(&e) => {
                attempts += 1;
                config.log.warn(format_args!("{e:#}; starting over"));
            }
            done => return done,
        }
    }
}

/// Whether a backfill failed because its input was cut while it was being
/// opened. `run` is where the library's typed errors meet `anyhow`: the
/// reader's [`ReadError`] comes back here under the context added on the way.
fn rewritten(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<ReadError>(), Some(ReadError::Rewritten))
}

fn run_once(config: &Config) -> Result<()> {
    let log = &config.log;
    let Some(inputs) = open_inputs(config, log)? else {
        return Ok(());
    };
    let starts = starts(config)?;
    let mode = file_mode(&config.inputs, None)?;
    let Some(locks) = claim(config, log, mode)? else {
        return Ok(());
    };
    if config.live_only {
        return live_from(config, &locks, inputs, starts);
    }

    // A new database is built beside its final path and renamed into place
    // at the end: until then no one sees it, so it is written with no journal
    // and no syncs, and a crash leaves only a stale file that the next run
    // removes. --from-scratch does the same over an existing database, which
    // stays whole until the new one is. Adding to an existing database uses
    // WAL, as live mode does, so that its readers are never locked out.
    // Deciding which, and building, happen under the creation lock: two
    // processes finding no database must not both build one.
    let creating = config.from_scratch || !config.db.exists();
    if creating && !wait_for_creation(config, &locks, log)? {
        return Ok(());
    }
    let fresh = config.from_scratch || !config.db.exists();
    if creating && !fresh {
        // Another process made it while this one waited: add to it.
        locks.release_creation()?;
    }
    let mut kept = None;
    let (build_path, tuning, created) = if fresh {
        db::check_folder(&config.db)?;
        // Never replace a database ingestor did not make, nor lose what the
        // user added to one: it is carried into the rebuild.
        let replacing = (config.from_scratch && config.db.exists()).then_some(&*config.db);
        if let Some(old) = replacing {
            kept = Some(db::user_objects(old)?);
        }
        let mode = file_mode(&config.inputs, replacing)?;
        let tmp = scratch_path(&config.db)?;
        remove_db_files(&tmp)?;
        let id = db::create_file(&tmp, mode).map_err(|e| create_error(&config.db, &tmp, e))?;
        (tmp, &config.new_db, Some(id))
    } else {
        (config.db.clone(), &config.historical, None)
    };
    // A new database that fails half-built is removed, not left filling the
    // disk (it is never used: the next run starts it over).
    let scratch = Scratch {
        path: fresh.then(|| build_path.clone()),
    };
    let conn = match created {
        Some(id) => db::open_created(&build_path, tuning, id, log)?,
        None => db::open(&build_path, tuning, log)?,
    };
    let Backfilled {
        mut stats,
        ending,
        reach,
        pipe,
        offsets,
    } = backfill(config, log, &conn, inputs, starts, fresh)?;

    // A stop request wants a quick exit; the indexes are built at the end
    // of the next run that completes (or when live mode starts).
    if ending != Ending::Stopped {
        // The rows are final: their write to disk can overlap the index
        // build instead of all waiting for the sync before the rename.
        let writing = fresh.then(|| writeback::start(&build_path)).flatten();
        let indexing = Instant::now();
        db::create_indexes(&conn)?;
        stats.index = indexing.elapsed();
        if let Some(writing) = writing {
            let _ = writing.join();
        }
    }
    if let Some(kept) = &kept {
        db::recreate_user_objects(&conn, &config.db, kept)?;
    }

    let to_live = match ending {
        Ending::Idle => true,
        Ending::Eof => config.follow && pipe.is_none(),
        Ending::Stopped => false,
    };
    if to_live {
        db::apply(&conn, &config.live)?;
    }
    // A new database moves into place now; live mode reopens it there.
    let live_conn = if fresh {
        db::prepare_to_publish(&conn)?;
        close(conn)?;
        db::retire_wal(&config.db)?;
        // Built without syncs: make it durable before its name says it is
        // complete, and the rename after (a power loss must not leave a
        // half-written file under the final name).
        sync_file(&build_path)?;
        std::fs::rename(&build_path, &config.db).with_context(|| {
            format!(
                "cannot move the new database into place at {}",
                config.db.display()
            )
        })?;
        scratch.keep();
        locks.release_creation()?;
        // Best effort: the database is complete and in place; some file
        // systems cannot sync a folder, and a power loss now would at worst
        // bring back the old name, which the next run rebuilds or resumes.
        let dir = config.db.parent().filter(|d| !d.as_os_str().is_empty());
        let _ = sync_file(dir.unwrap_or(Path::new(".")));
        to_live
            .then(|| db::open(&config.db, &config.live, log))
            .transpose()?
    } else if to_live {
        Some(conn)
    } else {
        close(conn)?;
        None
    };
    match live_conn {
        Some(conn) => switch(config, &locks, conn, pipe, &offsets, &stats),
        None => finish(config, &stats, reach),
    }
}

/// The inputs, opened before any database is touched: a missing file fails
/// first, unless followed (`tail -F` waits for it). No input is standard
/// input. `None`: a stop came while waiting.
fn open_inputs(config: &Config, log: &Log) -> Result<Option<Vec<source::Unresolved>>> {
    if config.inputs.is_empty() {
        stdin_can_be_read()?;
        return Ok(Some(vec![source::open_input(None)?]));
    }
    let mut inputs = Vec::with_capacity(config.inputs.len());
    for path in &config.inputs {
        loop {
            if config.follow && !source::wait_for(path, log) {
                return Ok(None);
            }
            match source::open_input(Some(path)) {
                // Rotated away (deleted, not yet re-created) since it was
                // seen: wait for it again.
                Err(_) if config.follow && !path.exists() => continue,
                opened => {
                    inputs.push(opened?);
                    break;
                }
            }
        }
    }
    Ok(Some(inputs))
}

/// Refuses a standard input that cannot carry a log: `/dev/null` (what a service manager gives
/// a unit that forgot `--input`), another device, or nothing at all. Read, it would end the run
/// at once with exit 0, which a restart policy turns into a loop of empty runs. A pipe, a
/// socket, a file (`< log.jsonl`, even an empty one) and a terminal (lines typed or pasted)
/// are what someone who reads standard input means; everything else is a mistake.
fn stdin_can_be_read() -> Result<()> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileTypeExt;
    let fix = "give the log with --input PATH (a service has no standard input to read)";
    let meta = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| File::from(fd).metadata());
    let kind = match meta {
        // Closed: the Rust runtime reopens fds 0-2 on /dev/null at start-up, so this is rare.
        Err(e) => format!("cannot be read ({e})"),
        Ok(m) => {
            let t = m.file_type();
            if t.is_fifo() || t.is_socket() || t.is_file() {
                return Ok(());
            }
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Ok(());
            }
            let null = std::fs::metadata("/dev/null").map(|n| n.rdev());
            if t.is_char_device() && null.is_ok_and(|n| n == m.rdev()) {
                "/dev/null".to_owned()
            } else if t.is_char_device() {
                "a character device, not a pipe or a file".to_owned()
            } else if t.is_block_device() {
                "a block device, not a pipe or a file".to_owned()
            } else if t.is_dir() {
                "a folder".to_owned()
            } else {
                "not a pipe or a file".to_owned()
            }
        }
    };
    Err(anyhow::Error::new(crate::exit::UsageError(format!(
        "standard input is {kind}: nothing to ingest; {fix}"
    ))))
}

/// Where each input starts (flags that name an offset apply to one input).
fn starts(config: &Config) -> Result<Vec<Start>> {
    if config.inputs.is_empty() {
        return Ok(vec![Start::Resume]);
    }
    config
        .inputs
        .iter()
        .map(|path| {
            Ok(match config.start_offset {
                Some(offset) => Start::At(offset),
                None if config.start_at_end => Start::At(source::end_of_lines(path)?),
                None if config.from_scratch => Start::At(0),
                None => Start::Resume,
            })
        })
        .collect()
}

/// How long a waiting run sleeps between looks at a lock.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Takes this run's place among the database's writers: the whole database
/// for `--from-scratch`, else a share of it, and each input file for itself.
/// A file another process is ingesting ends the run (one line, exit 1), or
/// with `--follow` is waited for: a service restarting while its old process
/// still commits takes over when that one ends. `None`: a stop came first.
fn claim(config: &Config, log: &Log, mode: u32) -> Result<Option<Locks>> {
    db::check_folder(&config.db)?;
    let locks = Locks::open(&config.db, mode).with_context(|| {
        format!(
            "cannot open the lock file beside database {}",
            config.db.display()
        )
    })?;
    let db = config.db.display();
    let writer = if config.from_scratch {
        locks.try_sole_writer()?
    } else {
        locks.try_writer()?
    };
    if let Err(held) = writer {
        if config.from_scratch {
            bail!(
                "{held} is writing to {db}: --from-scratch replaces the whole database, \
                 so stop that process first"
            );
        }
        bail!("{held} is rebuilding {db} from scratch; run again once it has finished");
    }
    for path in &config.inputs {
        let key = source::canonical(path);
        let mut told = false;
        while let Err(held) = locks.try_source(&key)? {
            if !config.follow {
                bail!(
                    "{} is being ingested into {db} by {held}; one process per source \
                     (with --follow, this run would wait and take over when it ends)",
                    path.display()
                );
            }
            if !told {
                log.info(format_args!(
                    "{} is being ingested into {db} by {held}; waiting to take over when it ends",
                    path.display()
                ));
                told = true;
            }
            if !nap() {
                return Ok(None);
            }
        }
    }
    Ok(Some(locks))
}

/// Takes the creation lock, waiting while another process builds the
/// database; false if a stop came first.
fn wait_for_creation(config: &Config, locks: &Locks, log: &Log) -> Result<bool> {
    let mut told = false;
    loop {
        let Err(held) = locks.try_creation()? else {
            return Ok(true);
        };
        if !told {
            log.info(format_args!(
                "{held} is creating {}; waiting for it to finish, then adding to it",
                config.db.display()
            ));
            told = true;
        }
        if !nap() {
            return Ok(false);
        }
    }
}

/// Sleeps one lock poll; false if a stop signal came.
fn nap() -> bool {
    std::thread::sleep(LOCK_POLL);
    !signals::stop_requested()
}

/// Standard input after its backfill: its source and its reader, positioned.
type Pipe = (SourceRef, LineReader<Input>);

/// What a backfill of all the inputs did.
struct Backfilled {
    stats: Stats,
    ending: Ending,
    reach: Reach,
    /// Standard input's reader and source, to follow in-process afterwards.
    pipe: Option<Pipe>,
    /// Where each input's backfill ended.
    offsets: Vec<u64>,
}

/// Reads each input in turn into the database: every source to its end (or
/// an idle pipe), a stop signal ending them all.
fn backfill(
    config: &Config,
    log: &Log,
    conn: &Connection,
    inputs: Vec<source::Unresolved>,
    starts: Vec<Start>,
    fresh: bool,
) -> Result<Backfilled> {
    let mut done = Backfilled {
        stats: Stats::default(),
        ending: Ending::Eof,
        reach: Reach::Complete,
        pipe: None,
        offsets: Vec::new(),
    };
    let paths = config
        .inputs
        .iter()
        .map(Some)
        .chain(std::iter::repeat(None));
    for ((input, start), path) in inputs.into_iter().zip(starts).zip(paths) {
        let mut opened = input.resolve(conn, start)?;
        note_restart(log, opened.restarted.as_deref());
        if opened.rotated {
            // Only a database that already has sources knows a rotated file.
            debug_assert!(!fresh);
            let path = path.expect("only files rotate");
            match finish_rotated(config, log, conn, opened, path)? {
                Some(next) => opened = next,
                None => {
                    done.ending = Ending::Stopped;
                    break;
                }
            }
        }
        let is_pipe = matches!(opened.input, Input::Stdin(_));
        if is_pipe {
            opened.input.set_catch_up(Some(CatchUp::phase(config.idle)));
        }
        // A followed file's last line may be half-written; a pipe's is complete
        // when the pipe closes (an idle pipe ends the phase without framing it).
        let framing = if config.follow && !is_pipe {
            Framing::Follow
        } else {
            Framing::ToEof
        };
        let progress = log.progress(opened.remaining);
        let (reader, source) = positioned_reader(opened, READ_BUFFER, config.max_line);
        let mut loaded = pipeline::load(
            conn,
            source,
            reader,
            framing,
            Builder::new(config.max_line),
            config.batch_rows,
            &progress,
        )?;
        progress.finish();
        done.stats.add(&loaded.stats);
        done.ending = loaded.ending;
        done.reach = reach(&mut loaded);
        done.offsets.push(loaded.reader.offset());
        if is_pipe {
            done.pipe = Some((loaded.source, loaded.reader));
        }
        if done.ending == Ending::Stopped {
            break;
        }
    }
    Ok(done)
}

/// How far a backfill got: where a stop left it, and of how many bytes
/// (the file's size now, as it may have grown).
fn reach(loaded: &mut pipeline::Loaded<Input>) -> Reach {
    if loaded.ending != Ending::Stopped {
        return Reach::Complete;
    }
    let offset = loaded.reader.offset();
    let total = match loaded.reader.get_mut() {
        Input::File(f) => f.metadata().ok().map(|m| m.len().max(offset)),
        Input::Stdin(_) => None,
    };
    Reach::Stopped { offset, total }
}

/// Reads the file a rotation moved away to its end (it will not grow: the
/// path names its successor), then opens the file at the path as a new
/// source. Each step commits: a crash in between finds the old file again
/// and reads nothing more from it. `None` when a stop signal came first.
fn finish_rotated(
    config: &Config,
    log: &Log,
    conn: &Connection,
    opened: source::Opened,
    path: &Path,
) -> Result<Option<source::Opened>> {
    let progress = log.progress(opened.remaining);
    let (reader, source) = positioned_reader(opened, READ_BUFFER, config.max_line);
    let mut loaded = pipeline::load(
        conn,
        source,
        reader,
        Framing::ToEof,
        Builder::new(config.max_line),
        config.batch_rows,
        &progress,
    )?;
    progress.finish();
    let reach = reach(&mut loaded);
    log.info(format_args!(
        "previous file: {}",
        report::summary_of(&loaded.stats, reach, mem::peak_rss())
    ));
    if loaded.ending == Ending::Stopped {
        return Ok(None);
    }
    // Stored with its first lines (see db::writer).
    let (file, row) =
        source::successor(path).with_context(|| format!("cannot open input {}", path.display()))?;
    let remaining = file.metadata()?.len();
    Ok(Some(source::Opened {
        input: Input::File(file),
        row,
        remaining: Some(remaining),
        restarted: None,
        rotated: false,
    }))
}

fn close(conn: Connection) -> Result<()> {
    conn.close()
        .map_err(|(_, e)| e)
        .context("cannot close the database")
}

/// From the backfill to live mode: by exec for files, in-process for a pipe.
fn switch(
    config: &Config,
    locks: &Locks,
    conn: Connection,
    pipe: Option<Pipe>,
    offsets: &[u64],
    stats: &Stats,
) -> Result<()> {
    let log = &config.log;
    let summary = report::summary(stats, mem::peak_rss());
    let Some((source, mut reader)) = pipe else {
        let list: Vec<String> = offsets.iter().map(u64::to_string).collect();
        let s = if list.len() == 1 { "" } else { "s" };
        log.info_with(
            format_args!("{summary}; live from offset{s} {}", list.join(", ")),
            &stats_fields(stats),
        );
        close(conn)?;
        // One input goes on at the very offset reached; several where the
        // database says each stopped (the same places: all committed).
        let offset = match offsets {
            [one] => Some(*one),
            _ => None,
        };
        return hand_over(config, locks, offset);
    };
    log.info_with(
        format_args!("{summary}; live from offset {}", reader.offset()),
        &stats_fields(stats),
    );
    // A pipe cannot be handed over: shed the backfill's memory here.
    reader.set_resting_size(LIVE_READ_BUFFER);
    let _ = conn.release_memory();
    mem::release_heap();
    mem::reset_peak();
    log.info(format_args!(
        "live on standard input, RSS now {:.1} MiB",
        report::mib(mem::current_rss())
    ));
    go_live(
        config,
        locks,
        conn,
        vec![live::Tailed::new(reader, source, None)],
    )
}

/// Re-executes into a live follower of the inputs (at `offset` when there is
/// one input, else where the database says each stopped), or follows them in
/// this process if that fails. The locks are kept across the `exec()`.
fn hand_over(config: &Config, locks: &Locks, offset: Option<u64>) -> Result<()> {
    let log = &config.log;
    if let Err(e) = locks.keep_across_exec() {
        log.warn(format_args!(
            "cannot keep the lock file open across exec ({e}); following in this process"
        ));
    } else {
        match handover::exec_live(config, offset) {
            NotExecuted::Stopped => return Ok(()),
            NotExecuted::Failed(err) => {
                log.warn(format_args!("{err:#}; following in this process instead"))
            }
        }
    }
    let starts = match offset {
        Some(offset) => vec![Start::At(offset)],
        None => vec![Start::Resume; config.inputs.len()],
    };
    let Some(inputs) = open_inputs(config, log)? else {
        return Ok(());
    };
    live_from(config, locks, inputs, starts)
}

/// Live mode from the start, as the re-executed process runs.
fn live_from(
    config: &Config,
    locks: &Locks,
    inputs: Vec<source::Unresolved>,
    starts: Vec<Start>,
) -> Result<()> {
    let (conn, sources) = open_live(config, locks, inputs, starts)?;
    go_live(config, locks, conn, sources)
}

/// Opens the database in live settings and positions the inputs.
fn open_live(
    config: &Config,
    locks: &Locks,
    inputs: Vec<source::Unresolved>,
    starts: Vec<Start>,
) -> Result<(Connection, Vec<live::Tailed>)> {
    let log = &config.log;
    if !config.db.exists() {
        // A database made here must not race a backfill building one.
        if !wait_for_creation(config, locks, log)? {
            bail!("stopped before the database was created");
        }
        if !config.db.exists() {
            // Made here with the input's permission bits, rather than by
            // SQLite with the umask's. Should this fail (the folder is not
            // writable), opening says what matters.
            let mode = file_mode(&config.inputs, None)?;
            let _ = db::create_file(&config.db, mode);
        }
    }
    let conn = db::open(&config.db, &config.live, log);
    locks.release_creation()?;
    let conn = conn?;
    let mut sources = Vec::with_capacity(inputs.len());
    for (i, (input, start)) in inputs.into_iter().zip(starts).enumerate() {
        let opened = input.resolve(&conn, start)?;
        note_restart(log, opened.restarted.as_deref());
        let (reader, source) = positioned_reader(opened, LIVE_READ_BUFFER, config.max_line);
        let path = config.inputs.get(i).cloned();
        sources.push(live::Tailed::new(reader, source, path));
    }
    Ok((conn, sources))
}

/// Live following until the input closes or a stop signal; re-executes when
/// over the memory budget (files), or goes on in-process if that fails.
fn go_live(
    config: &Config,
    locks: &Locks,
    mut conn: Connection,
    mut sources: Vec<live::Tailed>,
) -> Result<()> {
    let log = &config.log;
    db::create_indexes(&conn)?;
    loop {
        let builder = Builder::new(config.max_line);
        let followed = live::follow(
            &conn,
            sources,
            builder,
            config.rss_budget,
            config.checkpoint,
            log,
        )?;
        close(conn)?;
        match followed.end {
            End::Closed | End::Stopped => return finish_live(log, &followed),
            End::OverBudget => {
                let offsets: Vec<String> = followed
                    .positions
                    .iter()
                    .map(|p| p.offset.to_string())
                    .collect();
                let s = if offsets.len() == 1 { "" } else { "s" };
                log.info(format_args!(
                    "re-executing at offset{s} {} to return memory",
                    offsets.join(", ")
                ));
                // One input goes on at its offset (--start-offset); several
                // where ingest_sources says, which is where they were left:
                // every position was committed.
                let offset = match &followed.positions[..] {
                    [one] => Some(one.offset),
                    _ => None,
                };
                locks.keep_across_exec()?;
                match handover::exec_live(config, offset) {
                    NotExecuted::Stopped => return finish_live(log, &followed),
                    NotExecuted::Failed(err) => {
                        log.warn(format_args!("{err:#}; following in this process instead"))
                    }
                }
                let Some(inputs) = open_inputs(config, log)? else {
                    return finish_live(log, &followed);
                };
                let starts = match offset {
                    Some(offset) => vec![Start::At(offset)],
                    None => vec![Start::Resume; inputs.len()],
                };
                (conn, sources) = open_live(config, locks, inputs, starts)?;
            }
        }
    }
}

fn finish_live(log: &Log, followed: &live::Followed) -> Result<()> {
    let (heap, heap_peak) = mem::sqlite_heap();
    let summary = report::summary(&followed.stats, mem::peak_rss());
    log.info_with(
        format_args!(
            "live: {summary}; SQLite heap {:.1} MiB (peak {:.1} MiB)",
            report::mib(heap),
            report::mib(heap_peak)
        ),
        &stats_fields(&followed.stats),
    );
    Ok(())
}

fn finish(config: &Config, stats: &Stats, reach: Reach) -> Result<()> {
    config.log.info_with(
        report::summary_of(stats, reach, mem::peak_rss()),
        &stats_fields(stats),
    );
    Ok(())
}

/// A summary's counts, as a JSON log carries them.
fn stats_fields(stats: &Stats) -> [(&'static str, u64); 6] {
    [
        ("lines", stats.lines),
        ("rows", stats.rows),
        ("bad", stats.bad),
        ("blank", stats.blank),
        ("bytes", stats.bytes),
        ("peak_rss_bytes", mem::peak_rss()),
    ]
}

fn note_restart(log: &Log, why: Option<&str>) {
    if let Some(why) = why {
        log.info(why);
    }
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| {
            let full = f.sync_all();
            sync_fallback(&f, full)
        })
        .with_context(|| format!("cannot sync {} to disk", path.display()))
}

/// `File::sync_all` is `fcntl(F_FULLFSYNC)` on Apple systems, which SMB, NFS
/// and some external volumes refuse; the finished build would then be
/// deleted for want of a sync the volume cannot do. As SQLite does there,
/// fall back to a plain `fsync()` when the full sync is not supported.
fn sync_fallback(file: &File, full: io::Result<()>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    match full {
        Err(e)
            if e.raw_os_error().is_some_and(|code| {
                [libc::ENOTSUP, libc::EOPNOTSUPP, libc::EINVAL, libc::ENOTTY].contains(&code)
            }) =>
        {
            // SAFETY: the descriptor is open for as long as `file` is
            // borrowed; fsync() only reads it.
            if unsafe { libc::fsync(file.as_raw_fd()) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        other => other,
    }
}

/// The permission bits for a new database and the files beside it: no
/// wider than the most private input, whose lines it copies (0600 for a pipe, a
/// terminal or a followed path missing for a moment), nor, for a rebuild, than the database it replaces. The owner
/// always keeps read and write; the umask narrows the result further.
fn file_mode(inputs: &[PathBuf], replacing: Option<&Path>) -> Result<u32> {
    let mut mode = 0o666;
    for path in inputs {
        mode &= match std::fs::metadata(path) {
            Ok(m) => m.mode(),
            // A followed path between a rotation's rename and its re-creation (it is
            // waited for): nothing to lend, so the owner's bits alone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0o600,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read the permissions of {}", path.display()));
            }
        };
    }
    if inputs.is_empty() {
        mode &= stdin_mode();
    }
    if let Some(old) = replacing {
        mode &= std::fs::metadata(old)
            .with_context(|| format!("cannot read the permissions of {}", old.display()))?
            .mode();
    }
    Ok(mode | 0o600)
}

/// A regular file redirected to standard input lends its bits; anything
/// else (a pipe, a terminal, a socket) gets the owner's alone.
fn stdin_mode() -> u32 {
    use std::os::fd::AsFd;
    let meta = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| File::from(fd).metadata());
    match meta {
        Ok(m) if m.is_file() => m.mode(),
        _ => 0o600,
    }
}

/// A reader over an opened source, checking as it reads that the file is
/// still the one recorded: the bytes before the position (resuming) or the
/// first bytes (from 0), so a file cut since is not read as if it were not.
fn positioned_reader(
    opened: source::Opened,
    buffer: usize,
    max_line: usize,
) -> (LineReader<Input>, SourceRef) {
    let mut reader = LineReader::new(opened.input, opened.row.offset, buffer, max_line);
    reader.seed_first(&opened.row.head);
    reader.seed_tail(&opened.row.tail);
    reader.expect_head(&opened.row.head);
    (reader, SourceRef::from(opened.row))
}

/// Removes a new database's build file when dropped, unless kept.
struct Scratch {
    path: Option<PathBuf>,
}

impl Scratch {
    fn keep(mut self) {
        self.path = None;
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = remove_db_files(path);
        }
    }
}

/// `DB.building` beside the database, in its folder with symbolic links
/// resolved, so that SQLite can be told to follow none at the name itself.
fn scratch_path(db: &Path) -> Result<PathBuf> {
    let Some(name) = db.file_name() else {
        bail!("--db {} does not name a file", db.display());
    };
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("cannot open the folder of {}", db.display()))?;
    let mut name = name.to_owned();
    name.push(".building");
    Ok(dir.join(name))
}

/// Why the build file could not be made.
fn create_error(db: &Path, path: &Path, e: io::Error) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::AlreadyExists => anyhow!(
            "{} appeared while ingestor was starting to build {} (another ingestor building \
             the same database?); left as it is",
            path.display(),
            db.display()
        ),
        io::ErrorKind::PermissionDenied => anyhow!(
            "cannot create database {}: folder {} is not writable",
            db.display(),
            path.parent().unwrap_or(Path::new(".")).display()
        ),
        _ => anyhow!(e).context(format!("cannot create {}", path.display())),
    }
}

/// Removes a database file with its journal, as a stale build leaves them.
fn remove_db_files(path: &Path) -> Result<()> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        remove_own_file(Path::new(&name))?;
    }
    Ok(())
}

/// Removes a file a build leaves, if it is a regular file of ours. In a
/// folder others can write (`/tmp`), anyone can plant a name there: a
/// symbolic link or another user's file is refused, never followed or
/// removed.
fn remove_own_file(path: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other.with_context(|| format!("cannot remove {}", path.display()))?,
    };
    if meta.file_type().is_symlink() {
        bail!(
            "{} is a symbolic link where ingestor builds a new database: refusing to follow \
             or remove it (remove it yourself if it is yours)",
            path.display()
        );
    }
    if !meta.is_file() {
        bail!(
            "{} is not a regular file where ingestor builds a new database: refusing to \
             remove it",
            path.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "{} belongs to another user (uid {}) where ingestor builds a new database: \
             refusing to remove it",
            path.display(),
            meta.uid()
        );
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sync_the_volume_refuses_falls_back_to_fsync() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = File::create(dir.path().join("f")).expect("create");
        for code in [libc::ENOTSUP, libc::EOPNOTSUPP, libc::EINVAL, libc::ENOTTY] {
            let refused = Err(io::Error::from_raw_os_error(code));
            sync_fallback(&file, refused).unwrap_or_else(|e| panic!("errno {code}: {e}"));
        }
        // Any other failure is a real one.
        let failed = sync_fallback(&file, Err(io::Error::from_raw_os_error(libc::EIO)));
        assert_eq!(failed.expect_err("EIO").raw_os_error(), Some(libc::EIO));
        sync_fallback(&file, Ok(())).expect("a sync that worked");
    }

    #[test]
    fn file_mode_is_no_wider_than_the_input_and_the_old_database() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let at = |name: &str, mode: u32| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"x").expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        let private = at("private", 0o600);
        let group = at("group", 0o640);
        let open = at("open", 0o755);
        let one = |p: &PathBuf| vec![p.clone()];
        assert_eq!(file_mode(&one(&private), None).expect("mode"), 0o600);
        assert_eq!(file_mode(&one(&group), None).expect("mode"), 0o640);
        assert_eq!(file_mode(&one(&open), None).expect("mode"), 0o644);
        assert_eq!(file_mode(&one(&open), Some(&group)).expect("mode"), 0o640);
        // Several inputs: the most private wins.
        let both = vec![open.clone(), private.clone()];
        assert_eq!(file_mode(&both, None).expect("mode"), 0o600);
        // A followed path missing for a moment (a rotation's gap) lends the owner's bits.
        let gone = dir.path().join("rotated-away");
        assert_eq!(file_mode(&one(&gone), None).expect("mode"), 0o600);
        // The owner keeps read and write whatever the input's bits.
        let odd = at("odd", 0o044);
        assert_eq!(file_mode(&one(&odd), None).expect("mode"), 0o644);
    }
}
