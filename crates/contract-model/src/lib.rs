//! An independent model of `ingestor`'s output contract (`shared/spec/schema.md`), built on
//! `serde_json` and SQLite's own type affinity. It is what the integration tests (`tests/oracle`)
//! and the differential fuzzer (`fuzz/`) both compare the binary with, so the two can never
//! disagree on what the contract says.
//!
//! Nothing here calls `ingestor`: a model that shared the scanner would agree with every bug of
//! it. Given one line, [`line`] says whether it is blank, a bad line (and why) or a row (every
//! column as SQLite stores it); [`frame`] cuts a whole input into lines as the contract does.
//!
//! Parsing strategy. `serde` is not a dependency, so no custom `Deserialize` is written, and
//! `serde_json::Map` folds duplicate keys. Instead the top level is walked by hand, and every key
//! and every scalar value is lexed and decoded by a `serde_json` stream deserializer (grammar,
//! escapes, UTF-8, numbers, literals; a string must decode to a Rust `String`, which rejects lone
//! surrogates). The hand-written part only steps over white space, `{`, `:`, `,` and `}`, and
//! judges a nested object or array by the contract's rule, which is not serde_json's: it need
//! only be *balanced* (brackets matched by kind outside strings; a `\` in a string takes the next
//! character), since it is kept raw. The same rule decides whether a metadata text is a JSON
//! object (schema.md, settled readings).

mod affinity;
mod check;
mod frame;
mod object;
mod row;

pub use affinity::{integer_affinity, is_integer_beyond_i64};
pub use check::self_check;
pub use frame::{Framed, frame};
pub use object::{Member, Members, last, parse_object};
pub use row::{INTEGER_COLUMNS, KNOWN_KEYS, Outcome, Row, is_blank, line};

/// SQLite values, as the model states them and as `rusqlite` reads them back.
pub use rusqlite::types::Value;

#[cfg(test)]
mod tests;
