//! Operations pages: the request logs (list with the filter grammar, one entry) and the
//! backups (list, create, download, delete, restore), on the same functions as `/api/logs`
//! and `/api/backups`.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::Value;

use super::{
    Admin, AdminError, AdminResult, Post, base_context, insert_flash, render_page, see_other,
};
use crate::App;
use crate::api::list::Paging;
use crate::api::records::param;
use crate::backups::BackupError;

type QueryPairs = Query<Vec<(String, String)>>;

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/_/logs`: newest first, filterable (`level > 0`, `data.status >= 400`, `data.auth = "users"`).
pub(super) async fn logs(
    State(app): State<App>,
    admin: Admin,
    Query(q): QueryPairs,
) -> AdminResult<Response> {
    let paging = Paging::from_query(&q)?;
    let filter = param(&q, "filter").to_string();
    let (f2, offset, limit) = (filter.clone(), paging.offset(), paging.per_page);
    let mut ctx = base_context(&app, &admin, "logs");
    let result = app
        .logs()
        .db()
        .read(move |conn| crate::logs::list(conn, &f2, "-@rowid", offset, limit, true))
        .await;
    let (items, total) = match result {
        Ok(r) => r,
        Err(e) => {
            ctx.insert("error", &format!("The filter is not valid: {e}"));
            (Vec::new(), Some(0))
        }
    };
    let total = total.unwrap_or(0);
    let pages = total.div_ceil(paging.per_page).max(1);
    let link = |page: u64| format!("/_/logs?page={page}&filter={}", enc(&filter));
    let rows: Vec<Value> = items
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "id": e["id"], "created": e["created"], "level": e["level"],
                "message": e["message"], "status": e["data"]["status"],
                "auth": e["data"]["auth"], "ip": e["data"]["userIP"],
                "ms": e["data"]["execTime"].as_f64().map(|m| format!("{m:.2}")),
            })
        })
        .collect();
    ctx.insert("rows", &rows);
    ctx.insert("filter", &filter);
    ctx.insert("total", &total);
    ctx.insert("page", &paging.page);
    ctx.insert("total_pages", &pages);
    if paging.page > 1 {
        ctx.insert("prev_url", &link(paging.page - 1));
    }
    if paging.page < pages {
        ctx.insert("next_url", &link(paging.page + 1));
    }
    ctx.insert(
        "max_days",
        &app.settings().get()["logs"]["maxDays"]
            .as_i64()
            .unwrap_or(0),
    );
    Ok(render_page("logs.html", &ctx))
}

/// `/_/logs/{id}`: one entry with its whole data.
pub(super) async fn log(
    State(app): State<App>,
    admin: Admin,
    Path(id): Path<String>,
) -> AdminResult<Response> {
    let entry = app
        .logs()
        .db()
        .read(move |conn| crate::logs::view(conn, &id))
        .await
        .map_err(crate::api::ApiError::from)?
        .ok_or(AdminError::NotFound)?;
    let mut ctx = base_context(&app, &admin, "logs");
    ctx.insert("entry", &entry);
    ctx.insert(
        "data",
        &serde_json::to_string_pretty(&entry["data"]).unwrap_or_default(),
    );
    Ok(render_page("log.html", &ctx))
}

fn backups_page(
    app: &App,
    admin: &Admin,
    q: &[(String, String)],
    error: Option<&str>,
) -> AdminResult<Response> {
    let mut ctx = base_context(app, admin, "backups");
    insert_flash(&mut ctx, q);
    let list = app.backups().list().map_err(crate::api::ApiError::from)?;
    let items: Vec<Value> = list
        .iter()
        .map(|(n, m)| {
            let mut v = crate::backups::entry_json(n, m);
            v["size_text"] = Value::String(size_text(m.len()));
            v
        })
        .collect();
    ctx.insert("items", &items);
    // Downloads are links: they carry a short-lived superuser file token, as the API's do.
    let auth = admin.caller().auth.ok_or(AdminError::SignIn)?;
    ctx.insert("file_token", &crate::api::files::mint_file_token(&auth)?);
    let s = app.settings().get();
    ctx.insert("cron", s["backups"]["cron"].as_str().unwrap_or(""));
    ctx.insert("keep", &s["backups"]["cronMaxKeep"]);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    let mut res = render_page("backups.html", &ctx);
    if error.is_some() {
        *res.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(res)
}

pub(super) async fn backups(
    State(app): State<App>,
    admin: Admin,
    Query(q): QueryPairs,
) -> AdminResult<Response> {
    backups_page(&app, &admin, &q, None)
}

/// `1.5 MiB`-style sizes.
fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn describe(e: &BackupError) -> String {
    match e {
        BackupError::Exists => "A backup with this name exists already.".into(),
        BackupError::InvalidName => {
            "A backup name ends in .zip and holds only lower-case letters, digits, _ and -.".into()
        }
        BackupError::Busy => "Another backup or restore is running; try again in a moment.".into(),
        BackupError::NotFound => "That backup does not exist.".into(),
        BackupError::Invalid(why) => format!("The archive cannot be restored: {why}"),
        _ => "The backup operation failed; the server log says why.".into(),
    }
}

pub(super) async fn create_backup(State(app): State<App>, post: Post) -> AdminResult<Response> {
    let name = post.form.text("name").trim().to_string();
    let name = if name.is_empty() {
        None
    } else if name.starts_with('@') || name.bytes().any(|b| b.is_ascii_uppercase()) {
        return backups_page(
            &app,
            &post.admin,
            &[],
            Some(&describe(&BackupError::InvalidName)),
        );
    } else {
        Some(name)
    };
    match crate::api::backups::create_backup(&app, name).await {
        Ok(n) => {
            tracing::info!(superuser = %post.admin.record.id(), backup = %n, "backup created in the dashboard");
            Ok(see_other("/_/backups?flash=backup-created"))
        }
        Err(e) => backups_page(&app, &post.admin, &[], Some(&describe(&e))),
    }
}

pub(super) async fn delete_backup(
    State(app): State<App>,
    Path(key): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    match app.backups().delete(&key) {
        Ok(()) => Ok(see_other("/_/backups?flash=backup-deleted")),
        Err(e) => backups_page(&app, &post.admin, &[], Some(&describe(&e))),
    }
}

pub(super) async fn restore_backup(
    State(app): State<App>,
    Path(key): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    match crate::api::backups::restore(&app, &key).await {
        Ok(()) => {
            tracing::info!(superuser = %post.admin.record.id(), backup = %key, "restore started in the dashboard");
            let mut ctx = base_context(&app, &post.admin, "backups");
            ctx.insert("restoring", &key);
            ctx.insert("items", &Vec::<Value>::new());
            ctx.insert("cron", "");
            ctx.insert("keep", &0);
            Ok(render_page("backups.html", &ctx))
        }
        Err(e) => backups_page(&app, &post.admin, &[], Some(&describe(&e))),
    }
}
