//! `filter=` and API rules: any text either fails to parse/compile with an error, or compiles
//! to SQL that prepares, binds and runs on the fixture tables, for guests, users and
//! superusers, as a client filter and as a trusted rule.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let w = ferrobase_fuzz::world();
    let Ok(expr) = ferrobase::query::fexpr::parse(text) else { return };
    for request in ferrobase_fuzz::requests(&w) {
        for (trusted, superuser) in [(false, false), (true, false), (false, true)] {
            let env = ferrobase_fuzz::env(&w, &request, trusted, superuser);
            for table in ["posts", "users", "comments"] {
                let c = w.registry.get(table).expect("fixture");
                if let Ok(frag) = ferrobase::query::compile::compile(&expr, &c, "m", &env) {
                    ferrobase_fuzz::run(&w, table, &frag, &[]);
                }
            }
        }
    }
});
