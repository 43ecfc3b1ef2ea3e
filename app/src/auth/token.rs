//! HS256 JWTs with PocketBase's claims and signing scheme: the key is the record's `tokenKey`
//! followed by the collection's per-purpose secret, so rotating either revokes tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TokenType {
    Auth,
    File,
    Verification,
    PasswordReset,
    EmailChange,
}

/// The claims Ferrobase issues and reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: TokenType,
    pub collection_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_email: Option<String>,
    pub exp: i64,
}

/// Signs claims.
pub fn sign(claims: &Claims, token_key: &str, secret: &str) -> Result<String, AuthError> {
    let key = format!("{token_key}{secret}");
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(|_| AuthError::InvalidToken)
}

/// A new auth token valid for `duration` seconds.
pub fn new_auth_token(
    record_id: &str,
    collection_id: &str,
    token_key: &str,
    secret: &str,
    duration: i64,
    refreshable: bool,
) -> Result<String, AuthError> {
    let claims = Claims {
        id: record_id.into(),
        kind: TokenType::Auth,
        collection_id: collection_id.into(),
        refreshable: Some(refreshable),
        email: None,
        new_email: None,
        exp: chrono::Utc::now().timestamp() + duration.max(1),
    };
    sign(&claims, token_key, secret)
}

/// Reads the claims without checking the signature, only to find which record and collection
/// the token claims to be for. Nothing read here is trusted until [`verify`] passes.
pub fn peek(token: &str) -> Option<Claims> {
    jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(token).ok()
}

/// Verifies signature (HS256 only), expiry and type.
pub fn verify(
    token: &str,
    token_key: &str,
    secret: &str,
    expected: TokenType,
) -> Result<Claims, AuthError> {
    let key = format!("{token_key}{secret}");
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.set_required_spec_claims(&["exp"]);
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(key.as_bytes()), &v)
        .map_err(|_| AuthError::InvalidToken)?;
    if data.claims.kind != expected {
        return Err(AuthError::InvalidToken);
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64_shim::encode_segment;

    mod base64_shim {
        /// URL-safe base64 without padding, enough to forge test tokens.
        pub fn encode_segment(bytes: &[u8]) -> String {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }

    fn token(exp_in: i64) -> String {
        new_auth_token("rec", "col", "key", "secret", exp_in, true).unwrap()
    }

    #[test]
    fn valid_token_verifies_with_pocketbase_claims() {
        let t = token(60);
        let c = verify(&t, "key", "secret", TokenType::Auth).unwrap();
        assert_eq!(c.id, "rec");
        assert_eq!(c.collection_id, "col");
        assert_eq!(c.refreshable, Some(true));
        let payload: serde_json::Value = serde_json::to_value(&c).unwrap();
        assert_eq!(payload["type"], "auth");
        assert_eq!(payload["collectionId"], "col");
    }

    #[test]
    fn wrong_key_rotated_key_and_wrong_type_fail() {
        let t = token(60);
        assert!(verify(&t, "key", "other", TokenType::Auth).is_err());
        assert!(verify(&t, "rotated", "secret", TokenType::Auth).is_err());
        assert!(verify(&t, "key", "secret", TokenType::File).is_err());
    }

    #[test]
    fn expired_fails() {
        let claims = Claims {
            id: "rec".into(),
            kind: TokenType::Auth,
            collection_id: "col".into(),
            refreshable: Some(true),
            email: None,
            new_email: None,
            exp: chrono::Utc::now().timestamp() - 5,
        };
        let t = sign(&claims, "key", "secret").unwrap();
        assert!(verify(&t, "key", "secret", TokenType::Auth).is_err());
    }

    #[test]
    fn alg_none_and_tampered_claims_fail() {
        let t = token(60);
        let parts: Vec<&str> = t.split('.').collect();
        let header = encode_segment(br#"{"alg":"none","typ":"JWT"}"#);
        let none = format!("{header}.{}.", parts[1]);
        assert!(verify(&none, "key", "secret", TokenType::Auth).is_err());
        let forged_payload = encode_segment(
            format!(
                r#"{{"id":"admin","type":"auth","collectionId":"col","exp":{}}}"#,
                chrono::Utc::now().timestamp() + 60
            )
            .as_bytes(),
        );
        let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert!(verify(&tampered, "key", "secret", TokenType::Auth).is_err());
        assert!(peek("garbage").is_none());
    }
}
