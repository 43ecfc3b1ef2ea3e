//! Managing superusers from the command line (`ferrobase superuser ...`).

use serde_json::{Map, Value, json};

use crate::App;
use crate::db::DbError;
use crate::records;
use crate::validation::ValidationErrors;

/// Errors of superuser management.
#[derive(Debug, thiserror::Error)]
pub enum SuperuserError {
    #[error("a superuser with email {0} already exists")]
    Exists(String),
    #[error("no superuser with email {0}")]
    Missing(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("invalid input: {}", .0.clone().into_value())]
    Validation(ValidationErrors),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<ValidationErrors> for SuperuserError {
    fn from(e: ValidationErrors) -> Self {
        SuperuserError::Validation(e)
    }
}

/// What to do with the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
    Upsert,
}

/// Creates or updates a superuser's password. Returns true when a new account was created.
pub async fn save(
    app: &App,
    email: &str,
    password: &str,
    mode: Mode,
) -> Result<bool, SuperuserError> {
    let c = app
        .collections()
        .get("_superusers")
        .ok_or_else(|| SuperuserError::Invalid("the _superusers collection is missing".into()))?;
    let (c2, e2) = (c.clone(), email.to_string());
    let existing = app
        .db()
        .read(move |conn| records::find_by_field(conn, &c2, "email", &e2))
        .await?;
    let mut body = Map::new();
    body.insert("email".into(), json!(email));
    body.insert("password".into(), json!(password));
    body.insert("passwordConfirm".into(), json!(password));
    match (existing, mode) {
        (Some(_), Mode::Create) => Err(SuperuserError::Exists(email.into())),
        (None, Mode::Update) => Err(SuperuserError::Missing(email.into())),
        (Some(r), _) => {
            let mut values = records::cast_input(&c, &body, Some(&r), true, &Default::default())?;
            values.insert("verified".into(), Value::Bool(true));
            values.extend(records::prepare_auth_fields(&c, &body, Some(&r), true)?);
            let id = r.id().to_string();
            app.db()
                .write(move |conn| records::update(conn, &c, &id, &values))
                .await?;
            Ok(false)
        }
        (None, _) => {
            body.insert("verified".into(), json!(true));
            let mut values = records::cast_input(&c, &body, None, true, &Default::default())?;
            values.extend(records::prepare_auth_fields(&c, &body, None, true)?);
            app.db()
                .write(move |conn| records::insert(conn, &c, &values))
                .await?;
            Ok(true)
        }
    }
}

/// Deletes a superuser by email.
pub async fn delete(app: &App, email: &str) -> Result<(), SuperuserError> {
    let c = app
        .collections()
        .get("_superusers")
        .ok_or_else(|| SuperuserError::Invalid("the _superusers collection is missing".into()))?;
    let e2 = email.to_string();
    let deleted = app
        .db()
        .write(move |conn| {
            let Some(r) = records::find_by_field(conn, &c, "email", &e2)? else {
                return Ok::<_, DbError>(0);
            };
            records::delete(conn, &c, r.id())
        })
        .await?;
    if deleted == 0 {
        return Err(SuperuserError::Missing(email.into()));
    }
    Ok(())
}
