//! Plugins in the dashboard: each plugin's pages (`/_/plugins/{plugin}/{slug}`, rendered by
//! the plugin inside the dashboard's layout) and a settings form per plugin
//! (`/_/plugin-settings/{plugin}`), stored through the same `SettingsStore` as
//! `PATCH /api/settings`. Secret fields are never sent to the browser: an empty input keeps
//! the stored value.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Admin, AdminError, AdminResult, Post, base_context, render_page, see_other};
use crate::App;

type QueryPairs = Query<Vec<(String, String)>>;

async fn render_plugin_page(
    app: &App,
    admin: &Admin,
    plugin: &str,
    slug: &str,
    method: &str,
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
) -> AdminResult<Response> {
    let rt = app.plugins();
    let (_, page) = rt
        .pages
        .iter()
        .find(|(p, pg)| p == plugin && pg.slug == slug)
        .ok_or(AdminError::NotFound)?;
    let handle = rt
        .handles
        .get(plugin)
        .cloned()
        .ok_or(AdminError::NotFound)?;
    let req = ferrobase_plugin::PageRequest {
        method: method.to_string(),
        query,
        form,
        csrf: admin.session.csrf.clone(),
        superuser: admin.email().to_string(),
    };
    let body = (page.render)(handle, req).await.map_err(|e| {
        tracing::warn!(plugin, page = slug, error = %e, "a plugin page failed");
        AdminError::Api(e.into())
    })?;
    let mut ctx = base_context(app, admin, &format!("plugin:{plugin}:{slug}"));
    ctx.insert("title", &page.title);
    ctx.insert("plugin", plugin);
    ctx.insert("body", &body);
    Ok(render_page("plugin_page.html", &ctx))
}

pub(super) async fn page(
    State(app): State<App>,
    admin: Admin,
    Path((plugin, slug)): Path<(String, String)>,
    Query(q): QueryPairs,
) -> AdminResult<Response> {
    render_plugin_page(&app, &admin, &plugin, &slug, "GET", q, vec![]).await
}

pub(super) async fn page_post(
    State(app): State<App>,
    Path((plugin, slug)): Path<(String, String)>,
    Query(q): QueryPairs,
    post: Post,
) -> AdminResult<Response> {
    let form = post
        .form
        .pairs
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    render_plugin_page(&app, &post.admin, &plugin, &slug, "POST", q, form).await
}

fn settings_page_with(
    app: &App,
    admin: &Admin,
    plugin: &str,
    error: Option<&str>,
    q: &[(String, String)],
) -> AdminResult<Response> {
    let specs = app.settings().plugin_fields();
    let (_, fields) = specs
        .iter()
        .find(|(p, _)| p == plugin)
        .ok_or(AdminError::NotFound)?;
    let stored = app.settings().get();
    let section = stored["plugins"][plugin].clone();
    let rows: Vec<Value> = fields
        .iter()
        .map(|f| {
            let v = &section[&f.name];
            let from_env = f
                .env
                .as_deref()
                .is_some_and(|e| std::env::var(e).is_ok_and(|v| !v.is_empty()));
            json!({
                "name": f.name,
                "about": f.about,
                "secret": f.secret,
                "required": f.required,
                "env": f.env,
                "from_env": from_env,
                "kind": match &f.default { Value::Bool(_) => "bool", Value::Number(_) => "number", _ => "text" },
                "value": if f.secret { Value::String(String::new()) } else { v.clone() },
                "display": if f.secret { String::new() } else { super::display(v) },
                "is_set": v.as_str().map(|s| !s.is_empty()).unwrap_or(!v.is_null()),
            })
        })
        .collect();
    let rt = app.plugins();
    let status = if rt.enabled.iter().any(|p| p == plugin) {
        "on".to_string()
    } else {
        rt.disabled
            .iter()
            .find(|(p, _)| p == plugin)
            .map(|(_, why)| format!("off: {why}"))
            .unwrap_or_else(|| "off".into())
    };
    let mut ctx = base_context(app, admin, &format!("plugin-settings:{plugin}"));
    super::insert_flash(&mut ctx, q);
    ctx.insert("plugin", plugin);
    ctx.insert("fields", &rows);
    ctx.insert("status", &status);
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    let mut res = render_page("plugin_settings.html", &ctx);
    if error.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(res)
}

pub(super) async fn settings_page(
    State(app): State<App>,
    admin: Admin,
    Path(plugin): Path<String>,
    Query(q): QueryPairs,
) -> AdminResult<Response> {
    settings_page_with(&app, &admin, &plugin, None, &q)
}

pub(super) async fn settings_save(
    State(app): State<App>,
    Path(plugin): Path<String>,
    post: Post,
) -> AdminResult<Response> {
    let specs = app.settings().plugin_fields();
    let (_, fields) = specs
        .iter()
        .find(|(p, _)| *p == plugin)
        .ok_or(AdminError::NotFound)?;
    let mut section = Map::new();
    for f in fields {
        let key = format!("f.{}", f.name);
        let text = post.form.text(&key);
        let v = match &f.default {
            Value::Bool(_) => Value::Bool(post.form.checked(&key)),
            Value::Number(_) => match text.trim().parse::<f64>() {
                Ok(n) if n.fract() == 0.0 => json!(n as i64),
                Ok(n) => json!(n),
                Err(_) => {
                    return settings_page_with(
                        &app,
                        &post.admin,
                        &plugin,
                        Some(&format!("{} must be a number.", f.name)),
                        &[],
                    );
                }
            },
            _ => Value::String(text.to_string()),
        };
        // An empty secret keeps the stored one (it is never sent to the browser) unless
        // "clear" is ticked.
        if f.secret && text.is_empty() {
            if post.form.checked(&format!("clear.{}", f.name)) {
                section.insert(f.name.clone(), json!(""));
            }
            continue;
        }
        section.insert(f.name.clone(), v);
    }
    let patch = json!({"plugins": {plugin.clone(): section}});
    match app.patch_settings(patch).await {
        Ok(_) => {
            tracing::info!(superuser = %post.admin.record.id(), plugin = %plugin, "plugin settings saved in the dashboard");
            Ok(see_other(&format!(
                "/_/plugin-settings/{plugin}?flash=saved"
            )))
        }
        Err(crate::settings::SettingsError::Validation(errs)) => settings_page_with(
            &app,
            &post.admin,
            &plugin,
            Some(&format!(
                "The settings were not saved: {}",
                errs.into_value()
            )),
            &[],
        ),
        Err(crate::settings::SettingsError::Db(e)) => Err(e.into()),
        Err(crate::settings::SettingsError::Encryption(detail)) => {
            tracing::error!(%detail, "settings encryption failed");
            Err(AdminError::Api(crate::api::ApiError::internal()))
        }
    }
}

/// The navigation entries of plugins: their pages and settings forms.
pub(super) fn nav(app: &App) -> Vec<Value> {
    let rt = app.plugins();
    let mut out: Vec<Value> = rt
        .pages
        .iter()
        .map(|(p, pg)| {
            json!({"plugin": p, "title": pg.title, "href": format!("/_/plugins/{p}/{}", pg.slug),
                   "key": format!("plugin:{p}:{}", pg.slug)})
        })
        .collect();
    for (p, fields) in app.settings().plugin_fields() {
        if !fields.is_empty() {
            out.push(json!({"plugin": p, "title": format!("{p} settings"),
                            "href": format!("/_/plugin-settings/{p}"), "key": format!("plugin-settings:{p}")}));
        }
    }
    out
}
