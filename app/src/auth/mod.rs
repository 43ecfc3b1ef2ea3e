//! Authentication: password hashing, tokens, and resolving a request's token to its record.

pub mod flows;
pub mod password;
pub mod token;

use std::sync::Arc;

use crate::db::{Db, DbError};
use crate::records::{self, Record};
use crate::schema::{Collection, CollectionStore};

/// Errors of the auth layer.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The record a request is authenticated as.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub collection: Arc<Collection>,
    pub record: Record,
    /// False for tokens that may not be refreshed (impersonation).
    pub refreshable: bool,
}

impl AuthRecord {
    pub fn is_superuser(&self) -> bool {
        self.collection.name == "_superusers"
    }
}

/// Strips an optional `Bearer ` prefix (any case) from an Authorization header value.
pub fn token_from_header(value: &str) -> &str {
    let v = value.trim();
    if v.len() >= 7 && v[..7].eq_ignore_ascii_case("bearer ") {
        v[7..].trim()
    } else {
        v
    }
}

/// Resolves an auth token to its record. Any failure (malformed, wrong signature, expired,
/// unknown collection or record, rotated token key) is `None`: the request is a guest.
pub async fn resolve(db: &Db, store: &CollectionStore, token: &str) -> Option<AuthRecord> {
    let unverified = token::peek(token)?;
    if unverified.kind != token::TokenType::Auth {
        return None;
    }
    let collection = store.get(&unverified.collection_id)?;
    if collection.id != unverified.collection_id || !collection.is_auth() {
        return None;
    }
    let secret = collection.auth.as_ref()?.auth_token.secret.clone();
    let coll = collection.clone();
    let id = unverified.id.clone();
    let record = db
        .read(move |conn| records::find_by_id(conn, &coll, &id))
        .await
        .ok()??;
    let token_key = record.get_str("tokenKey")?.to_string();
    let claims = token::verify(token, &token_key, &secret, token::TokenType::Auth).ok()?;
    if claims.id != record.id() {
        return None;
    }
    Some(AuthRecord {
        collection,
        record,
        refreshable: claims.refreshable.unwrap_or(true),
    })
}
