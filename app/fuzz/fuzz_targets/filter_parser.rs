//! Fuzzes the filter/rule parser and the printer: any input must parse or fail cleanly, and a
//! parsed tree must print to text that parses back to the same tree.
//!
//! Run: `cd app/fuzz && cargo fuzz run filter_parser` (needs a nightly toolchain).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(expr) = ferrobase::query::fexpr::parse(s)
    {
        let printed = expr.to_string();
        let again = ferrobase::query::fexpr::parse(&printed).expect("printed trees re-parse");
        assert_eq!(again, expr);
    }
});
