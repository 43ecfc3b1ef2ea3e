//! `POST /api/batch`: several record writes in one transaction. Each sub-request is checked
//! against its collection's rules exactly as the REST endpoint would; the first failure rolls
//! the whole batch back.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::{MaybeAuth, RecordBody, Upload};
use super::files::{Staged, stage};
use super::records::{auth_values, client_json, collection, write_records};
use crate::App;
use crate::records;
use crate::records::ops;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Create,
    Upsert,
    Update,
    Delete,
}

struct SubRequest {
    action: Action,
    collection: String,
    id: Option<String>,
    query: Vec<(String, String)>,
    body: Map<String, Value>,
}

fn failed(index: usize, inner: ApiError) -> ApiError {
    let inner_body = json!({
        "data": inner.data,
        "message": inner.message,
        "status": inner.status.as_u16(),
    });
    ApiError::bad_request("Batch transaction failed.").with_data(json!({
        "requests": { index.to_string(): {
            "code": "batch_request_failed",
            "message": "Batch request failed.",
            "response": inner_body,
        }}
    }))
}

/// Parses `{method, url, body}` of one sub-request.
fn parse(v: &Value) -> Result<SubRequest, ApiError> {
    let method = v
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_uppercase();
    let url = v.get("url").and_then(Value::as_str).unwrap_or("");
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (coll, id) = match parts.as_slice() {
        ["", "api", "collections", c, "records"] => (c.to_string(), None),
        ["", "api", "collections", c, "records", id] => (c.to_string(), Some(id.to_string())),
        _ => return Err(ApiError::bad_request("Invalid batch request url.")),
    };
    let decode = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (coll, id) = (decode(&coll), id.map(|i| decode(&i)));
    let action = match (method.as_str(), &id) {
        ("POST", None) => Action::Create,
        ("PUT", None) => Action::Upsert,
        ("PATCH", Some(_)) => Action::Update,
        ("DELETE", Some(_)) => Action::Delete,
        _ => {
            return Err(ApiError::bad_request(
                "Invalid batch request method or url.",
            ));
        }
    };
    let body = match v.get("body") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::bad_request("Invalid batch request body.")),
    };
    let query = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ok(SubRequest {
        action,
        collection: coll,
        id,
        query,
        body,
    })
}

async fn batch(
    State(app): State<App>,
    headers: axum::http::HeaderMap,
    auth: MaybeAuth,
    RecordBody(body, uploads): RecordBody,
) -> ApiResult<impl IntoResponse> {
    let settings = app.settings().get();
    let enabled = settings["batch"]["enabled"].as_bool().unwrap_or(false);
    let max = settings["batch"]["maxRequests"].as_i64().unwrap_or(0);
    if !enabled || max <= 0 {
        return Err(ApiError::forbidden("Batch requests are not allowed."));
    }
    let list = match body.get("requests") {
        Some(Value::Array(a)) if !a.is_empty() => a.clone(),
        _ => {
            let mut errs = crate::validation::ValidationErrors::new();
            errs.add(
                &["requests"],
                "validation_required",
                crate::validation::msg::REQUIRED,
            );
            return Err(ApiError::validation("Batch transaction failed.", errs));
        }
    };
    if list.len() as i64 > max {
        let mut errs = crate::validation::ValidationErrors::new();
        errs.add_with_params(
            &["requests"],
            "validation_length_too_long",
            &format!("The length must be no more than {max}."),
            Some(json!({"max": max})),
        );
        return Err(ApiError::validation("Batch transaction failed.", errs));
    }
    let mut caller = super::records::caller(auth, &axum::http::Method::POST, &headers, &[]);
    caller.context = "batch".into();
    // Files come as `requests.{i}.{field}` or `requests[{i}].{field}`.
    let mut files_of: Vec<Vec<Upload>> = vec![Vec::new(); list.len()];
    for mut up in uploads {
        let rest = up
            .field
            .strip_prefix("requests.")
            .map(|r| r.split_once('.'))
            .or_else(|| {
                up.field
                    .strip_prefix("requests[")
                    .map(|r| r.split_once("]."))
            })
            .flatten();
        if let Some((idx, field)) = rest
            && let Ok(i) = idx.parse::<usize>()
            && i < files_of.len()
        {
            up.field = field.to_string();
            files_of[i].push(up);
        }
    }
    // Parse, stage files and prepare auth fields (bcrypt) before the transaction.
    let mut staged = Staged::none();
    let mut prepared = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let mut sub = match parse(v) {
            Ok(s) => s,
            Err(e) => {
                staged.discard(&app).await;
                return Err(failed(i, e));
            }
        };
        let c = match collection(&app, &sub.collection) {
            Ok(c) => c,
            Err(e) => {
                staged.discard(&app).await;
                return Err(failed(i, e));
            }
        };
        let files = std::mem::take(&mut files_of[i]);
        if !files.is_empty() {
            let record_id = match (&sub.action, &sub.id) {
                (_, Some(id)) => id.clone(),
                _ => match sub.body.get("id").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => id.to_string(),
                    _ => {
                        let id = crate::schema::ids::record_id();
                        sub.body.insert("id".into(), Value::String(id.clone()));
                        id
                    }
                },
            };
            match stage(
                &app,
                &c,
                &record_id,
                &mut sub.body,
                files,
                "Failed to save record.",
            )
            .await
            {
                Ok(s) => {
                    staged.keys.extend(s.keys);
                    staged.names.extend(s.names);
                }
                Err(e) => {
                    staged.discard(&app).await;
                    return Err(failed(i, e));
                }
            }
        }
        let update_id = match sub.action {
            Action::Update => sub.id.clone(),
            Action::Upsert => {
                let id = sub
                    .body
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let (c2, id2) = (c.clone(), id.clone());
                let exists = !id.is_empty()
                    && app
                        .db()
                        .read(move |conn| records::find_by_id(conn, &c2, &id2))
                        .await?
                        .is_some();
                exists.then_some(id)
            }
            _ => None,
        };
        let values = match sub.action {
            Action::Delete => Map::new(),
            _ => match auth_values(&app, &c, &sub.body, update_id.as_deref(), &caller).await {
                Ok(v) => v,
                Err(e) => {
                    staged.discard(&app).await;
                    return Err(failed(i, e));
                }
            },
        };
        prepared.push((sub, c, values));
    }
    let caller2 = caller.clone();
    let results = write_records(&app, staged, move |tx| {
        let mut out = Vec::with_capacity(prepared.len());
        for (i, (sub, c, values)) in prepared.into_iter().enumerate() {
            let res = match sub.action {
                Action::Create => ops::create(tx, &c, &caller2, &sub.body, values).map(Some),
                Action::Update => {
                    let id = sub.id.clone().unwrap_or_default();
                    ops::update(tx, &c, &caller2, &id, &sub.body, values).map(Some)
                }
                Action::Upsert => {
                    let id = sub
                        .body
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    let exists = !id.is_empty() && records::find_by_id(tx.conn, &c, &id)?.is_some();
                    if exists {
                        ops::update(tx, &c, &caller2, &id, &sub.body, values).map(Some)
                    } else {
                        ops::create(tx, &c, &caller2, &sub.body, values).map(Some)
                    }
                }
                Action::Delete => {
                    let id = sub.id.clone().unwrap_or_default();
                    ops::delete(tx, &c, &caller2, &id).map(|_| None)
                }
            };
            match res {
                Ok(r) => out.push((c, sub.query, r)),
                Err(e) => return Err(failed(i, ApiError::from(e))),
            }
        }
        Ok::<_, ApiError>(out)
    })
    .await?;
    let body: Vec<Value> = results
        .into_iter()
        .map(|(c, q, r)| match r {
            Some(r) => {
                let fields = q.iter().find(|(k, _)| k == "fields").map(|(_, v)| v.as_str());
                json!({"status": 200, "body": super::fields::pick(client_json(&c, &r, &caller), fields)})
            }
            None => json!({"status": 204, "body": null}),
        })
        .collect();
    Ok((StatusCode::OK, Json(Value::Array(body))))
}

pub fn routes() -> Router<App> {
    Router::new().route("/api/batch", post(batch))
}
