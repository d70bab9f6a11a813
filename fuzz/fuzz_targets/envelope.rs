//! Differential fuzz target: arbitrary bytes as ONE line through `ingestor`'s
//! line → row path (`batch::Builder::push`) against the serde_json oracle of
//! `src/lib.rs`. Inputs holding a `\n` are skipped (they are not one line).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ingestor_fuzz::check(data);
});
