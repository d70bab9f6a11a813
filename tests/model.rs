//! The shared model of the contract (`crates/contract-model`) against the binary, on what only
//! that model can judge: nested values that are balanced but not valid JSON.
//!
//! The integration tests' oracle and the fuzzer used to be two models that disagreed here (the
//! oracle let serde_json judge the whole line, so `{"x":[1,,2]}` was a bad line to it; the
//! fuzzer, like schema.md, only asked for balance). Both now use the one model; this pins that
//! the binary, through real files, agrees with it on many such lines, and that the lines are the
//! ones serde_json alone would get wrong (so the test cannot pass on valid JSON only).

use contract_model::{Outcome, Value};

use crate::oracle;
use crate::util::Dir;

const DB: &str = "nested.db";

/// splitmix64: the lines depend on the seed alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// What goes between brackets: valid members, members only balance accepts (`,,`, a key
/// without a value, a bare word), strings holding brackets, quotes and backslashes, invalid
/// escapes (a nested string is not decoded), and now and then a stray bracket.
const INSIDE: &[&str] = &[
    "1",
    "\"a\"",
    "null",
    ",",
    ",,",
    "\"k\":",
    "\"k\":1",
    "x",
    "1e400",
    "\"]\"",
    "\"}\"",
    "\"\\\"]\"",
    "\"\\\\\"",
    "\"\\ud800\"",
    "\"\\x\"",
    "\"[{\"",
    " ",
    "\t",
    ":",
];
const STRAY: &[&str] = &["]", "}", "[", "{", "\""];

fn nested(rng: &mut Rng, depth: usize, out: &mut String) {
    let object = rng.below(2) == 0;
    out.push(if object { '{' } else { '[' });
    for _ in 0..rng.below(4) {
        if depth < 3 && rng.below(4) == 0 {
            nested(rng, depth + 1, out);
        } else {
            out.push_str(rng.pick(INSIDE));
        }
    }
    if rng.below(25) == 0 {
        out.push_str(rng.pick(STRAY));
    }
    out.push(if object { '}' } else { ']' });
}

/// One envelope with nested values at the top level and inside metadata (raw and as a string).
fn line(rng: &mut Rng) -> String {
    let mut v = String::new();
    nested(rng, 0, &mut v);
    let mut meta = String::from("{\"pid\":5,\"x\":");
    nested(rng, 0, &mut meta);
    meta.push('}');
    match rng.below(3) {
        0 => format!(r#"{{"event":"e","x":{v},"pid":1}}"#),
        1 => format!(r#"{{"event":"e","metadata":{meta},"pid":1,"y":{v}}}"#),
        _ => {
            let escaped = serde_json::to_string(&meta).expect("a string");
            format!(r#"{{"event":"e","metadata":{escaped},"pid":1}}"#)
        }
    }
}

#[test]
fn balanced_nested_values_agree_with_the_binary() {
    let mut rng = Rng(0x6e65_7374);
    let lines: Vec<String> = (0..4000).map(|_| line(&mut rng)).collect();
    let input = lines.join("\n") + "\n";

    // The lines are the ones that matter: rows serde_json rejects, and unbalanced bad lines.
    let (mut rows_serde_rejects, mut unbalanced) = (0, 0);
    let (mut meta_balanced_only, mut meta_fallback) = (0, 0);
    for l in &lines {
        let Outcome::Row(r) = contract_model::line(l.as_bytes()) else {
            unbalanced += 1;
            continue;
        };
        if serde_json::from_str::<serde_json::Value>(l).is_err() {
            rows_serde_rejects += 1;
        }
        if let Value::Text(meta) = &r.metadata {
            match r.meta_pid {
                Value::Integer(5) if serde_json::from_str::<serde_json::Value>(meta).is_err() => {
                    meta_balanced_only += 1
                }
                Value::Integer(1) => meta_fallback += 1,
                _ => {}
            }
        }
    }
    println!(
        "{} lines: {rows_serde_rejects} rows serde_json rejects, {unbalanced} bad lines; \
         metadata: {meta_balanced_only} objects only by balance, {meta_fallback} not objects",
        lines.len()
    );
    assert!(rows_serde_rejects > 1000, "too few balanced-only rows");
    assert!(unbalanced > 50, "too few unbalanced lines");
    assert!(
        meta_balanced_only > 200,
        "too few balanced-only metadata objects"
    );
    assert!(
        meta_fallback > 20,
        "too few metadata texts that are not objects"
    );

    let dir = Dir::new();
    let path = dir.create("in.jsonl", input.as_bytes());
    dir.command()
        .arg("--input")
        .arg(&path)
        .arg("--db")
        .arg(dir.path(DB))
        .assert_ok();
    let db = dir.db(DB);
    db.assert_integrity();
    let exp = oracle::expect(input.as_bytes());
    if let Err(report) = oracle::check(input.as_bytes(), &exp, &db.rows(), &db.bad_lines()) {
        panic!("the binary and the model disagree on nested values:\n{report}");
    }
}
