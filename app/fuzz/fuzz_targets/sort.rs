//! `sort=`: compiles to ORDER BY terms that run, or fails with an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let w = ferrobase_fuzz::world();
    let all = ferrobase::query::compile::Frag { sql: "1".into(), values: vec![] };
    for request in ferrobase_fuzz::requests(&w) {
        for superuser in [false, true] {
            let env = ferrobase_fuzz::env(&w, &request, false, superuser);
            for table in ["posts", "users"] {
                let c = w.registry.get(table).expect("fixture");
                if let Ok(terms) = ferrobase::query::compile::compile_sort(text, &c, "m", &env) {
                    ferrobase_fuzz::run(&w, table, &all, &terms);
                }
            }
        }
    }
});
