//! Collections: the list, the editor (fields of every type with their options, indexes, rules
//! with live checks, auth options) and deletion.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::form::{self, draft_from_form, editor_view, flatten_errors};
use super::{
    Admin, AdminError, AdminResult, Post, base_context, insert_flash, render_page, see_other,
};
use crate::App;
use crate::api::ApiError;
use crate::schema::collection::autodate_field;
use crate::schema::{Collection, CollectionType};

type QueryPairs = Query<Vec<(String, String)>>;

pub(super) async fn list(State(app): State<App>, admin: Admin, Query(q): QueryPairs) -> Response {
    let mut ctx = base_context(&app, &admin, "collections");
    insert_flash(&mut ctx, &q);
    let snapshot = app.collections().snapshot();
    let mut items: Vec<Value> = snapshot
        .all()
        .iter()
        .map(|c| {
            json!({
                "id": c.id, "name": c.name, "type": c.kind.as_str(), "system": c.system,
                "owner": app.collections().owner_of(&c.id),
                "fields": c.fields.len(),
                "public_list": c.rules.list.as_deref() == Some(""),
                "locked_list": c.rules.list.is_none(),
            })
        })
        .collect();
    items.sort_by(|a, b| {
        (a["system"].as_bool(), a["name"].as_str())
            .cmp(&(b["system"].as_bool(), b["name"].as_str()))
    });
    ctx.insert("collections", &items);
    render_page("collections.html", &ctx)
}

/// A blank collection of `kind` as the editor starts it: PocketBase's scaffold plus
/// `created`/`updated` autodate fields, as PocketBase's dashboard adds them.
fn scaffold(kind: CollectionType) -> Value {
    let mut c = Collection::scaffold(kind);
    c.fields.push(autodate_field("created", false, false));
    c.fields.push(autodate_field("updated", true, false));
    let mut v = c.to_json();
    // Locked rules by default: nothing is public until someone decides it should be.
    for key in [
        "listRule",
        "viewRule",
        "createRule",
        "updateRule",
        "deleteRule",
    ] {
        v[key] = Value::Null;
    }
    v
}

fn kind_of(s: &str) -> CollectionType {
    match s {
        "auth" => CollectionType::Auth,
        _ => CollectionType::Base,
    }
}

fn editor(
    app: &App,
    admin: &Admin,
    draft: &Value,
    errors: &Map<String, Value>,
    message: Option<&str>,
    q: &[(String, String)],
) -> Response {
    let mut ctx = base_context(app, admin, "collections");
    insert_flash(&mut ctx, q);
    let snapshot = app.collections().snapshot();
    let view = editor_view(draft, errors, &snapshot);
    ctx.insert("c", &view);
    ctx.insert("is_new", &view["id"].as_str().is_none_or(str::is_empty));
    if let Some(m) = message {
        ctx.insert("error", m);
    }
    let status = if message.is_some() {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    let mut res = render_page("collection_edit.html", &ctx);
    *res.status_mut() = status;
    res
}

pub(super) async fn new_page(
    State(app): State<App>,
    admin: Admin,
    Query(q): QueryPairs,
) -> Response {
    let kind = q
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.as_str())
        .unwrap_or("base");
    editor(
        &app,
        &admin,
        &scaffold(kind_of(kind)),
        &Map::new(),
        None,
        &[],
    )
}

/// What an editor form asks for besides its data.
enum Action {
    Save,
    AddField(String),
    RemoveField(usize),
}

fn action(form: &super::FormData) -> Action {
    let a = form.text("_action");
    if a == "add" {
        return Action::AddField(form.text("new_field_type").to_string());
    }
    if let Some(i) = a.strip_prefix("remove:").and_then(|i| i.parse().ok()) {
        return Action::RemoveField(i);
    }
    Action::Save
}

/// Applies add/remove to the draft; true when the form should be shown again (not saved).
fn edit_draft(draft: &mut Value, action: &Action) -> bool {
    let Some(fields) = draft["fields"].as_array_mut() else {
        return false;
    };
    match action {
        Action::Save => false,
        Action::AddField(kind) => {
            if let Some(f) = form::new_field(kind, fields) {
                fields.push(f);
            }
            true
        }
        Action::RemoveField(i) => {
            if fields
                .get(*i)
                .is_some_and(|f| !f["system"].as_bool().unwrap_or(false))
            {
                fields.remove(*i);
            }
            true
        }
    }
}

fn problems_message(n: usize) -> &'static str {
    if n == 0 {
        "The collection was not saved."
    } else {
        "The collection was not saved: fix the highlighted inputs."
    }
}

pub(super) async fn new_submit(State(app): State<App>, post: Post) -> AdminResult<Response> {
    let base = scaffold(kind_of(post.form.text("type")));
    let (mut draft, problems) = draft_from_form(&post.form, &base);
    if edit_draft(&mut draft, &action(&post.form)) {
        return Ok(editor(&app, &post.admin, &draft, &problems, None, &[]));
    }
    if !problems.is_empty() {
        let msg = problems_message(problems.len());
        return Ok(editor(&app, &post.admin, &draft, &problems, Some(msg), &[]));
    }
    match app.collections().create(draft.clone()).await {
        Ok(c) => {
            tracing::info!(collection = %c.name, superuser = %post.admin.record.id(), "collection created in the dashboard");
            Ok(see_other(&format!(
                "/_/collections/{}/edit?flash=collection-created",
                c.id
            )))
        }
        Err(e) => {
            let e = ApiError::from_schema(e, "Failed to create collection.");
            let errors = flatten_errors(&e.data);
            let msg = problems_message(errors.len());
            Ok(editor(&app, &post.admin, &draft, &errors, Some(msg), &[]))
        }
    }
}

pub(super) async fn edit_page(
    State(app): State<App>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): QueryPairs,
) -> AdminResult<Response> {
    let c = app.collections().get(&id).ok_or(AdminError::NotFound)?;
    Ok(editor(&app, &admin, &c.to_json(), &Map::new(), None, &q))
}

pub(super) async fn edit_submit(
    State(app): State<App>,
    Path(id): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    let c = app.collections().get(&id).ok_or(AdminError::NotFound)?;
    let (mut draft, problems) = draft_from_form(&post.form, &c.to_json());
    if edit_draft(&mut draft, &action(&post.form)) {
        return Ok(editor(&app, &post.admin, &draft, &problems, None, &[]));
    }
    if !problems.is_empty() {
        let msg = problems_message(problems.len());
        return Ok(editor(&app, &post.admin, &draft, &problems, Some(msg), &[]));
    }
    match app.collections().update(&c.id, draft.clone()).await {
        Ok(c) => {
            tracing::info!(collection = %c.name, superuser = %post.admin.record.id(), "collection updated in the dashboard");
            Ok(see_other(&format!(
                "/_/collections/{}/edit?flash=saved",
                c.id
            )))
        }
        Err(e) => {
            let e = ApiError::from_schema(e, "Failed to update collection.");
            let errors = flatten_errors(&e.data);
            let msg = problems_message(errors.len());
            Ok(editor(&app, &post.admin, &draft, &errors, Some(msg), &[]))
        }
    }
}

pub(super) async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    let c = app.collections().get(&id).ok_or(AdminError::NotFound)?;
    if post.form.text("confirm").trim() != c.name {
        return Err(AdminError::BadRequest(format!(
            "The collection was not deleted: type its name ({}) to confirm.",
            c.name
        )));
    }
    crate::api::collections::delete_collection(&app, &c.id).await?;
    tracing::info!(collection = %c.name, superuser = %post.admin.record.id(), "collection deleted in the dashboard");
    Ok(see_other("/_/collections?flash=collection-deleted"))
}

/// htmx: checks the rule named by `HX-Trigger-Name` (or `_rule`) against the draft the form
/// describes, exactly as saving would, and returns the status fragment.
pub(super) async fn check_rule(
    State(app): State<App>,
    headers: HeaderMap,
    post: Post,
) -> AdminResult<Response> {
    let key = headers
        .get("hx-trigger-name")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| post.form.text("_rule").to_string());
    let key = key.trim_end_matches("_locked").to_string();
    let is_rule = form::rules(true).iter().any(|(k, _)| *k == key);
    if !is_rule {
        return Err(AdminError::BadRequest("Unknown rule.".into()));
    }
    let id = post.form.text("id");
    let base = match app.collections().get(id).filter(|_| !id.is_empty()) {
        Some(c) => c.to_json(),
        None => scaffold(kind_of(post.form.text("type"))),
    };
    let (draft, _) = draft_from_form(&post.form, &base);
    let mut ctx = tera::Context::new();
    ctx.insert("key", &key);
    if post.form.checked(&format!("{key}_locked")) {
        ctx.insert("ok", "Locked: only superusers can do this.");
    } else {
        let rule = post.form.text(&key).to_string();
        let outcome = match Collection::from_json(&draft) {
            Ok((mut c, _)) => {
                c.normalize();
                if c.id.is_empty() {
                    c.id = "_draft_".into();
                }
                crate::schema::store::check_rule(&app.collections().snapshot(), &c, &rule)
            }
            Err(_) => Some("Fix the fields first: the collection cannot be read.".into()),
        };
        match outcome {
            Some(err) => ctx.insert("err", &err),
            None if rule.trim().is_empty() => {
                ctx.insert("ok", "Empty: everyone, signed in or not, can do this.")
            }
            None => ctx.insert("ok", "Valid rule."),
        }
    }
    Ok(render_page("rule_status.html", &ctx))
}
