//! Record operations with their API rules, run inside a transaction on the writer. The REST
//! handlers and the batch endpoint both call these, so every path checks the same rules.

use std::sync::Arc;

use rusqlite::Connection;
use serde_json::{Map, Value};

use super::{Record, cast_input, modifiers};
use crate::auth::AuthRecord;
use crate::db::DbError;
use crate::schema::{Collection, CollectionType};
use crate::validation::ValidationErrors;

/// Who is asking, and with what request context (the input of `@request.*`).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub auth: Option<AuthRecord>,
}

impl Caller {
    pub fn is_superuser(&self) -> bool {
        self.auth.as_ref().is_some_and(AuthRecord::is_superuser)
    }

    /// True when the caller is this very auth record.
    pub fn is_record(&self, c: &Collection, id: &str) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|a| a.collection.id == c.id && a.record.id() == id)
    }
}

/// Errors of record operations, mapped to HTTP by the API layer.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{message}")]
    Validation {
        message: &'static str,
        errors: ValidationErrors,
    },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The outcome of checking a rule.
enum Access {
    Allowed,
    Denied,
}

/// Checks a rule for a caller. Constant rules (`null`, `""`) are decided here; expression
/// rules are evaluated by the rule engine. Until it is wired in, expressions admit
/// superusers only (fail closed).
fn check(rule: &Option<String>, caller: &Caller) -> Result<Access, RecordError> {
    if caller.is_superuser() {
        return Ok(Access::Allowed);
    }
    match rule.as_deref() {
        None => Err(RecordError::Forbidden(
            "Only superusers can perform this action.".into(),
        )),
        Some("") => Ok(Access::Allowed),
        Some(_) => Ok(Access::Denied),
    }
}

/// Whether the caller may list records (locked rules are a 403).
pub fn can_list(c: &Collection, caller: &Caller) -> Result<bool, RecordError> {
    Ok(matches!(check(&c.rules.list, caller)?, Access::Allowed))
}

/// Reads one record the caller may view.
pub fn view(
    conn: &Connection,
    c: &Collection,
    caller: &Caller,
    id: &str,
) -> Result<Record, RecordError> {
    if let Access::Denied = check(&c.rules.view, caller)? {
        return Err(RecordError::NotFound);
    }
    super::find_by_id(conn, c, id)?.ok_or(RecordError::NotFound)
}

fn writable(c: &Collection) -> Result<(), RecordError> {
    if c.kind == CollectionType::View {
        return Err(RecordError::BadRequest(
            "Unsupported collection type.".into(),
        ));
    }
    Ok(())
}

fn map_write_error(
    e: DbError,
    c: &Collection,
    values: &Map<String, Value>,
    message: &'static str,
) -> RecordError {
    if e.is_unique_violation() {
        let detail = e.to_string();
        let mut errors = ValidationErrors::new();
        for f in &c.fields {
            if values.contains_key(&f.name) && detail.contains(&format!("{}.{}", c.name, f.name)) {
                errors.add(&[&f.name], "validation_not_unique", "Value must be unique.");
            }
        }
        if errors.is_empty() {
            errors.add(&["id"], "validation_not_unique", "Value must be unique.");
        }
        return RecordError::Validation { message, errors };
    }
    e.into()
}

/// Creates a record. `auth_values` are the prepared auth fields (hashed password, token key)
/// for auth collections, computed before the transaction (bcrypt is slow).
pub fn create(
    conn: &Connection,
    c: &Arc<Collection>,
    caller: &Caller,
    body: &Map<String, Value>,
    auth_values: Map<String, Value>,
) -> Result<Record, RecordError> {
    const MSG: &str = "Failed to create record.";
    writable(c)?;
    if let Access::Denied = check(&c.rules.create, caller)? {
        return Err(RecordError::BadRequest(MSG.into()));
    }
    let body = modifiers::resolve(c, body, None);
    let mut values = cast_input(c, &body, None, caller.is_superuser()).map_err(|errors| {
        RecordError::Validation {
            message: MSG,
            errors,
        }
    })?;
    values.extend(auth_values);
    let id = values
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    super::insert(conn, c, &values).map_err(|e| map_write_error(e, c, &values, MSG))?;
    super::find_by_id(conn, c, &id)?.ok_or(RecordError::NotFound)
}

/// Updates a record; modifiers are resolved against the stored row inside the transaction.
pub fn update(
    conn: &Connection,
    c: &Arc<Collection>,
    caller: &Caller,
    id: &str,
    body: &Map<String, Value>,
    auth_values: Map<String, Value>,
) -> Result<Record, RecordError> {
    const MSG: &str = "Failed to update record.";
    writable(c)?;
    if let Access::Denied = check(&c.rules.update, caller)? {
        return Err(RecordError::NotFound);
    }
    let existing = super::find_by_id(conn, c, id)?.ok_or(RecordError::NotFound)?;
    let body = modifiers::resolve(c, body, Some(&existing));
    let mut values =
        cast_input(c, &body, Some(&existing), caller.is_superuser()).map_err(|errors| {
            RecordError::Validation {
                message: MSG,
                errors,
            }
        })?;
    values.extend(auth_values);
    super::update(conn, c, id, &values).map_err(|e| map_write_error(e, c, &values, MSG))?;
    super::find_by_id(conn, c, id)?.ok_or(RecordError::NotFound)
}

/// Deletes a record.
pub fn delete(
    conn: &Connection,
    c: &Arc<Collection>,
    caller: &Caller,
    id: &str,
) -> Result<(), RecordError> {
    writable(c)?;
    if let Access::Denied = check(&c.rules.delete, caller)? {
        return Err(RecordError::NotFound);
    }
    if super::delete(conn, c, id)? == 0 {
        return Err(RecordError::NotFound);
    }
    Ok(())
}
