//! INTEGER columns as SQLite stores them, decided by SQLite itself.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::Connection;
use rusqlite::types::Value;

/// Whether `text` is a decimal integer (`-?[0-9]+`, leading zeros allowed) that does not fit 64
/// bits: schema.md stores it as its exact text, which only a BLOB keeps (SQLite turns
/// integer-looking TEXT into a rounded REAL).
pub fn is_integer_beyond_i64(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && text.parse::<i64>().is_err()
}

/// What SQLite stores when `text` is bound as TEXT into an INTEGER-affinity column, computed on
/// an in-memory table (one per thread, memoised for short texts).
pub fn integer_affinity(text: &str) -> Value {
    // The canonical spelling of an i64 is stored as that integer (SQLite documents it): no
    // round trip for the common case.
    if let Ok(v) = text.parse::<i64>()
        && v.to_string() == text
    {
        return Value::Integer(v);
    }
    thread_local! {
        static AFF: RefCell<(Connection, HashMap<String, Value>)> = RefCell::new({
            let conn = Connection::open_in_memory().expect("in-memory sqlite");
            conn.execute_batch("CREATE TABLE t(v INTEGER)").expect("create");
            (conn, HashMap::new())
        });
    }
    AFF.with(|aff| {
        let (conn, cache) = &mut *aff.borrow_mut();
        if let Some(v) = cache.get(text) {
            return v.clone();
        }
        conn.execute("DELETE FROM t", []).expect("delete");
        conn.execute("INSERT INTO t(v) VALUES (?1)", [text])
            .expect("insert");
        let v: Value = conn
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .expect("select");
        // Bounded: a fuzzer feeds millions of distinct texts.
        if text.len() < 256 {
            if cache.len() > 100_000 {
                cache.clear();
            }
            cache.insert(text.to_owned(), v.clone());
        }
        v
    })
}

/// INTEGER column rule: no text → NULL; a decimal integer outside i64 → the BLOB of its exact
/// text; anything else → what SQLite's INTEGER affinity makes of the text.
pub(crate) fn integer_cell(text: Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(t) if is_integer_beyond_i64(&t) => Value::Blob(t.into_bytes()),
        Some(t) => integer_affinity(&t),
    }
}
