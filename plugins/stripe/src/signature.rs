//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=...]`
//! where each `v1` is HMAC-SHA256 keyed with the endpoint secret (the `whsec_...` string as
//! it is) over `"<t>.<raw body>"`. Checked on the raw bytes, before anything is parsed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far the signed time may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    NoV1,
    Stale,
    Future,
    Mismatch,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Missing => "Missing Stripe-Signature header.",
            Refusal::Malformed => "Malformed Stripe-Signature header.",
            Refusal::NoV1 => "No v1 signature in the Stripe-Signature header.",
            Refusal::Stale => "The Stripe-Signature timestamp is too old.",
            Refusal::Future => "The Stripe-Signature timestamp is in the future.",
            Refusal::Mismatch => "No signature matches the webhook secret.",
        }
    }
}

/// Verifies `header` over `body` against any of `secrets` at time `now`. `v0` (and any
/// other scheme) is ignored; any `v1` matching any secret passes (Stripe sends several
/// while a secret is rolled).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::Missing)?;
    let mut t: Option<&str> = None;
    let mut v1: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(Refusal::Malformed)?;
        match k {
            "t" if t.is_none() => t = Some(v),
            "t" => return Err(Refusal::Malformed),
            "v1" => {
                // a v1 that is not hex can never match; skip it like a wrong one
                if let Some(bytes) = hex(v) {
                    v1.push(bytes)
                }
            }
            _ => {}
        }
    }
    let t_str = t.ok_or(Refusal::Malformed)?;
    let ts: i64 = t_str.parse().map_err(|_| Refusal::Malformed)?;
    if v1.is_empty() {
        return Err(Refusal::NoV1);
    }
    if now - ts > TOLERANCE_SECS {
        return Err(Refusal::Stale);
    }
    if ts - now > TOLERANCE_SECS {
        return Err(Refusal::Future);
    }
    for secret in secrets {
        for sig in &v1 {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                continue;
            };
            mac.update(t_str.as_bytes());
            mac.update(b".");
            mac.update(body);
            // constant time
            if mac.verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(Refusal::Mismatch)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Signs like Stripe does (for the unit tests; the end-to-end tests sign with their own,
/// independent implementation in `tests/src/stripe.rs`).
#[cfg(test)]
fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "whsec_test_secret";

    #[test]
    fn cases() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = sign(S, now, body);
        let secrets = vec![S.to_string()];
        assert_eq!(verify(Some(&good), body, &secrets, now), Ok(()));
        assert_eq!(verify(None, body, &secrets, now), Err(Refusal::Missing));
        assert_eq!(
            verify(Some(&good), br#"{"id":"evt_2"}"#, &secrets, now),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body, &["whsec_other".into()], now),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body, &secrets, now + 301),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify(Some(&good), body, &secrets, now - 301),
            Err(Refusal::Future)
        );
        assert_eq!(verify(Some(&good), body, &secrets, now + 300), Ok(()));
        let v0 = good.replace("v1=", "v0=");
        assert_eq!(verify(Some(&v0), body, &secrets, now), Err(Refusal::NoV1));
        let sig = good.split("v1=").nth(1).unwrap();
        let two = format!("t={now},v1={},v1={sig}", "ab".repeat(32));
        assert_eq!(verify(Some(&two), body, &secrets, now), Ok(()));
        // rotation: the second secret matches
        let rotated = vec!["whsec_new".to_string(), S.to_string()];
        assert_eq!(verify(Some(&good), body, &rotated, now), Ok(()));
        assert_eq!(
            verify(Some("garbage"), body, &secrets, now),
            Err(Refusal::Malformed)
        );
        assert_eq!(
            verify(
                Some(&format!("t={now},t={now},v1={sig}")),
                body,
                &secrets,
                now
            ),
            Err(Refusal::Malformed)
        );
    }
}
