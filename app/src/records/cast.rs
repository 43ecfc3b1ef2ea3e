//! Casting client input to field values, with PocketBase's validation codes.

use serde_json::{Map, Value, json};

use super::Record;
use crate::auth::password;
use crate::schema::{Collection, Field, FieldKind, ids};
use crate::validation::{ValidationErrors, msg};

fn email_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
            .expect("static regex")
    })
}

fn url_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#]+[^\s]*$").expect("static regex")
    })
}

/// Field patterns compiled once (compiling a regex costs far more than matching it).
fn cached_regex(pattern: &str) -> Option<std::sync::Arc<regex::Regex>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(re) = map.get(pattern) {
        return Some(re.clone());
    }
    let re = Arc::new(regex::Regex::new(pattern).ok()?);
    if map.len() >= 512 {
        map.clear();
    }
    map.insert(pattern.to_string(), re.clone());
    Some(re)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => vec![],
        Value::Array(a) => a
            .iter()
            .filter_map(as_text)
            .filter(|s| !s.is_empty())
            .collect(),
        other => as_text(other)
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
    }
}

/// Casts one input value for a field; `Err((code, message))` when it is invalid.
fn cast_one(f: &Field, v: &Value) -> Result<Value, (String, String)> {
    let invalid = || {
        (
            "validation_invalid_value".to_string(),
            msg::INVALID_VALUE.to_string(),
        )
    };
    match &f.kind {
        FieldKind::Text {
            min, max, pattern, ..
        } => {
            let s = as_text(v).ok_or_else(invalid)?;
            let n = s.chars().count() as i64;
            if !s.is_empty() && n < *min {
                return Err((
                    "validation_min_text_constraint".into(),
                    format!("Must be at least {min} character(s)."),
                ));
            }
            let limit = if *max > 0 { *max } else { 5000 };
            if n > limit {
                return Err((
                    "validation_max_text_constraint".into(),
                    format!("Must be less than {limit} character(s)."),
                ));
            }
            if !s.is_empty() && !pattern.is_empty() {
                let ok = cached_regex(pattern).is_some_and(|re| re.is_match(&s));
                if !ok {
                    return Err((
                        "validation_invalid_format".into(),
                        "Invalid value format.".into(),
                    ));
                }
            }
            Ok(json!(s))
        }
        FieldKind::Number { min, max, only_int } => {
            let n = match v {
                Value::Number(n) => n.as_f64().ok_or_else(invalid)?,
                Value::String(s) if s.trim().is_empty() => 0.0,
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| invalid())?,
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Null => 0.0,
                _ => return Err(invalid()),
            };
            if !n.is_finite() {
                return Err(invalid());
            }
            if *only_int && n.fract() != 0.0 {
                return Err((
                    "validation_not_an_integer".into(),
                    "Must be an integer.".into(),
                ));
            }
            if let Some(min) = min
                && n < *min
            {
                return Err((
                    "validation_min_number_constraint".into(),
                    format!("Must be larger than {min}."),
                ));
            }
            if let Some(max) = max
                && n > *max
            {
                return Err((
                    "validation_max_number_constraint".into(),
                    format!("Must be less than {max}."),
                ));
            }
            Ok(if n.fract() == 0.0 && n.abs() < 9e15 {
                json!(n as i64)
            } else {
                json!(n)
            })
        }
        FieldKind::Bool => match v {
            Value::Bool(b) => Ok(json!(b)),
            Value::String(s) => Ok(json!(matches!(s.as_str(), "true" | "1" | "on"))),
            Value::Number(n) => Ok(json!(n.as_f64().unwrap_or(0.0) != 0.0)),
            Value::Null => Ok(json!(false)),
            _ => Err(invalid()),
        },
        FieldKind::Email {
            except_domains,
            only_domains,
        }
        | FieldKind::Url {
            except_domains,
            only_domains,
        } => {
            let s = as_text(v).ok_or_else(invalid)?.trim().to_string();
            if s.is_empty() {
                return Ok(json!(""));
            }
            let is_email = matches!(f.kind, FieldKind::Email { .. });
            let domain = if is_email {
                if !email_regex().is_match(&s) {
                    return Err((
                        "validation_is_email".into(),
                        "Must be a valid email address.".into(),
                    ));
                }
                s.rsplit('@').next().unwrap_or("").to_lowercase()
            } else {
                if !url_regex().is_match(&s) {
                    return Err(("validation_is_url".into(), "Must be a valid url.".into()));
                }
                s.split("://")
                    .nth(1)
                    .unwrap_or("")
                    .split(['/', '?', '#', ':'])
                    .next()
                    .unwrap_or("")
                    .to_lowercase()
            };
            if !only_domains.is_empty()
                && !only_domains.iter().any(|d| d.eq_ignore_ascii_case(&domain))
            {
                return Err((
                    "validation_email_domain_not_allowed".into(),
                    "Email domain is not allowed.".into(),
                ));
            }
            if except_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&domain))
            {
                return Err((
                    "validation_email_domain_not_allowed".into(),
                    "Email domain is not allowed.".into(),
                ));
            }
            Ok(json!(s))
        }
        FieldKind::Editor { max_size, .. } => {
            let s = as_text(v).ok_or_else(invalid)?;
            let limit = if *max_size > 0 { *max_size } else { 5 << 20 };
            if s.len() as i64 > limit {
                return Err((
                    "validation_max_size_constraint".into(),
                    format!("Must be less than {limit} bytes."),
                ));
            }
            Ok(json!(s))
        }
        FieldKind::Date { min, max } => {
            let s = as_text(v).ok_or_else(invalid)?;
            if s.is_empty() {
                return Ok(json!(""));
            }
            let t = ids::parse_datetime(&s).ok_or((
                "validation_invalid_date".to_string(),
                "Must be a valid date.".to_string(),
            ))?;
            if let Some(m) = ids::parse_datetime(min)
                && t < m
            {
                return Err((
                    "validation_min_date_constraint".into(),
                    format!("Must be no earlier than {min}."),
                ));
            }
            if let Some(m) = ids::parse_datetime(max)
                && t > m
            {
                return Err((
                    "validation_max_date_constraint".into(),
                    format!("Must be no later than {max}."),
                ));
            }
            Ok(json!(ids::format_datetime(t)))
        }
        FieldKind::Select { values, max_select } => {
            let mut list = as_list(v);
            list.dedup();
            if list.iter().any(|x| !values.contains(x)) {
                return Err(("validation_invalid_value".into(), msg::INVALID_VALUE.into()));
            }
            if f.kind.is_multiple() {
                if list.len() as i64 > *max_select {
                    return Err((
                        "validation_too_many_values".into(),
                        format!("Select no more than {max_select}."),
                    ));
                }
                Ok(json!(list))
            } else {
                if list.len() > 1 {
                    return Err((
                        "validation_too_many_values".into(),
                        "Select no more than 1.".into(),
                    ));
                }
                Ok(json!(list.into_iter().next().unwrap_or_default()))
            }
        }
        FieldKind::Relation {
            min_select,
            max_select,
            ..
        } => {
            let list = as_list(v);
            if f.kind.is_multiple() {
                if list.len() as i64 > *max_select {
                    return Err((
                        "validation_too_many_values".into(),
                        format!("Select no more than {max_select}."),
                    ));
                }
                if !list.is_empty() && (list.len() as i64) < *min_select {
                    return Err((
                        "validation_not_enough_values".into(),
                        format!("Select at least {min_select}."),
                    ));
                }
                Ok(json!(list))
            } else {
                if list.len() > 1 {
                    return Err((
                        "validation_too_many_values".into(),
                        "Select no more than 1.".into(),
                    ));
                }
                Ok(json!(list.into_iter().next().unwrap_or_default()))
            }
        }
        FieldKind::Json { max_size } => {
            let limit = if *max_size > 0 { *max_size } else { 1 << 20 };
            let v = match v {
                // Strings holding JSON (multipart forms) are parsed; other strings stay text.
                Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
                other => other.clone(),
            };
            if v.to_string().len() as i64 > limit {
                return Err((
                    "validation_json_size_limit".into(),
                    format!("The maximum allowed JSON size is {limit} bytes."),
                ));
            }
            Ok(v)
        }
        FieldKind::GeoPoint => {
            let obj = match v {
                Value::Object(o) => o.clone(),
                Value::String(s) => {
                    serde_json::from_str::<Map<String, Value>>(s).map_err(|_| invalid())?
                }
                Value::Null => return Ok(json!({"lon":0,"lat":0})),
                _ => return Err(invalid()),
            };
            let lon = obj.get("lon").and_then(Value::as_f64).unwrap_or(0.0);
            let lat = obj.get("lat").and_then(Value::as_f64).unwrap_or(0.0);
            if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
                return Err((
                    "validation_invalid_geo_point".into(),
                    "Invalid geoPoint coordinates.".into(),
                ));
            }
            Ok(json!({"lon": lon, "lat": lat}))
        }
        // Files arrive with multipart uploads (the files layer); passwords are hashed by the
        // auth path; autodates are set by the server.
        FieldKind::File { .. } | FieldKind::Password { .. } | FieldKind::Autodate { .. } => {
            Err(invalid())
        }
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// Casts a create (no `existing`) or update body into storage values, reporting every failing
/// field at once. Unknown keys are ignored; autodates are set here; hidden fields are only
/// accepted from superusers.
pub fn cast_input(
    c: &Collection,
    body: &Map<String, Value>,
    existing: Option<&Record>,
    superuser: bool,
    uploaded: &std::collections::HashSet<String>,
) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let mut out = Map::new();
    let now = ids::now();
    for f in &c.fields {
        match &f.kind {
            FieldKind::Autodate {
                on_create,
                on_update,
            } => {
                if (existing.is_none() && *on_create) || *on_update {
                    out.insert(f.name.clone(), json!(now));
                }
                continue;
            }
            FieldKind::Password { .. } => continue,
            FieldKind::File { max_select, .. } => {
                let Some(given) = body.get(&f.name) else {
                    if existing.is_none() {
                        if f.required {
                            errs.add(&[&f.name], "validation_required", msg::REQUIRED);
                        }
                        out.insert(f.name.clone(), zero_value(f));
                    }
                    continue;
                };
                // Only names the record already holds or files uploaded with this request.
                let held: Vec<String> = existing
                    .and_then(|r| r.data.get(&f.name))
                    .map(as_list)
                    .unwrap_or_default();
                let mut names = as_list(given);
                names.dedup();
                if names
                    .iter()
                    .any(|n| !held.contains(n) && !uploaded.contains(n))
                {
                    errs.add(
                        &[&f.name],
                        "validation_invalid_file",
                        "Invalid or unknown file name.",
                    );
                    continue;
                }
                let limit = if f.kind.is_multiple() { *max_select } else { 1 };
                if names.len() as i64 > limit.max(1) {
                    errs.add_with_params(
                        &[&f.name],
                        "validation_max_select_constraint",
                        &format!("Select no more than {}.", limit.max(1)),
                        Some(json!({"max": limit.max(1)})),
                    );
                    continue;
                }
                if f.required && names.is_empty() {
                    errs.add(&[&f.name], "validation_required", msg::REQUIRED);
                    continue;
                }
                let v = if f.kind.is_multiple() {
                    json!(names)
                } else {
                    json!(names.into_iter().next().unwrap_or_default())
                };
                out.insert(f.name.clone(), v);
                continue;
            }
            _ => {}
        }
        if c.is_auth() && f.name == "tokenKey" {
            continue;
        }
        if f.name == "id" {
            if existing.is_some() {
                continue;
            }
            let id = match body.get("id").and_then(as_text) {
                Some(s) if !s.is_empty() => s,
                _ => match &f.kind {
                    FieldKind::Text {
                        autogenerate_pattern,
                        ..
                    } if !autogenerate_pattern.is_empty() => {
                        crate::schema::pattern::generate(autogenerate_pattern)
                            .unwrap_or_else(|_| ids::record_id())
                    }
                    _ => ids::record_id(),
                },
            };
            match cast_one(f, &json!(id)) {
                Ok(v) => {
                    out.insert("id".into(), v);
                }
                Err((code, message)) => errs.add(&["id"], &code, &message),
            }
            continue;
        }
        let given = body.get(&f.name);
        if f.hidden && !superuser && given.is_some() {
            continue;
        }
        let value = match given {
            Some(v) => match cast_one(f, v) {
                Ok(v) => Some(v),
                Err((code, message)) => {
                    errs.add(&[&f.name], &code, &message);
                    continue;
                }
            },
            None => None,
        };
        let effective = value
            .clone()
            .or_else(|| existing.and_then(|r| r.data.get(&f.name).cloned()))
            .unwrap_or(Value::Null);
        if f.required && is_blank(&effective) {
            errs.add(&[&f.name], "validation_required", msg::REQUIRED);
            continue;
        }
        if let Some(v) = value {
            out.insert(f.name.clone(), v);
        } else if existing.is_none() {
            // New rows get every column's zero value explicitly.
            out.insert(f.name.clone(), zero_value(f));
        }
    }
    errs.into_result().map(|_| out)
}

/// The value a field has when nothing was set.
pub fn zero_value(f: &Field) -> Value {
    match &f.kind {
        FieldKind::Number { .. } => json!(0),
        FieldKind::Bool => json!(false),
        FieldKind::Json { .. } => Value::Null,
        FieldKind::GeoPoint => json!({"lon":0,"lat":0}),
        k if k.is_multiple() => json!([]),
        _ => json!(""),
    }
}

/// Auth-collection fields on create/update, checked against the request body: `password` +
/// `passwordConfirm` (hashed with the field's cost), a fresh `tokenKey` on create and whenever
/// the password changes, `oldPassword` for a non-superuser changing their own password,
/// `verified` and `email` changes only from superusers. Returns the values to store. Runs
/// bcrypt: call it off the async workers and outside the writer.
pub fn prepare_auth_fields(
    c: &Collection,
    body: &Map<String, Value>,
    existing: Option<&Record>,
    superuser: bool,
) -> Result<Map<String, Value>, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let mut out = Map::new();
    let Some(pf) = c.field("password") else {
        return Ok(out);
    };
    let (min, max, cost) = match &pf.kind {
        FieldKind::Password { min, max, cost, .. } => (*min, *max, *cost),
        _ => (8, 0, 0),
    };
    let pw = body.get("password").and_then(Value::as_str).unwrap_or("");
    let confirm = body
        .get("passwordConfirm")
        .and_then(Value::as_str)
        .unwrap_or("");
    let changing = !pw.is_empty();
    if existing.is_none() && !changing {
        errs.add(&["password"], "validation_required", msg::REQUIRED);
    }
    if changing {
        let n = pw.chars().count() as i64;
        let max = if max > 0 { max } else { 71 };
        if n < min.max(1) {
            errs.add_with_params(
                &["password"],
                "validation_min_text_constraint",
                &format!("Must be at least {min} character(s)."),
                Some(json!({"min": min})),
            );
        } else if n > max {
            errs.add_with_params(
                &["password"],
                "validation_max_text_constraint",
                &format!("Must be no more than {max} character(s)."),
                Some(json!({"max": max})),
            );
        }
        if confirm != pw {
            errs.add(
                &["passwordConfirm"],
                "validation_values_mismatch",
                "Values don't match.",
            );
        }
        if let Some(existing) = existing
            && !superuser
        {
            let old = body
                .get("oldPassword")
                .and_then(Value::as_str)
                .unwrap_or("");
            let hash = existing.get_str("password").unwrap_or("");
            if old.is_empty() {
                errs.add(&["oldPassword"], "validation_required", msg::REQUIRED);
            } else if !password::verify(old, hash) {
                errs.add(
                    &["oldPassword"],
                    "validation_invalid_old_password",
                    "Missing or invalid old password.",
                );
            }
        }
    }
    if !superuser && let Some(v) = body.get("verified") {
        let current = existing
            .and_then(|r| r.data.get("verified"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let wanted = matches!(v, Value::Bool(true)) || matches!(v, Value::String(s) if s == "true");
        if wanted != current {
            errs.add(
                &["verified"],
                "validation_values_mismatch",
                "Values don't match.",
            );
        }
    }
    if let (Some(existing), false) = (existing, superuser)
        && let Some(new_email) = body.get("email").and_then(Value::as_str)
        && !new_email.eq_ignore_ascii_case(existing.get_str("email").unwrap_or(""))
    {
        errs.add(
            &["email"],
            "validation_values_mismatch",
            "Values don't match.",
        );
    }
    errs.into_result()?;
    if changing {
        let hash = password::hash(pw, cost).map_err(|_| {
            let mut e = ValidationErrors::new();
            e.add(
                &["password"],
                "validation_invalid_value",
                msg::INVALID_VALUE,
            );
            e
        })?;
        out.insert("password".into(), json!(hash));
        out.insert("tokenKey".into(), json!(ids::random_alphanumeric(50)));
    } else if existing.is_none() {
        out.insert("tokenKey".into(), json!(ids::random_alphanumeric(50)));
    }
    Ok(out)
}
