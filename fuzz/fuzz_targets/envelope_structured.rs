//! Structure-aware variant of `envelope`: the fuzz bytes drive a grammar of
//! envelopes (`ingestor_fuzz::structured`), and the line it builds goes
//! through the same differential check.
#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    if let Ok(line) = ingestor_fuzz::structured::line(&mut u) {
        ingestor_fuzz::check(&line);
    }
});
