//! `fields=` (with `:excerpt(n, bool)`): picking from a nested record never panics, and the
//! result is still JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let record = json!({"id": "p1", "title": "<p>Hello <b>world</b> and more</p>", "n": 1,
        "expand": {"author": {"id": "u1", "name": "Ann", "expand": {"team": [{"id": "t1", "name": "x"}]}}}});
    let picked = ferrobase::api::fields::pick(record.clone(), Some(text));
    let _ = serde_json::to_string(&picked).expect("serialisable");
    let _ = ferrobase::api::fields::pick_all(vec![record.clone(), record], Some(text));
});
