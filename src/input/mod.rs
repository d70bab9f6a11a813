//! Input: where lines come from. Owns the line buffer and its framing
//! ([`reader`]), and the sources behind it: opening a file or stdin, recognising
//! a file seen before by its fingerprint, and where reading starts ([`source`]).
//!
//! May call `sys` (stop signals), `scan` (only the blank-line test), `report`
//! (the logging handle) and `db` (the stored positions a source resumes
//! from). Knows nothing of SQL.

pub mod reader;
pub mod source;
