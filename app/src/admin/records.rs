//! Records: the browser (pagination, sort, the filter grammar, column picking, bulk delete)
//! and the editor (an input per field type, file uploads with previews, relation pickers,
//! JSON). Writes go through the same record operations as the REST API, as the signed-in
//! superuser.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::form::flatten_errors;
use super::{
    Admin, AdminError, AdminResult, FormData, Post, base_context, insert_flash, render_page,
    see_other,
};
use crate::App;
use crate::api::ApiError;
use crate::api::extract::Upload;
use crate::records::ops::{self, Caller};
use crate::records::{self, Record};
use crate::schema::{Collection, Field, FieldKind};

type QueryPairs = Query<Vec<(String, String)>>;

const PER_PAGE_CHOICES: &[u64] = &[10, 20, 50, 100, 200];
/// Relation pickers list at most this many candidate records.
const RELATION_OPTIONS: u64 = 500;

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn collection(app: &App, key: &str) -> AdminResult<Arc<Collection>> {
    app.collections().get(key).ok_or(AdminError::NotFound)
}

/// Fields a person edits or sees as columns (never the token key or password hash).
fn visible(c: &Collection, f: &Field) -> bool {
    !(matches!(f.kind, FieldKind::Password { .. }) || (c.is_auth() && f.name == "tokenKey"))
}

fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif", ".webp"]
        .iter()
        .any(|e| lower.ends_with(e))
}

/// Links to one stored file (with a file token when the field is protected).
fn file_view(c: &Collection, record_id: &str, name: &str, token: Option<&str>) -> Value {
    let base = format!("/api/files/{}/{}/{}", c.id, record_id, name);
    let (url, thumb) = match token {
        Some(t) => (
            format!("{base}?token={t}"),
            format!("{base}?thumb=100x100&token={t}"),
        ),
        None => (base.clone(), format!("{base}?thumb=100x100")),
    };
    json!({"name": name, "url": url, "thumb": if is_image(name) { Value::String(thumb) } else { Value::Null }})
}

fn file_names(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// One table cell: what the template shows for a field value.
fn cell(c: &Collection, f: &Field, r: &Record, token: Option<&str>) -> Value {
    let v = r.data.get(&f.name).cloned().unwrap_or(Value::Null);
    match &f.kind {
        FieldKind::File { .. } => json!({"kind": "file", "files":
            file_names(&v).iter().map(|n| file_view(c, r.id(), n, token)).collect::<Vec<_>>()}),
        FieldKind::Bool => json!({"kind": "bool", "value": v.as_bool().unwrap_or(false)}),
        FieldKind::Json { .. } | FieldKind::GeoPoint => {
            let text = if v.is_null() {
                String::new()
            } else {
                v.to_string()
            };
            json!({"kind": "json", "text": truncate(&text, 80), "title": truncate(&text, 2000)})
        }
        FieldKind::Relation { collection_id, .. } => {
            let ids = file_names(&v);
            json!({"kind": "relation", "collection": collection_id, "ids": ids})
        }
        _ => {
            let text = super::display(&v);
            let mono = f.name == "id"
                || matches!(f.kind, FieldKind::Date { .. } | FieldKind::Autodate { .. });
            json!({"kind": "text", "text": truncate(&text, 120), "title": truncate(&text, 2000), "mono": mono})
        }
    }
}

/// The default columns: id, then the collection's own fields, then the automatic dates;
/// eight at most.
fn default_columns(c: &Collection) -> Vec<String> {
    let rank = |f: &Field| match (&f.kind, f.name.as_str()) {
        (_, "id") => 0,
        (FieldKind::Autodate { .. }, _) => 2,
        _ => 1,
    };
    let mut fields: Vec<&Field> = c.fields.iter().filter(|f| visible(c, f)).collect();
    fields.sort_by_key(|f| rank(f));
    fields.into_iter().take(8).map(|f| f.name.clone()).collect()
}

fn file_token(admin: &Admin, c: &Collection) -> Option<String> {
    let protected = c.fields.iter().any(|f| {
        matches!(
            f.kind,
            FieldKind::File {
                protected: true,
                ..
            }
        )
    });
    if !protected {
        return None;
    }
    let a = crate::auth::AuthRecord {
        collection: admin.collection.clone(),
        record: admin.record.clone(),
        refreshable: false,
    };
    crate::api::files::mint_file_token(&a).ok()
}

/// A URL of the records page with some parameters replaced.
fn list_url(name: &str, params: &[(&str, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if !v.is_empty() {
            ser.append_pair(k, v);
        }
    }
    let qs = ser.finish();
    if qs.is_empty() {
        format!("/_/collections/{name}/records")
    } else {
        format!("/_/collections/{name}/records?{qs}")
    }
}

pub(super) async fn list(
    State(app): State<App>,
    admin: Admin,
    Path(name): Path<String>,
    Query(q): QueryPairs,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    let page = param(&q, "page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let per_page = param(&q, "perPage")
        .and_then(|p| p.parse::<u64>().ok())
        .filter(|p| PER_PAGE_CHOICES.contains(p))
        .unwrap_or(20);
    let filter = param(&q, "filter").unwrap_or("").to_string();
    let default_sort = if c.field("created").is_some() {
        "-created"
    } else {
        ""
    };
    let sort = param(&q, "sort").unwrap_or(default_sort).to_string();
    // Columns: repeated `columns` parameters (the picker's checkboxes), else the defaults.
    let picked: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "columns")
        .map(|(_, v)| v.clone())
        .filter(|n| c.field(n).is_some_and(|f| visible(&c, f)))
        .collect();
    let columns = if picked.is_empty() {
        default_columns(&c)
    } else {
        picked
    };

    let caller = admin.caller();
    let registry = app.collections().snapshot();
    let (c2, f2, s2) = (c.clone(), filter.clone(), sort.clone());
    let result = app
        .db()
        .read(move |conn| {
            let lq = ops::ListQuery {
                filter: &f2,
                sort: &s2,
                offset: (page - 1) * per_page,
                limit: per_page,
                count: true,
            };
            ops::list(conn, &registry, &c2, &caller, &lq)
        })
        .await;
    let mut ctx = base_context(&app, &admin, &c.name);
    insert_flash(&mut ctx, &q);
    let (items, total, status) = match result {
        Ok((items, total)) => (items, total.unwrap_or(0), StatusCode::OK),
        Err(e) => {
            let e = ApiError::from(e);
            ctx.insert(
                "error",
                &format!("The filter or sort is not valid: {}", e.message),
            );
            (Vec::new(), 0, StatusCode::BAD_REQUEST)
        }
    };
    let token = file_token(&admin, &c);
    let rows: Vec<Value> = items
        .iter()
        .map(|r| {
            let cells: Vec<Value> = columns
                .iter()
                .filter_map(|n| c.field(n))
                .map(|f| cell(&c, f, r, token.as_deref()))
                .collect();
            json!({"id": r.id(), "cells": cells})
        })
        .collect();
    let column_params: Vec<(&str, String)> =
        columns.iter().map(|n| ("columns", n.clone())).collect();
    let with = |extra: &[(&str, String)]| {
        let mut p: Vec<(&str, String)> = vec![
            ("filter", filter.clone()),
            ("sort", sort.clone()),
            (
                "perPage",
                if per_page == 20 {
                    String::new()
                } else {
                    per_page.to_string()
                },
            ),
        ];
        for (k, v) in extra {
            p.retain(|(pk, _)| pk != k);
            p.push((k, v.clone()));
        }
        p.extend(column_params.iter().cloned());
        list_url(&c.name, &p)
    };
    let headers: Vec<Value> = columns
        .iter()
        .map(|n| {
            let (state, next) = if sort == *n {
                ("asc", format!("-{n}"))
            } else if sort == format!("-{n}") {
                ("desc", n.clone())
            } else {
                ("", n.clone())
            };
            json!({"name": n, "state": state, "url": with(&[("sort", next), ("page", String::new())])})
        })
        .collect();
    let total_pages = total.div_ceil(per_page).max(1);
    let all_fields: Vec<Value> = c
        .fields
        .iter()
        .filter(|f| visible(&c, f))
        .map(|f| json!({"name": f.name, "shown": columns.contains(&f.name)}))
        .collect();
    ctx.insert(
        "c",
        &json!({"id": c.id, "name": c.name, "type": c.kind.as_str()}),
    );
    ctx.insert("rows", &rows);
    ctx.insert("headers", &headers);
    ctx.insert("filter", &filter);
    ctx.insert("sort", &sort);
    ctx.insert("page", &page);
    ctx.insert("per_page", &per_page);
    ctx.insert("per_page_choices", PER_PAGE_CHOICES);
    ctx.insert("total", &total);
    ctx.insert("total_pages", &total_pages);
    ctx.insert("all_fields", &all_fields);
    if page > 1 {
        ctx.insert("prev_url", &with(&[("page", (page - 1).to_string())]));
    }
    if page < total_pages {
        ctx.insert("next_url", &with(&[("page", (page + 1).to_string())]));
    }
    let mut res = render_page("records.html", &ctx);
    *res.status_mut() = status;
    Ok(res)
}

/// Candidate records for a relation picker: id and a label from presentable fields.
async fn relation_options(app: &App, target_id: &str) -> AdminResult<(String, Vec<Value>, bool)> {
    let Some(t) = app.collections().get(target_id) else {
        return Ok((String::new(), Vec::new(), false));
    };
    let t2 = t.clone();
    let (rows, total) = app
        .db()
        .read(move |conn| records::list(conn, &t2, None, &[], 0, RELATION_OPTIONS, true))
        .await?;
    let label_fields: Vec<&Field> = {
        let presentable: Vec<&Field> = t.fields.iter().filter(|f| f.presentable).collect();
        if presentable.is_empty() {
            ["name", "title", "label", "email", "username"]
                .iter()
                .filter_map(|n| t.field(n))
                .take(1)
                .collect()
        } else {
            presentable
        }
    };
    let options = rows
        .iter()
        .map(|r| {
            let parts: Vec<String> = label_fields
                .iter()
                .filter_map(|f| r.data.get(&f.name))
                .filter_map(|v| match v {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect();
            let label = if parts.is_empty() {
                r.id().to_string()
            } else {
                format!("{} ({})", truncate(&parts.join(" · "), 60), r.id())
            };
            json!({"id": r.id(), "label": label})
        })
        .collect();
    Ok((
        t.name.clone(),
        options,
        total.unwrap_or(0) > RELATION_OPTIONS,
    ))
}

/// The editor's inputs: one per field, with the record's (or the submitted) values.
async fn editor_fields(
    app: &App,
    admin: &Admin,
    c: &Collection,
    values: &Map<String, Value>,
    record_id: Option<&str>,
    errors: &Map<String, Value>,
) -> AdminResult<Vec<Value>> {
    let token = file_token(admin, c);
    let mut out = Vec::new();
    for f in &c.fields {
        if c.is_auth() && f.name == "tokenKey" {
            continue;
        }
        let v = values.get(&f.name).cloned().unwrap_or(Value::Null);
        let mut item = json!({
            "name": f.name, "type": f.kind.type_name(), "required": f.required,
            "error": errors.get(&f.name).cloned().unwrap_or(Value::Null),
            "multiple": f.kind.is_multiple(),
            "help": f.help,
        });
        let text = match &v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &f.kind {
            FieldKind::Password { .. } => {
                item["error_confirm"] = errors
                    .get(&format!("{}Confirm", f.name))
                    .cloned()
                    .unwrap_or(Value::Null);
            }
            FieldKind::Bool => item["checked"] = json!(v.as_bool().unwrap_or(false)),
            FieldKind::Select {
                values: choices, ..
            } => {
                let selected = file_names(&v);
                item["choices"] = json!(
                    choices
                        .iter()
                        .map(|x| json!({"value": x, "selected": selected.contains(x)}))
                        .collect::<Vec<_>>()
                );
            }
            FieldKind::Relation { collection_id, .. } => {
                let selected = file_names(&v);
                let (target, mut options, truncated) = relation_options(app, collection_id).await?;
                // Keep selected ids that fall outside the listed candidates.
                for id in &selected {
                    if !options.iter().any(|o| o["id"] == id.as_str()) {
                        options.push(json!({"id": id, "label": id}));
                    }
                }
                for o in &mut options {
                    let id = o["id"].as_str().unwrap_or("").to_string();
                    o["selected"] = json!(selected.contains(&id));
                }
                item["target"] = json!(target);
                item["options"] = json!(options);
                item["truncated"] = json!(truncated);
            }
            FieldKind::File { .. } => {
                let files: Vec<Value> = match record_id {
                    Some(id) => file_names(&v)
                        .iter()
                        .map(|n| file_view(c, id, n, token.as_deref()))
                        .collect(),
                    None => Vec::new(),
                };
                item["files"] = json!(files);
            }
            FieldKind::Json { .. } => {
                item["value"] = json!(if v.is_null() {
                    String::new()
                } else if let Value::String(raw) = &v {
                    // A submitted text that was not valid JSON comes back as it was typed.
                    if values.get(&format!("{}@raw", f.name)).is_some() {
                        raw.clone()
                    } else {
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    }
                } else {
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                });
            }
            FieldKind::GeoPoint => {
                item["lon"] = json!(v["lon"].as_f64().map(|x| x.to_string()).unwrap_or_default());
                item["lat"] = json!(v["lat"].as_f64().map(|x| x.to_string()).unwrap_or_default());
            }
            _ => item["value"] = json!(text),
        }
        out.push(item);
    }
    Ok(out)
}

async fn editor(
    app: &App,
    admin: &Admin,
    c: &Arc<Collection>,
    values: &Map<String, Value>,
    record_id: Option<&str>,
    errors: &Map<String, Value>,
    message: Option<&str>,
) -> AdminResult<Response> {
    let mut ctx = base_context(app, admin, &c.name);
    let fields = editor_fields(app, admin, c, values, record_id, errors).await?;
    ctx.insert(
        "c",
        &json!({"id": c.id, "name": c.name, "type": c.kind.as_str()}),
    );
    ctx.insert("fields", &fields);
    ctx.insert("record_id", &record_id.unwrap_or(""));
    ctx.insert("is_new", &record_id.is_none());
    if let Some(m) = message {
        ctx.insert("error", m);
    }
    let mut res = render_page("record_edit.html", &ctx);
    if message.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(res)
}

pub(super) async fn new_page(
    State(app): State<App>,
    admin: Admin,
    Path(name): Path<String>,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    editor(&app, &admin, &c, &Map::new(), None, &Map::new(), None).await
}

pub(super) async fn edit_page(
    State(app): State<App>,
    admin: Admin,
    Path((name, id)): Path<(String, String)>,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    let (c2, id2) = (c.clone(), id.clone());
    let r = app
        .db()
        .read(move |conn| records::find_by_id(conn, &c2, &id2))
        .await?
        .ok_or(AdminError::NotFound)?;
    editor(&app, &admin, &c, &r.data, Some(&id), &Map::new(), None).await
}

/// The record body a submitted editor form describes, its uploads, and input that could not
/// be read (by field name).
fn body_from_form(
    c: &Collection,
    form: &FormData,
    is_new: bool,
) -> (Map<String, Value>, Vec<Upload>, Map<String, Value>) {
    let mut body = Map::new();
    let mut problems = Map::new();
    let mut uploads = Vec::new();
    if is_new && !form.text("id").trim().is_empty() {
        body.insert("id".into(), json!(form.text("id").trim()));
    }
    for f in &c.fields {
        let n = f.name.as_str();
        if n == "id" || (c.is_auth() && n == "tokenKey") {
            continue;
        }
        let text = form.text(n);
        let value = match &f.kind {
            FieldKind::Autodate { .. } => continue,
            FieldKind::Password { .. } => {
                if !text.is_empty() || !form.text(&format!("{n}Confirm")).is_empty() {
                    body.insert(
                        format!("{n}Confirm"),
                        json!(form.text(&format!("{n}Confirm"))),
                    );
                    json!(text)
                } else {
                    continue;
                }
            }
            FieldKind::Bool => json!(form.checked(n)),
            FieldKind::Number { .. } => {
                let t = text.trim();
                if t.is_empty() {
                    json!(0)
                } else {
                    match t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                        Some(num) => Value::Number(num),
                        None => {
                            problems.insert(n.into(), json!("Must be a number."));
                            json!(t)
                        }
                    }
                }
            }
            FieldKind::Json { .. } => {
                let t = text.trim();
                if t.is_empty() {
                    Value::Null
                } else {
                    match serde_json::from_str::<Value>(t) {
                        Ok(v) => v,
                        Err(e) => {
                            problems.insert(n.into(), json!(format!("Must be valid JSON ({e}).")));
                            body.insert(format!("{n}@raw"), Value::Bool(true));
                            json!(text)
                        }
                    }
                }
            }
            FieldKind::GeoPoint => {
                let num = |k: &str| {
                    form.text(&format!("{n}.{k}"))
                        .trim()
                        .parse::<f64>()
                        .unwrap_or(0.0)
                };
                json!({"lon": num("lon"), "lat": num("lat")})
            }
            FieldKind::File { .. } => {
                let removed: Vec<Value> = form
                    .all(&format!("{n}-"))
                    .into_iter()
                    .map(|s| json!(s))
                    .collect();
                if !removed.is_empty() {
                    body.insert(format!("{n}-"), Value::Array(removed));
                }
                let target = if f.kind.is_multiple() {
                    format!("{n}+")
                } else {
                    n.to_string()
                };
                for u in form.files.iter().filter(|u| u.field == n) {
                    uploads.push(Upload {
                        field: target.clone(),
                        filename: u.filename.clone(),
                        data: u.data.clone(),
                    });
                }
                continue;
            }
            _ if f.kind.is_multiple() => Value::Array(
                form.all(n)
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| json!(s))
                    .collect(),
            ),
            _ => json!(text),
        };
        body.insert(n.into(), value);
    }
    (body, uploads, problems)
}

async fn save(
    app: &App,
    post: Post,
    c: Arc<Collection>,
    id: Option<String>,
) -> AdminResult<Response> {
    let (mut body, uploads, problems) = body_from_form(&c, &post.form, id.is_none());
    if !problems.is_empty() {
        return editor(
            app,
            &post.admin,
            &c,
            &body,
            id.as_deref(),
            &problems,
            Some("The record was not saved: fix the highlighted inputs."),
        )
        .await;
    }
    body.retain(|k, _| !k.ends_with("@raw"));
    let caller: Caller = post.admin.caller();
    let result = match &id {
        None => crate::api::records::create_record(app, &c, &caller, body.clone(), uploads).await,
        Some(id) => {
            crate::api::records::update_record(app, &c, &caller, id, body.clone(), uploads).await
        }
    };
    match result {
        Ok(r) => {
            let flash = if id.is_none() { "created" } else { "saved" };
            Ok(see_other(&format!(
                "/_/collections/{}/records?flash={flash}#r-{}",
                c.name,
                r.id()
            )))
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(AdminError::NotFound),
        Err(e) => {
            let errors = flatten_errors(&e.data);
            // Show what was submitted (files are not kept: choose them again).
            let mut values = body;
            if let Some(id) = &id {
                let (c2, id2) = (c.clone(), id.clone());
                if let Some(r) = app
                    .db()
                    .read(move |conn| records::find_by_id(conn, &c2, &id2))
                    .await?
                {
                    for f in &c.fields {
                        if matches!(f.kind, FieldKind::File { .. } | FieldKind::Autodate { .. })
                            && let Some(v) = r.data.get(&f.name)
                        {
                            values.insert(f.name.clone(), v.clone());
                        }
                    }
                }
            }
            let message = if errors.is_empty() {
                e.message.clone()
            } else {
                format!("{} Fix the highlighted inputs.", e.message)
            };
            editor(
                app,
                &post.admin,
                &c,
                &values,
                id.as_deref(),
                &errors,
                Some(&message),
            )
            .await
        }
    }
}

pub(super) async fn new_submit(
    State(app): State<App>,
    Path(name): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    save(&app, post, c, None).await
}

pub(super) async fn edit_submit(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    post: Post,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    save(&app, post, c, Some(id)).await
}

pub(super) async fn delete(
    State(app): State<App>,
    Path((name, id)): Path<(String, String)>,
    post: Post,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    crate::api::records::delete_record(&app, &c, &post.admin.caller(), &id).await?;
    Ok(see_other(&format!(
        "/_/collections/{}/records?flash=deleted",
        c.name
    )))
}

/// Deletes the selected records, all or none (one transaction).
pub(super) async fn bulk_delete(
    State(app): State<App>,
    Path(name): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    let c = collection(&app, &name)?;
    let ids: Vec<String> = post
        .form
        .all("ids")
        .into_iter()
        .map(str::to_string)
        .collect();
    if ids.is_empty() {
        return Ok(see_other(&format!("/_/collections/{}/records", c.name)));
    }
    let caller = post.admin.caller();
    let c2 = c.clone();
    crate::api::records::write_records(&app, crate::api::files::Staged::none(), move |tx| {
        for id in &ids {
            ops::delete(tx, &c2, &caller, id)?;
        }
        Ok(())
    })
    .await?;
    Ok(see_other(&format!(
        "/_/collections/{}/records?flash=deleted",
        c.name
    )))
}
