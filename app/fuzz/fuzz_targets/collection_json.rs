//! Collection JSON (create/update bodies, imports): any JSON either gives validation errors or
//! a collection whose DDL SQLite accepts and whose JSON reads back.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok((mut c, errors)) = ferrobase::schema::Collection::from_json(&v) else { return };
    if !errors.is_empty() {
        return;
    }
    c.normalize();
    let conn = ferrobase::db::Conn::open_in_memory().expect("sqlite");
    match ferrobase::schema::store::validate(&conn, &c, None, &[]) {
        Ok(e) if e.is_empty() => {}
        _ => return,
    }
    let json = c.to_json_with_secrets();
    let _ = serde_json::to_string(&json).expect("serialisable");
    if let Ok(statements) = ferrobase::schema::ddl::create_statements(&c) {
        for s in statements {
            if let Err(e) = conn.execute_batch(&s) {
                // Validation accepted it, so its DDL must be valid.
                panic!("DDL of an accepted collection fails: {e}\n{s}\n{json}");
            }
        }
    }
});
