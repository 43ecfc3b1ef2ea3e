//! Fuzzes the filter/rule parser and the printer: any input must parse or fail cleanly (no
//! panic, no stack overflow), and a parsed tree must print to text that parses back to the
//! same tree.
//!
//! Run: `cd app/fuzz && cargo +nightly fuzz run filter_parser` (needs cargo-fuzz).
#![no_main]

use ferrobase::query::parser::{Limits, parse, parse_with_limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match parse(input) {
        Ok(expr) => {
            // Canonical text can be longer than the input (spaces around operators), so the
            // re-parse lifts the length limit.
            let printed = expr.to_string();
            let limits = Limits {
                max_len: usize::MAX,
                ..Limits::default()
            };
            let again = parse_with_limits(&printed, limits).expect("printed trees re-parse");
            assert_eq!(again, expr, "printed: {printed:?}");
            assert_eq!(again.to_string(), printed, "printing is stable");
        }
        Err(err) => assert!(input.is_char_boundary(err.pos) && err.pos <= input.len()),
    }
});
