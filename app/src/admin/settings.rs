//! Settings: application, mail (with a test mail), batch API, rate limits, trusted proxy,
//! superuser IPs, request logs and scheduled backups,
//! stored through the same `SettingsStore` as `PATCH /api/settings`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::form::flatten_errors;
use super::{Admin, AdminResult, Post, base_context, insert_flash, render_page, see_other};
use crate::App;
use crate::settings::SettingsError;

type QueryPairs = Query<Vec<(String, String)>>;

fn list_text(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn page_with(
    app: &App,
    admin: &Admin,
    values: &Value,
    errors: &Map<String, Value>,
    message: Option<(&str, bool)>,
    q: &[(String, String)],
) -> Response {
    let mut ctx = base_context(app, admin, "settings");
    insert_flash(&mut ctx, q);
    let s = app.settings().client_json(values);
    let rules: Vec<Value> = s["rateLimits"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ctx.insert("s", &s);
    ctx.insert("rate_rules", &rules);
    ctx.insert("proxy_headers", &list_text(&s["trustedProxy"]["headers"]));
    ctx.insert("excluded_ips", &list_text(&s["rateLimits"]["excludedIPs"]));
    ctx.insert("superuser_ips", &list_text(&s["superuserIPs"]));
    ctx.insert("errors", errors);
    ctx.insert(
        "smtp_password_set",
        &values["smtp"]["password"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
    );
    ctx.insert(
        "smtp_from_env",
        &std::env::var("FERROBASE_SMTP_HOST").is_ok_and(|h| !h.is_empty()),
    );
    if let Some((m, is_error)) = message {
        ctx.insert(if is_error { "error" } else { "notice" }, m);
    }
    let mut res = render_page("settings.html", &ctx);
    if matches!(message, Some((_, true))) {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    res
}

pub(super) async fn page(State(app): State<App>, admin: Admin, Query(q): QueryPairs) -> Response {
    let s = app.settings().get();
    page_with(&app, &admin, &s, &Map::new(), None, &q)
}

/// The settings patch a submitted form describes; unreadable numbers are reported by path.
fn patch_from_form(form: &super::FormData) -> (Value, Map<String, Value>) {
    let mut problems = Map::new();
    let int = |key: &str, problems: &mut Map<String, Value>| -> Value {
        match form.text(key).trim().parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => {
                problems.insert(key.into(), json!("Must be a whole number."));
                json!(0)
            }
        }
    };
    let list = |key: &str| -> Value {
        Value::Array(
            form.text(key)
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| json!(s))
                .collect(),
        )
    };
    let mut smtp = json!({
        "enabled": form.checked("smtp.enabled"),
        "host": form.text("smtp.host").trim(),
        "port": int("smtp.port", &mut problems),
        "username": form.text("smtp.username"),
        "tls": form.checked("smtp.tls"),
    });
    // An empty password field keeps the stored one (it is never sent to the browser).
    let password = form.text("smtp.password");
    if !password.is_empty() {
        smtp["password"] = json!(password);
    }
    if form.checked("smtp.clearPassword") {
        smtp["password"] = json!("");
    }
    let mut rules = Vec::new();
    let mut i = 0;
    while form.get(&format!("rl{i}.label")).is_some() {
        let label = form.text(&format!("rl{i}.label")).trim().to_string();
        if !label.is_empty() && !form.checked(&format!("rl{i}.remove")) {
            rules.push(json!({
                "label": label,
                "audience": form.text(&format!("rl{i}.audience")),
                "duration": int(&format!("rl{i}.duration"), &mut problems),
                "maxRequests": int(&format!("rl{i}.maxRequests"), &mut problems),
            }));
        }
        i += 1;
    }
    let patch = json!({
        "meta": {
            "appName": form.text("meta.appName").trim(),
            "appURL": form.text("meta.appURL").trim(),
            "senderName": form.text("meta.senderName").trim(),
            "senderAddress": form.text("meta.senderAddress").trim(),
        },
        "smtp": smtp,
        "batch": {
            "enabled": form.checked("batch.enabled"),
            "maxRequests": int("batch.maxRequests", &mut problems),
            "timeout": int("batch.timeout", &mut problems),
            "maxBodySize": int("batch.maxBodySize", &mut problems),
        },
        "rateLimits": {
            "enabled": form.checked("rateLimits.enabled"),
            "excludedIPs": list("rateLimits.excludedIPs"),
            "rules": rules,
        },
        "trustedProxy": {
            "headers": list("trustedProxy.headers"),
            "useLeftmostIP": form.checked("trustedProxy.useLeftmostIP"),
        },
    });
    let mut patch = patch;
    // Sections a form does not carry keep their stored values (a script may post a part).
    if form.get("superuserIPs").is_some() {
        patch["superuserIPs"] = list("superuserIPs");
    }
    if form.get("logs.maxDays").is_some() {
        patch["logs"] = json!({
            "maxDays": int("logs.maxDays", &mut problems),
            "minLevel": int("logs.minLevel", &mut problems),
            "logIP": form.checked("logs.logIP"),
            "logAuthId": form.checked("logs.logAuthId"),
        });
    }
    if form.get("backups.cron").is_some() {
        patch["backups"] = json!({
            "cron": form.text("backups.cron").trim(),
            "cronMaxKeep": int("backups.cronMaxKeep", &mut problems),
        });
    }
    (patch, problems)
}

pub(super) async fn save(State(app): State<App>, post: Post) -> AdminResult<Response> {
    let (patch, problems) = patch_from_form(&post.form);
    let mut shown = (*app.settings().get()).clone();
    crate::schema::collection::merge_json(&mut shown, &patch);
    if !problems.is_empty() {
        return Ok(page_with(
            &app,
            &post.admin,
            &shown,
            &problems,
            Some((
                "The settings were not saved: fix the highlighted inputs.",
                true,
            )),
            &[],
        ));
    }
    // Lists (rate limit rules, headers) replace the stored ones: arrays are not merged.
    let result = app.patch_settings(patch).await;
    match result {
        Ok(_) => {
            tracing::info!(superuser = %post.admin.record.id(), "settings saved in the dashboard");
            Ok(see_other("/_/settings?flash=saved"))
        }
        Err(SettingsError::Validation(errs)) => {
            let errors = flatten_errors(&errs.into_value());
            Ok(page_with(
                &app,
                &post.admin,
                &shown,
                &errors,
                Some((
                    "The settings were not saved: fix the highlighted inputs.",
                    true,
                )),
                &[],
            ))
        }
        Err(SettingsError::Db(e)) => Err(e.into()),
        Err(SettingsError::Encryption(detail)) => {
            tracing::error!(%detail, "settings encryption failed");
            Err(super::AdminError::Api(crate::api::ApiError::internal()))
        }
    }
}

pub(super) async fn test_mail(State(app): State<App>, post: Post) -> AdminResult<Response> {
    let to = post.form.text("to").trim().to_string();
    let settings = app.settings().get();
    let name = settings["meta"]["appName"].as_str().unwrap_or("Ferrobase");
    let mail = crate::mail::Mail {
        to: to.clone(),
        subject: format!("Test mail from {name}"),
        html: format!(
            "<p>Hello,</p><p>This is a test mail sent from the {} dashboard. Mail works.</p>",
            crate::mail::escape_html(name)
        ),
    };
    match crate::mail::send(&settings, app.config().dev, &mail).await {
        Ok(()) => {
            tracing::info!(superuser = %post.admin.record.id(), "test mail sent");
            Ok(see_other("/_/settings?flash=mail-sent"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "test mail failed");
            let msg = format!("The test mail could not be sent: {e}");
            Ok(page_with(
                &app,
                &post.admin,
                &settings,
                &Map::new(),
                Some((&msg, true)),
                &[],
            ))
        }
    }
}
