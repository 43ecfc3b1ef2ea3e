//! Password hashing with bcrypt, as PocketBase stores it, so hashes move between the two.

use super::AuthError;

/// bcrypt's default cost, which PocketBase uses when a password field's `cost` is 0.
pub const DEFAULT_COST: u32 = 10;

pub fn hash(password: &str, cost: i64) -> Result<String, AuthError> {
    let cost = if cost <= 0 { DEFAULT_COST } else { cost as u32 };
    bcrypt::hash(password, cost).map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify(password: &str, hash: &str) -> bool {
    !hash.is_empty() && bcrypt::verify(password, hash).unwrap_or(false)
}

/// A hash to verify against when the account does not exist, so that a wrong identity and a
/// wrong password take the same time.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| bcrypt::hash("ferrobase-dummy-password", DEFAULT_COST).unwrap_or_default())
}

/// Checks `password` against the `password` hash of `record` off the async workers. Without a
/// record (unknown identity) it checks against [`dummy_hash`], so both cases take as long and
/// the answer does not tell which accounts exist.
pub async fn verify_record(record: Option<&crate::records::Record>, password: String) -> bool {
    let hash = record
        .and_then(|r| r.get_str("password"))
        .unwrap_or(dummy_hash())
        .to_string();
    let ok = tokio::task::spawn_blocking(move || verify(&password, &hash))
        .await
        .unwrap_or(false);
    ok && record.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_pocketbase_hash() {
        let h = hash("secret-pass", 4).unwrap();
        assert!(verify("secret-pass", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", ""));
        assert!(!verify("x", "not-a-hash"));
        // Written by PocketBase 0.40.6 (`superuser upsert`) for "Reference-Passw0rd".
        let pb = "$2a$10$moogg4cBz1IZ8H9.GdAu6.Sw6nV1g8krA0KZVJxysWQysYpAWJPGW";
        assert!(verify("Reference-Passw0rd", pb));
        assert!(!verify("reference-passw0rd", pb));
    }
}
