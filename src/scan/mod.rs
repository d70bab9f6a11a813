//! Scan: from one framed line to one row. [`json`] holds the lexical pieces
//! ([`unescape`] decodes string bodies; `lanes` is the vector unit both use),
//! [`envelope`] reads a line's top-level keys without building a tree, and
//! [`batch`] turns each envelope into a row of cells in a reusable arena.
//!
//! Pure byte work: no I/O, no SQLite. May call only `input::reader` for the
//! [`Line`](crate::input::reader::Line) it is handed.

pub mod batch;
pub mod envelope;
pub mod json;
mod lanes;
pub mod unescape;
