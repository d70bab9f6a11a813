//! What happens to a followed file behind our back, noticed the way `tail -F`
//! does: by looking, with portable `stat` and `pread`, while caught up.
//!
//! - Rotation by rename, or delete and re-create: the path names another
//!   file. The old one is read to its end first; once it has stopped growing
//!   for [`SETTLE`] (a writer may still hold it open for a last line), the new
//!   file is taken from offset 0.
//! - Copy-truncate, or a rewrite in place: the file is shorter than the read
//!   position, or its bytes just before it changed. What was not read yet is
//!   read from the copy beside it, if there is one (see
//!   [`source::find_previous`]), then the file again from 0. Lines written
//!   between the end of the copy and the truncation are in neither file, and
//!   a file truncated and refilled past the read position between two looks
//!   cannot be told from one that grew.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::db::SourceRow;
use crate::input::source::{self, Previous};
use crate::report::Log;
use crate::sys::file_id::FileId;

/// How often the path is looked up.
pub const LOOK_EVERY: Duration = Duration::from_millis(100);
/// How long a rotated-away file must stay unchanged before it is left.
pub const SETTLE: Duration = Duration::from_millis(500);

pub enum Event {
    /// Nothing changed that needs action.
    Quiet,
    /// The file was cut below the read position: read it again from 0 (the
    /// same file, a new source), after reading on in `copy` if one holds the
    /// content that was cut (logrotate's copytruncate leaves one).
    Cut {
        why: String,
        copy: Option<Previous>,
        file: File,
        row: SourceRow,
    },
    /// The path names a new file and the old one is finished: move to it.
    /// `copy` tells whether the file left is a copy read after a cut.
    Rotated {
        file: File,
        row: SourceRow,
        copy: bool,
    },
}

/// A file the path has named since the one being read, opened as soon as
/// seen (so that one rotated away again before its turn is not lost).
struct Next {
    file: File,
    /// Its source, from offset 0 (not stored yet).
    row: SourceRow,
    id: FileId,
    seen: Instant,
}

pub struct Watch {
    path: PathBuf,
    /// The file being read.
    reading: FileId,
    size: u64,
    /// The first bytes of the file being read, kept to recognise a copy of
    /// it once it has been cut.
    head: Vec<u8>,
    grew: Instant,
    /// When the file was last seen uncut: a copy of it made for a
    /// copytruncate is written after that.
    seen_whole: SystemTime,
    looked: Instant,
    /// Files the path has named since, oldest first.
    next: VecDeque<Next>,
    /// The file being read is a finished copy: no need to wait for it to
    /// settle before moving on.
    finished: bool,
    /// A problem already reported, so that it is reported once.
    told: Option<String>,
}

impl Watch {
    pub fn new(path: &Path, file: &File) -> io::Result<Watch> {
        let meta = file.metadata()?;
        Ok(Watch {
            path: path.to_owned(),
            reading: FileId::of(&meta),
            size: meta.len(),
            head: source::read_at(file, 0, source::HEAD_LEN)?,
            grew: Instant::now(),
            seen_whole: SystemTime::now(),
            looked: Instant::now(),
            next: VecDeque::new(),
            finished: false,
            told: None,
        })
    }

    /// Starts watching `file`, now being read (after an [`Event`] has been
    /// acted on: until then the same event comes again).
    pub fn moved_to(&mut self, file: &File) -> io::Result<()> {
        let meta = file.metadata()?;
        let id = FileId::of(&meta);
        if self.next.front().is_some_and(|n| n.id == id) {
            self.next.pop_front();
        }
        self.reading = id;
        self.size = meta.len();
        self.head = source::read_at(file, 0, source::HEAD_LEN)?;
        self.grew = Instant::now();
        self.told = None;
        self.finished = false;
        Ok(())
    }

    /// Reads on in `copy` (same content as the cut file up to the position),
    /// then goes back to the cut file, now at `file`, from 0 as `row`.
    pub fn reading_copy(&mut self, copy: &File, file: File, row: SourceRow) -> io::Result<()> {
        let id = FileId::of_file(&file)?;
        self.moved_to(copy)?;
        self.finished = true;
        self.next.push_front(Next {
            file,
            row,
            id,
            seen: Instant::now(),
        });
        Ok(())
    }

    /// Looks at the path, at most every [`LOOK_EVERY`]; cheap enough to call
    /// between any two lines.
    pub fn look(&mut self, log: &Log) -> Result<()> {
        if self.looked.elapsed() < LOOK_EVERY {
            return Ok(());
        }
        self.looked = Instant::now();
        let now = match FileId::at(&self.path) {
            Ok(id) => id,
            Err(_) => {
                if self.next.is_empty() {
                    self.tell(
                        log,
                        format!(
                            "{} was removed; reading what is left of it and waiting for a new file there",
                            self.path.display()
                        ),
                    );
                }
                return Ok(());
            }
        };
        if now == self.reading || self.next.iter().any(|n| n.id == now) {
            return Ok(());
        }
        match source::successor(&self.path) {
            Ok((file, row)) => {
                let id = FileId::of_file(&file)?;
                self.next.push_back(Next {
                    file,
                    row,
                    id,
                    seen: Instant::now(),
                });
            }
            Err(e) => self.tell(
                log,
                format!(
                    "{} names a new file that cannot be read yet ({e}); still waiting",
                    self.path.display()
                ),
            ),
        }
        Ok(())
    }

    /// Looks at the file being read, caught up: lines taken up to `offset`,
    /// after the bytes `tail`, and `read_to` bytes read in all.
    pub fn check(
        &mut self,
        file: &File,
        read_to: u64,
        offset: u64,
        tail: &[u8],
        log: &Log,
    ) -> Result<Event> {
        let len = file.metadata()?.len();
        if len != self.size {
            let head_now = source::read_at(file, 0, self.head.len())?;
            if head_now != self.head || source::cut_before(file, len, read_to, offset, tail)? {
                let why = if len < read_to {
                    format!("was truncated to {len} bytes, below the position read ({read_to})")
                } else {
                    format!("was rewritten before the position read ({offset})")
                };
                return self.cut(file, &why, offset, tail, &self.head);
            }
            if self.head.len() < source::HEAD_LEN {
                self.head = source::read_at(file, 0, source::HEAD_LEN)?;
            }
            self.size = len;
            self.grew = Instant::now();
        }
        self.seen_whole = SystemTime::now();
        self.look(log)?;
        let settled = self.grew.elapsed() >= SETTLE;
        match self.next.front() {
            Some(next) if self.finished || (settled && next.seen.elapsed() >= SETTLE) => {
                Ok(Event::Rotated {
                    file: next.file.try_clone()?,
                    row: next.row.clone(),
                    copy: self.finished,
                })
            }
            _ => Ok(Event::Quiet),
        }
    }

    /// What to do about `file`, found cut (`why`) while read up to `offset`
    /// (after the bytes `tail`) from a start of `head`: read on in a copy of
    /// the old content if there is one, then the file again from 0.
    pub fn cut(
        &self,
        file: &File,
        why: &str,
        offset: u64,
        tail: &[u8],
        head: &[u8],
    ) -> Result<Event> {
        let was = SourceRow {
            head: head.to_vec(),
            offset,
            tail: tail.to_vec(),
            ..SourceRow::default()
        };
        let copy = source::find_previous(&self.path, &was, self.reading, Some(self.seen_whole));
        let file = file.try_clone()?;
        let row = source::row_from_start(&self.path, &file)?;
        Ok(Event::Cut {
            why: format!("{} {why}", self.path.display()),
            copy,
            file,
            row,
        })
    }

    fn tell(&mut self, log: &Log, msg: String) {
        if self.told.as_ref() != Some(&msg) {
            log.info(&msg);
            self.told = Some(msg);
        }
    }
}
