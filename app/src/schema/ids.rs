//! Identifiers and timestamps in PocketBase's formats.

use rand::Rng;
use rand::distr::Alphanumeric;

const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A random string of `len` characters from `[a-z0-9]`, PocketBase's default record id pattern.
pub fn random_id(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

/// A new 15-character record id.
pub fn record_id() -> String {
    random_id(15)
}

/// A random alphanumeric (`[a-zA-Z0-9]`) string, used for secrets and token keys.
pub fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// PocketBase's collection id: `pbc_` + CRC-32 (IEEE) of `type + name`, in decimal.
pub fn collection_id(kind: &str, name: &str) -> String {
    let mut h = crc32fast::Hasher::new();
    h.update(kind.as_bytes());
    h.update(name.as_bytes());
    format!("pbc_{}", h.finalize())
}

/// PocketBase's field id: the field type + CRC-32 (IEEE) of the field name.
pub fn field_id(kind: &str, name: &str) -> String {
    format!("{kind}{}", crc32fast::hash(name.as_bytes()))
}

/// The current time in PocketBase's datetime format: `2026-11-24 07:28:18.323Z`.
pub fn now() -> String {
    format_datetime(chrono::Utc::now())
}

/// Formats a UTC instant as `YYYY-MM-DD HH:MM:SS.mmmZ`.
///
/// Written field by field: chrono's `format` parses its format string on every call, which
/// showed in profiles of creates (two autodates each). Years outside 0..=9999, which the
/// fixed-width form cannot hold, and leap seconds go through chrono's formatter.
pub fn format_datetime(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let year = t.year();
    if !(0..=9999).contains(&year) || t.nanosecond() >= 1_000_000_000 {
        return t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string();
    }
    let mut out = String::with_capacity(24);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}Z",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 1_000_000
    );
    out
}

/// Parses the datetime forms PocketBase accepts (its own format, RFC 3339 with any offset,
/// a date without time) and returns the instant in UTC.
pub fn parse_datetime(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let replaced = s.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&replaced) {
        return Some(t.with_timezone(&Utc));
    }
    let trimmed = s.trim_end_matches('Z');
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_formatted_as_chrono_formats_them() {
        use chrono::{TimeZone, Utc};
        let chrono_fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string();
        let mut rng = rand::rng();
        for _ in 0..2000 {
            let secs = rng.random_range(-70_000_000_000i64..260_000_000_000);
            let nanos = rng.random_range(0..1_000_000_000u32);
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            assert_eq!(format_datetime(t), chrono_fmt(t));
        }
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_datetime(t), "2026-01-02 03:04:05.000Z");
    }

    #[test]
    fn collection_ids_match_pocketbase() {
        assert_eq!(collection_id("base", "posts"), "pbc_1125843985");
        assert_eq!(collection_id("auth", "_superusers"), "pbc_3142635823");
    }

    #[test]
    fn field_ids_match_pocketbase() {
        assert_eq!(field_id("autodate", "created"), "autodate2990389176");
        assert_eq!(field_id("autodate", "updated"), "autodate3332085495");
        assert_eq!(field_id("text", "id"), "text3208210256");
        assert_eq!(field_id("password", "password"), "password901924565");
        assert_eq!(field_id("email", "email"), "email3885137012");
    }

    #[test]
    fn random_ids_have_the_right_shape() {
        let re = regex::Regex::new("^[a-z0-9]{15}$").unwrap();
        for _ in 0..100 {
            assert!(re.is_match(&record_id()));
        }
        assert_ne!(record_id(), record_id());
    }

    #[test]
    fn datetime_format_and_normalisation() {
        let now = now();
        let re = regex::Regex::new(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
        assert!(re.is_match(&now), "{now}");
        let f = |s: &str| parse_datetime(s).map(format_datetime);
        assert_eq!(
            f("2024-01-02 10:00:00").as_deref(),
            Some("2024-01-02 10:00:00.000Z")
        );
        assert_eq!(
            f("2024-01-02T07:08:09.123+02:00").as_deref(),
            Some("2024-01-02 05:08:09.123Z")
        );
        assert_eq!(
            f("2024-01-02 10:00:00.5Z").as_deref(),
            Some("2024-01-02 10:00:00.500Z")
        );
        assert_eq!(f("2024-01-02").as_deref(), Some("2024-01-02 00:00:00.000Z"));
        assert_eq!(f("not a date"), None);
        assert_eq!(f(""), None);
    }
}
