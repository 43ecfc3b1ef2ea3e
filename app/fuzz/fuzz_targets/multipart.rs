//! Multipart record bodies with `@jsonPayload`: the first bytes choose the boundary, the rest
//! is the body; reading it either fails with an error or gives a JSON object and uploads.
#![no_main]
use libfuzzer_sys::fuzz_target;

use axum::extract::FromRequest;

fuzz_target!(|data: &[u8]| {
    let (boundary, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) if i > 0 && i <= 70 => (&data[..i], &data[i + 1..]),
        _ => (&b"XyZ"[..], data),
    };
    let Ok(boundary) = std::str::from_utf8(boundary) else { return };
    let Ok(req) = axum::http::Request::builder()
        .method("POST")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(axum::body::Body::from(body.to_vec()))
    else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async move {
        let Ok(mp) = axum::extract::Multipart::from_request(req, &()).await else { return };
        if let Ok(ferrobase::api::extract::RecordBody(map, uploads)) =
            ferrobase::api::extract::read_multipart(mp).await
        {
            let _ = serde_json::to_string(&map).expect("serialisable");
            let _ = uploads.len();
        }
    });
});
