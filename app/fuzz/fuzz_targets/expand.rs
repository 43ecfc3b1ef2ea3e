//! `expand=`: any spec parses into a tree of bounded depth, and expanding it over the
//! fixture's relations (back-relations included) never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let tree = ferrobase::records::expand::Tree::parse(text);
    let w = ferrobase_fuzz::world();
    for superuser in [false, true] {
        let mut caller = ferrobase::records::ops::Caller::guest();
        if superuser {
            caller = ferrobase::records::ops::Caller::system();
        }
        for table in ["posts", "comments", "users"] {
            let c = w.registry.get(table).expect("fixture");
            let Ok(rows) = ferrobase::records::find_where(
                &w.conn,
                &c,
                ferrobase::query::compile::Frag { sql: "1".into(), values: vec![] },
                10,
            ) else {
                panic!("fixture rows");
            };
            if let Ok(out) = ferrobase::records::expand::expand(&w.conn, &w.registry, &caller, &c, rows, &tree) {
                for e in &out {
                    let _ = ferrobase::records::expand::render(&w.registry, e, &caller);
                }
            }
        }
    }
});
