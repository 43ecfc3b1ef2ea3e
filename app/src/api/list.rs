//! Paging parameters shared by the list endpoints.

use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;

/// PocketBase's default page size and cap.
pub const DEFAULT_PER_PAGE: u64 = 30;
pub const MAX_PER_PAGE: u64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
    pub skip_total: bool,
}

/// Go's strconv.ParseBool, which PocketBase uses for `skipTotal`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Paging {
    /// Reads `page`, `perPage` and `skipTotal` from the query. A `page` or `perPage` that is not
    /// an integer is a 400, as in PocketBase; values ≤ 0 fall back to the defaults.
    pub fn from_query(q: &[(String, String)]) -> Result<Paging, ApiError> {
        let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let int = |k: &str| -> Result<Option<i64>, ApiError> {
            match get(k) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| ApiError::bad_request("Invalid query parameters.")),
            }
        };
        let page = int("page")?.filter(|p| *p > 0).unwrap_or(1) as u64;
        let per_page = int("perPage")?
            .filter(|p| *p > 0)
            .map(|p| (p as u64).min(MAX_PER_PAGE))
            .unwrap_or(DEFAULT_PER_PAGE);
        let skip_total = get("skipTotal").and_then(parse_bool).unwrap_or(false);
        Ok(Paging {
            page,
            per_page,
            skip_total,
        })
    }

    pub fn offset(&self) -> u64 {
        // SQLite's OFFSET is a signed 64-bit integer: a larger page just reads past the end.
        (self.page - 1)
            .saturating_mul(self.per_page)
            .min(i64::MAX as u64)
    }

    /// The list envelope around `items` (anything serialisable as a JSON array).
    pub fn page_of<T: Serialize>(&self, items: T, total: Option<u64>) -> Envelope<T> {
        let (total_items, total_pages) = match (self.skip_total, total) {
            (false, Some(t)) => (t as i64, t.div_ceil(self.per_page) as i64),
            _ => (-1, -1),
        };
        Envelope {
            items,
            page: self.page,
            per_page: self.per_page,
            total_items,
            total_pages,
        }
    }

    /// The list envelope as a JSON value.
    pub fn envelope(&self, items: Vec<Value>, total: Option<u64>) -> Value {
        serde_json::to_value(self.page_of(items, total)).unwrap_or(Value::Null)
    }
}

/// PocketBase's list response. Its keys are declared in the order a `serde_json::Map` sorts
/// them, so it is written byte for byte as the `Value` form was.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub items: T,
    pub page: u64,
    pub per_page: u64,
    pub total_items: i64,
    pub total_pages: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn defaults_caps_and_errors() {
        let p = Paging::from_query(&q(&[])).unwrap();
        assert_eq!((p.page, p.per_page, p.skip_total), (1, 30, false));
        let p = Paging::from_query(&q(&[
            ("page", "0"),
            ("perPage", "5000"),
            ("skipTotal", "T"),
        ]))
        .unwrap();
        assert_eq!((p.page, p.per_page, p.skip_total), (1, 1000, true));
        let p = Paging::from_query(&q(&[("perPage", "-3")])).unwrap();
        assert_eq!(p.per_page, 30);
        assert!(Paging::from_query(&q(&[("page", "abc")])).is_err());
        let p = Paging::from_query(&q(&[("page", "2"), ("perPage", "10")])).unwrap();
        assert_eq!(p.offset(), 10);
        assert_eq!(p.envelope(vec![], Some(21))["totalPages"], 3);
        assert_eq!(
            Paging {
                skip_total: true,
                ..p.clone()
            }
            .envelope(vec![], None)["totalItems"],
            -1
        );
        // Written directly, the envelope has the bytes of its Value form (sorted keys).
        let items = vec![serde_json::json!({"a": 1})];
        assert_eq!(
            serde_json::to_string(&p.page_of(&items, Some(21))).unwrap(),
            serde_json::to_string(&p.envelope(items, Some(21))).unwrap()
        );
    }
}
