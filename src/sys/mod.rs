//! Sys: the process and the operating system, kept apart from the pipeline.
//! [`mem`] (resident memory and the allocator), [`signals`] (stop requests),
//! [`lock`] (which process may write which source, by `fcntl` locks),
//! [`file_id`] (which file this is: device and inode), [`writeback`]
//! (starting a file's write to disk early) and [`failpoint`] (failure
//! injection for the tests).
//!
//! Calls nothing else in the crate.

pub mod failpoint;
pub mod file_id;
pub mod lock;
pub mod mem;
pub mod signals;
pub mod writeback;
