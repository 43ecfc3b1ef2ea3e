//! Fuzzes the filter/rule parser and the printer: any input must parse or fail cleanly, and a
//! parsed tree must print to text that parses back to the same tree.
//!
//! Run: `cd app/fuzz && cargo +nightly fuzz run filter_parser` (needs cargo-fuzz).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(expr) = ferrobase::query::fexpr::parse(s)
    {
        let printed = expr.to_string();
        // The printed form may be longer than the input (added spaces and parentheses); only
        // re-parse it when it fits the length limit.
        if printed.len() <= ferrobase::query::fexpr::MAX_LEN {
            let again = ferrobase::query::fexpr::parse(&printed).expect("printed trees re-parse");
            assert_eq!(again, expr);
        }
    }
});
