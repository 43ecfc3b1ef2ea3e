//! Application settings (`/api/settings`), stored as one JSON document in `_params` under the
//! id `settings`, exactly where and how PocketBase keeps them.

use std::sync::{Arc, RwLock};

use sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use serde_json::{Value, json};

use crate::db::{self, Db, DbError};
use crate::schema::collection::merge_json;
use crate::schema::ids;
use crate::validation::ValidationErrors;

/// Errors of the settings layer.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings")]
    Validation(ValidationErrors),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// PocketBase 0.40's defaults.
pub fn defaults() -> Value {
    json!({
        "meta": {"appName": "Acme", "appURL": "http://localhost:8090", "senderName": "Support",
                 "senderAddress": "support@example.com", "hideControls": false, "accentColor": "#1055c9"},
        "smtp": {"enabled": false, "host": "smtp.example.com", "port": 587, "username": "",
                 "password": "", "authMethod": "", "tls": false, "localName": ""},
        "s3": {"enabled": false, "bucket": "", "region": "", "endpoint": "", "accessKey": "",
               "secret": "", "forcePathStyle": false},
        "backups": {"cron": "", "cronMaxKeep": 3, "s3": {"enabled": false, "bucket": "", "region": "",
                    "endpoint": "", "accessKey": "", "secret": "", "forcePathStyle": false}},
        "batch": {"enabled": false, "maxRequests": 50, "timeout": 3, "maxBodySize": 0},
        "rateLimits": {"enabled": false, "excludedIPs": [], "rules": [
            {"label": "*:auth", "audience": "", "duration": 3, "maxRequests": 2},
            {"label": "*:create", "audience": "", "duration": 5, "maxRequests": 20},
            {"label": "/api/batch", "audience": "", "duration": 1, "maxRequests": 3},
            {"label": "/api/", "audience": "", "duration": 10, "maxRequests": 300}]},
        "trustedProxy": {"headers": [], "useLeftmostIP": false},
        "logs": {"maxDays": 5, "minLevel": 0, "logIP": true, "logAuthId": false, "maxDataSize": 0},
        "superuserIPs": []
    })
}

/// Secrets that are stored but never returned.
const SECRETS: &[&[&str]] = &[
    &["smtp", "password"],
    &["s3", "secret"],
    &["backups", "s3", "secret"],
];

/// The settings as a client sees them.
pub fn client_json(settings: &Value) -> Value {
    let mut v = settings.clone();
    for path in SECRETS {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut node = &mut v;
        for p in parents {
            node = &mut node[*p];
        }
        if let Value::Object(m) = node {
            m.remove(*last);
        }
    }
    v
}

/// Checks that every known key keeps its JSON type.
fn check_types(
    defaults: &Value,
    given: &Value,
    path: &mut Vec<String>,
    errs: &mut ValidationErrors,
) {
    let (Value::Object(d), Value::Object(g)) = (defaults, given) else {
        return;
    };
    for (k, v) in g {
        let Some(dv) = d.get(k) else { continue };
        path.push(k.clone());
        let same = matches!(
            (dv, v),
            (Value::Bool(_), Value::Bool(_))
                | (Value::Number(_), Value::Number(_))
                | (Value::String(_), Value::String(_))
                | (Value::Array(_), Value::Array(_))
                | (Value::Object(_), Value::Object(_))
        );
        if !same {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            errs.add(&refs, "validation_invalid_value", "Invalid value.");
        } else if dv.is_object() {
            check_types(dv, v, path, errs);
        }
        path.pop();
    }
}

fn validate(s: &Value) -> ValidationErrors {
    let mut errs = ValidationErrors::new();
    if s["meta"]["appName"]
        .as_str()
        .is_some_and(|n| n.trim().is_empty())
    {
        errs.add(
            &["meta", "appName"],
            "validation_required",
            "Cannot be blank.",
        );
    }
    if s["batch"]["maxRequests"].as_i64().is_some_and(|n| n < 0) {
        errs.add(
            &["batch", "maxRequests"],
            "validation_min_greater_equal_than_required",
            "Must be no less than 0.",
        );
    }
    if s["batch"]["timeout"].as_i64().is_some_and(|n| n < 0) {
        errs.add(
            &["batch", "timeout"],
            "validation_min_greater_equal_than_required",
            "Must be no less than 0.",
        );
    }
    errs
}

/// The settings document, cached; written through the single writer.
#[derive(Clone)]
pub struct SettingsStore {
    db: Db,
    cache: Arc<RwLock<Arc<Value>>>,
}

const ID: &str = "settings";

fn read(conn: &rusqlite::Connection) -> Result<Option<Value>, DbError> {
    let q = Query::select()
        .column(Alias::new("value"))
        .from(Alias::new("_params"))
        .and_where(Expr::col(Alias::new("id")).eq(ID))
        .to_owned();
    // PocketBase stores the value as a BLOB; Ferrobase as TEXT: read either.
    let rows = db::query_rows(conn, &q, |r| {
        Ok(match r.get_ref(0)? {
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                serde_json::from_slice::<Value>(t).ok()
            }
            _ => None,
        })
    })?;
    Ok(rows.into_iter().next().flatten())
}

impl SettingsStore {
    pub async fn open(db: Db) -> Result<SettingsStore, DbError> {
        let stored = db.read(read).await?;
        let mut s = defaults();
        if let Some(stored) = stored {
            merge_json(&mut s, &stored);
        }
        Ok(SettingsStore {
            db,
            cache: Arc::new(RwLock::new(Arc::new(s))),
        })
    }

    /// The current settings (with secrets).
    pub fn get(&self) -> Arc<Value> {
        match self.cache.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Deep-merges `patch` into the settings, validates and stores them.
    pub async fn patch(&self, patch: Value) -> Result<Arc<Value>, SettingsError> {
        let mut errs = ValidationErrors::new();
        check_types(&defaults(), &patch, &mut Vec::new(), &mut errs);
        if !errs.is_empty() {
            return Err(SettingsError::Validation(errs));
        }
        let next = self
            .db
            .write(move |conn| {
                let mut s = defaults();
                if let Some(stored) = read(conn)? {
                    merge_json(&mut s, &stored);
                }
                merge_json(&mut s, &patch);
                let errs = validate(&s);
                if !errs.is_empty() {
                    return Err(SettingsError::Validation(errs));
                }
                let now = ids::now();
                let q = Query::insert()
                    .into_table(Alias::new("_params"))
                    .columns(["id", "value", "created", "updated"].map(Alias::new))
                    .values_panic([
                        ID.into(),
                        s.to_string().into(),
                        now.clone().into(),
                        now.into(),
                    ])
                    .on_conflict(
                        OnConflict::column(Alias::new("id"))
                            .update_columns(["value", "updated"].map(Alias::new))
                            .to_owned(),
                    )
                    .to_owned();
                db::execute(conn, &q)?;
                Ok(s)
            })
            .await?;
        let next = Arc::new(next);
        match self.cache.write() {
            Ok(mut g) => *g = next.clone(),
            Err(p) => *p.into_inner() = next.clone(),
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden_and_types_checked() {
        let c = client_json(&defaults());
        assert!(c["smtp"].get("password").is_none());
        assert!(c["s3"].get("secret").is_none());
        assert!(c["backups"]["s3"].get("secret").is_none());
        assert_eq!(c["batch"]["maxRequests"], 50);
        let mut errs = ValidationErrors::new();
        check_types(
            &defaults(),
            &json!({"batch": {"enabled": "yes"}, "unknown": 1}),
            &mut Vec::new(),
            &mut errs,
        );
        assert_eq!(
            errs.into_value()["batch"]["enabled"]["code"],
            "validation_invalid_value"
        );
    }
}
