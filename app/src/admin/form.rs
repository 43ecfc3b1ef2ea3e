//! The collection editor's form: collection JSON (PocketBase's shape, as the API takes it) to
//! the view the templates render, and the submitted form back to collection JSON.
//!
//! Form names: `name`, `type`, `{rule}` + `{rule}_locked`, `indexes` (one per line), auth
//! options by their JSON path (`passwordAuth.enabled`), and per field row `f{i}.{key}` where
//! `i` is the row's position. Existing fields carry their `id`, so renames keep data and
//! options the form does not show are kept from the stored field.

use serde_json::{Map, Value, json};

use super::FormData;
use crate::schema::Registry;

/// How one option is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Integer; empty is 0.
    Int,
    /// Number or empty (`null`).
    OptNumber,
    Bool,
    Text,
    /// Long text (mail bodies).
    Textarea,
    /// A list of strings, comma separated.
    List,
    /// The id of another collection.
    Collection,
    /// A JSON document (OAuth2 providers), edited as text.
    Json,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Int | Kind::OptNumber => "number",
            Kind::Bool => "bool",
            Kind::Text => "text",
            Kind::Textarea => "textarea",
            Kind::List => "list",
            Kind::Collection => "collection",
            Kind::Json => "json",
        }
    }
}

/// One editable option: its JSON key (or dotted path), label and kind.
pub struct Opt(pub &'static str, pub &'static str, pub Kind);

/// Field types a person can add, in the order of the "New field type" select.
pub const FIELD_TYPES: &[&str] = &[
    "text", "editor", "number", "bool", "email", "url", "date", "autodate", "select", "file",
    "relation", "json", "geoPoint", "password",
];

/// The options of a field type, as the editor shows them.
pub fn field_options(kind: &str) -> &'static [Opt] {
    use Kind::*;
    match kind {
        "text" => &[
            Opt("min", "Min length", Int),
            Opt("max", "Max length", Int),
            Opt("pattern", "Pattern", Text),
            Opt("autogeneratePattern", "Autogenerate pattern", Text),
        ],
        "number" => &[
            Opt("min", "Min", OptNumber),
            Opt("max", "Max", OptNumber),
            Opt("onlyInt", "Only integers", Bool),
        ],
        "email" | "url" => &[
            Opt("onlyDomains", "Only domains", List),
            Opt("exceptDomains", "Except domains", List),
        ],
        "editor" => &[
            Opt("maxSize", "Max size (bytes)", Int),
            Opt("convertURLs", "Convert URLs", Bool),
        ],
        "date" => &[Opt("min", "Min date", Text), Opt("max", "Max date", Text)],
        "autodate" => &[
            Opt("onCreate", "On create", Bool),
            Opt("onUpdate", "On update", Bool),
        ],
        "select" => &[
            Opt("values", "Values", List),
            Opt("maxSelect", "Max select", Int),
        ],
        "file" => &[
            Opt("maxSelect", "Max files", Int),
            Opt("maxSize", "Max size (bytes)", Int),
            Opt("mimeTypes", "MIME types", List),
            Opt("thumbs", "Thumb sizes", List),
            Opt("protected", "Protected", Bool),
        ],
        "relation" => &[
            Opt("collectionId", "Collection", Collection),
            Opt("minSelect", "Min select", Int),
            Opt("maxSelect", "Max select", Int),
            Opt("cascadeDelete", "Cascade delete", Bool),
        ],
        "json" => &[Opt("maxSize", "Max size (bytes)", Int)],
        "password" => &[
            Opt("min", "Min length", Int),
            Opt("max", "Max length", Int),
            Opt("pattern", "Pattern", Text),
            Opt("cost", "bcrypt cost", Int),
        ],
        _ => &[],
    }
}

/// The auth options the editor shows for auth collections (dotted paths into the JSON).
pub const AUTH_OPTIONS: &[Opt] = &[
    Opt("passwordAuth.enabled", "Password sign-in", Kind::Bool),
    Opt("passwordAuth.identityFields", "Identity fields", Kind::List),
    Opt("otp.enabled", "One-time passwords (OTP)", Kind::Bool),
    Opt("otp.duration", "OTP duration (s)", Kind::Int),
    Opt("otp.length", "OTP length", Kind::Int),
    Opt("mfa.enabled", "Multi-factor authentication", Kind::Bool),
    Opt("mfa.duration", "MFA duration (s)", Kind::Int),
    Opt(
        "authAlert.enabled",
        "Alert on sign-in from a new location",
        Kind::Bool,
    ),
    Opt("oauth2.enabled", "OAuth2 sign-in", Kind::Bool),
    Opt(
        "oauth2.providers",
        "OAuth2 providers (JSON; clientSecret is write-only: leave it out to keep the stored one)",
        Kind::Json,
    ),
    Opt(
        "oauth2.mappedFields.name",
        "OAuth2: field for the name",
        Kind::Text,
    ),
    Opt(
        "oauth2.mappedFields.username",
        "OAuth2: field for the username",
        Kind::Text,
    ),
    Opt(
        "oauth2.mappedFields.avatarURL",
        "OAuth2: field for the avatar (file or URL)",
        Kind::Text,
    ),
    Opt(
        "oauth2.mappedFields.id",
        "OAuth2: field for the provider's user id",
        Kind::Text,
    ),
    Opt("authToken.duration", "Auth token duration (s)", Kind::Int),
    Opt(
        "verificationToken.duration",
        "Verification token duration (s)",
        Kind::Int,
    ),
    Opt(
        "passwordResetToken.duration",
        "Password reset token duration (s)",
        Kind::Int,
    ),
    Opt(
        "emailChangeToken.duration",
        "Email change token duration (s)",
        Kind::Int,
    ),
    Opt("fileToken.duration", "File token duration (s)", Kind::Int),
    Opt(
        "verificationTemplate.subject",
        "Verification mail subject",
        Kind::Text,
    ),
    Opt(
        "verificationTemplate.body",
        "Verification mail body (HTML)",
        Kind::Textarea,
    ),
    Opt(
        "resetPasswordTemplate.subject",
        "Password reset mail subject",
        Kind::Text,
    ),
    Opt(
        "resetPasswordTemplate.body",
        "Password reset mail body (HTML)",
        Kind::Textarea,
    ),
    Opt(
        "confirmEmailChangeTemplate.subject",
        "Email change mail subject",
        Kind::Text,
    ),
    Opt(
        "confirmEmailChangeTemplate.body",
        "Email change mail body (HTML)",
        Kind::Textarea,
    ),
    Opt("otp.emailTemplate.subject", "OTP mail subject", Kind::Text),
    Opt(
        "otp.emailTemplate.body",
        "OTP mail body (HTML)",
        Kind::Textarea,
    ),
];

/// The rules of a collection type: (JSON key, label).
pub fn rules(is_auth: bool) -> Vec<(&'static str, &'static str)> {
    let mut r = vec![
        ("listRule", "List rule"),
        ("viewRule", "View rule"),
        ("createRule", "Create rule"),
        ("updateRule", "Update rule"),
        ("deleteRule", "Delete rule"),
    ];
    if is_auth {
        r.push(("authRule", "Auth rule"));
        r.push(("manageRule", "Manage rule"));
    }
    r
}

fn get_path<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |node, k| &node[k])
}

fn set_path(v: &mut Value, path: &str, value: Value) {
    let mut node = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, k) in parts.iter().enumerate() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(m) = node else { return };
        if i + 1 == parts.len() {
            m.insert((*k).to_string(), value);
            return;
        }
        node = m.entry((*k).to_string()).or_insert(Value::Null);
    }
}

/// Reads one option from the form. `Err` is a message for the input.
fn read(form: &FormData, name: &str, kind: Kind) -> Result<Value, &'static str> {
    let raw = form.text(name).trim();
    Ok(match kind {
        Kind::Bool => Value::Bool(form.checked(name)),
        Kind::Int => {
            if raw.is_empty() {
                json!(0)
            } else {
                json!(raw.parse::<i64>().map_err(|_| "Must be a whole number.")?)
            }
        }
        Kind::OptNumber => {
            if raw.is_empty() {
                Value::Null
            } else {
                let f = raw
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .ok_or("Must be a number.")?;
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or("Must be a number.")?
            }
        }
        Kind::List => Value::Array(
            raw.split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        Kind::Textarea => Value::String(form.text(name).to_string()),
        Kind::Json if raw.is_empty() => json!([]),
        Kind::Json => serde_json::from_str(raw).map_err(|_| "Must be valid JSON.")?,
        Kind::Text | Kind::Collection => Value::String(raw.to_string()),
    })
}

/// The collection JSON a submitted editor form describes. `base` is the stored collection
/// (updates) or a scaffold (new ones); options the form does not carry are kept from it.
/// Input that cannot be read (a letter in a number) is reported by dotted path.
pub fn draft_from_form(form: &FormData, base: &Value) -> (Value, Map<String, Value>) {
    let mut draft = base.clone();
    let mut problems = Map::new();
    set_path(&mut draft, "name", json!(form.text("name").trim()));
    let is_auth = draft["type"] == "auth";
    for (key, _) in rules(is_auth) {
        let value = if form.checked(&format!("{key}_locked")) {
            Value::Null
        } else {
            json!(form.text(key))
        };
        set_path(&mut draft, key, value);
    }
    let indexes: Vec<Value> = form
        .text("indexes")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| json!(l))
        .collect();
    set_path(&mut draft, "indexes", Value::Array(indexes));
    if is_auth {
        for Opt(path, _, kind) in AUTH_OPTIONS {
            if !form.checked(&format!("{path}.shown")) {
                continue;
            }
            match read(form, path, *kind) {
                Ok(v) => set_path(&mut draft, path, v),
                Err(m) => {
                    problems.insert((*path).to_string(), json!(m));
                }
            }
        }
    }
    // Field rows, in the order of their indexes.
    let mut rows: Vec<usize> = form
        .pairs
        .iter()
        .filter_map(|(k, _)| k.strip_prefix('f')?.strip_suffix(".type")?.parse().ok())
        .collect();
    rows.sort_unstable();
    rows.dedup();
    let stored: Vec<Value> = base["fields"].as_array().cloned().unwrap_or_default();
    let mut fields = Vec::new();
    for (pos, i) in rows.iter().enumerate() {
        let p = |k: &str| format!("f{i}.{k}");
        let id = form.text(&p("id")).to_string();
        let kind = form.text(&p("type")).to_string();
        let mut f = stored
            .iter()
            .find(|s| !id.is_empty() && s["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| json!({"type": kind, "id": id}));
        let system = f["system"].as_bool().unwrap_or(false);
        if !system {
            set_path(&mut f, "name", json!(form.text(&p("name")).trim()));
        }
        for flag in ["required", "hidden", "presentable"] {
            set_path(&mut f, flag, json!(form.checked(&p(flag))));
        }
        let ftype = f["type"].as_str().unwrap_or("").to_string();
        for Opt(key, _, k) in field_options(&ftype) {
            match read(form, &p(key), *k) {
                Ok(v) => set_path(&mut f, key, v),
                Err(m) => {
                    problems.insert(format!("fields.{pos}.{key}"), json!(m));
                }
            }
        }
        fields.push(f);
    }
    set_path(&mut draft, "fields", Value::Array(fields));
    (draft, problems)
}

/// Flattens PocketBase's nested validation data (`{fields: {"0": {name: {code, message}}}}`)
/// to dotted paths with their messages (`fields.0.name`).
pub fn flatten_errors(data: &Value) -> Map<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
        let Value::Object(m) = v else { return };
        if let Some(msg) = m.get("message").and_then(Value::as_str)
            && m.contains_key("code")
        {
            out.insert(prefix.to_string(), json!(msg));
            return;
        }
        for (k, child) in m {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            walk(&p, child, out);
        }
    }
    let mut out = Map::new();
    walk("", data, &mut out);
    out
}

/// What the editor template renders for a collection draft and its errors.
pub fn editor_view(draft: &Value, errors: &Map<String, Value>, registry: &Registry) -> Value {
    let err = |k: &str| errors.get(k).cloned().unwrap_or(Value::Null);
    let is_auth = draft["type"] == "auth";
    let collections: Vec<Value> = registry
        .all()
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name}))
        .collect();
    let fields: Vec<Value> = draft["fields"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let ftype = f["type"].as_str().unwrap_or("");
            let options: Vec<Value> = field_options(ftype)
                .iter()
                .map(|Opt(key, label, kind)| {
                    json!({
                        "key": key, "label": label, "kind": kind.as_str(),
                        "value": super::display(&f[*key]),
                        "checked": f[*key].as_bool().unwrap_or(false),
                        "error": err(&format!("fields.{i}.{key}")),
                    })
                })
                .collect();
            let field_errors: Vec<Value> = errors
                .iter()
                .filter(|(k, _)| {
                    k.strip_prefix(&format!("fields.{i}"))
                        .is_some_and(|rest| rest.is_empty() || rest == ".name" || rest == ".id")
                })
                .map(|(_, v)| v.clone())
                .collect();
            json!({
                "index": i,
                "id": f["id"].as_str().unwrap_or(""),
                "name": f["name"].as_str().unwrap_or(""),
                "type": ftype,
                "system": f["system"].as_bool().unwrap_or(false),
                "required": f["required"].as_bool().unwrap_or(false),
                "hidden": f["hidden"].as_bool().unwrap_or(false),
                "presentable": f["presentable"].as_bool().unwrap_or(false),
                "has_required": ftype != "autodate",
                "options": options,
                "errors": field_errors,
            })
        })
        .collect();
    let rule_list: Vec<Value> = rules(is_auth)
        .into_iter()
        .map(|(key, label)| {
            json!({
                "key": key, "label": label,
                "value": draft[key].as_str().unwrap_or(""),
                "locked": draft[key].is_null(),
                "error": err(key),
            })
        })
        .collect();
    let auth_options: Vec<Value> = if is_auth {
        AUTH_OPTIONS
            .iter()
            .map(|Opt(path, label, kind)| {
                let v = get_path(draft, path);
                let shown = match kind {
                    Kind::Json => serde_json::to_string_pretty(v).unwrap_or_default(),
                    _ => super::display(v),
                };
                json!({
                    "key": path, "label": label, "kind": kind.as_str(),
                    "value": shown, "checked": v.as_bool().unwrap_or(false),
                    "error": err(path),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let indexes = draft["indexes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    let index_errors: Vec<Value> = errors
        .iter()
        .filter(|(k, _)| k.starts_with("indexes"))
        .map(|(_, v)| v.clone())
        .collect();
    json!({
        "id": draft["id"].as_str().unwrap_or(""),
        "name": draft["name"].as_str().unwrap_or(""),
        "type": draft["type"].as_str().unwrap_or("base"),
        "system": draft["system"].as_bool().unwrap_or(false),
        "name_error": err("name"),
        "fields": fields,
        "rules": rule_list,
        "auth_options": auth_options,
        "indexes": indexes,
        "index_errors": index_errors,
        "collections": collections,
        "field_types": FIELD_TYPES,
    })
}

/// A new field of `kind` for the draft (the store fills in the id and defaults).
pub fn new_field(kind: &str, existing: &[Value]) -> Option<Value> {
    if !FIELD_TYPES.contains(&kind) {
        return None;
    }
    let mut n = 1;
    let name = loop {
        let candidate = if n == 1 {
            format!("field_{kind}")
        } else {
            format!("field_{kind}{n}")
        }
        .to_lowercase();
        if !existing.iter().any(|f| f["name"] == candidate.as_str()) {
            break candidate;
        }
        n += 1;
    };
    let mut f = crate::schema::FieldKind::default_for(kind)
        .map(|k| {
            crate::schema::Field {
                id: String::new(),
                name: name.clone(),
                system: false,
                hidden: false,
                presentable: false,
                required: false,
                help: String::new(),
                kind: k,
            }
            .to_json()
        })
        .unwrap_or_else(|| json!({"type": kind, "name": name}));
    if kind == "autodate" {
        set_path(&mut f, "onCreate", json!(true));
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormData {
        FormData {
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            files: Vec::new(),
        }
    }

    #[test]
    fn form_round_trips_fields_rules_and_options() {
        let base = json!({"type": "base", "name": "", "fields": [
            {"id": "text111", "name": "title", "type": "text", "system": false, "min": 0,
             "max": 0, "pattern": "", "help": "kept"}
        ]});
        let f = form(&[
            ("name", " posts "),
            ("listRule", "status = 'published'"),
            ("viewRule", ""),
            ("viewRule_locked", "on"),
            ("indexes", "CREATE INDEX idx_a ON posts (title)\n\n"),
            ("f0.id", "text111"),
            ("f0.type", "text"),
            ("f0.name", "headline"),
            ("f0.required", "on"),
            ("f0.max", "120"),
            ("f1.id", ""),
            ("f1.type", "select"),
            ("f1.name", "status"),
            ("f1.values", "draft, published,,"),
            ("f1.maxSelect", "1"),
            ("f2.type", "number"),
            ("f2.name", "views"),
            ("f2.min", ""),
            ("f2.max", "x"),
        ]);
        let (draft, problems) = draft_from_form(&f, &base);
        assert_eq!(draft["name"], "posts");
        assert_eq!(draft["listRule"], "status = 'published'");
        assert!(draft["viewRule"].is_null());
        assert_eq!(draft["createRule"], "");
        assert_eq!(
            draft["indexes"],
            json!(["CREATE INDEX idx_a ON posts (title)"])
        );
        let fields = draft["fields"].as_array().unwrap();
        assert_eq!(fields[0]["id"], "text111");
        assert_eq!(fields[0]["name"], "headline");
        assert_eq!(fields[0]["required"], true);
        assert_eq!(fields[0]["max"], 120);
        assert_eq!(fields[0]["help"], "kept");
        assert_eq!(fields[1]["values"], json!(["draft", "published"]));
        assert!(fields[2]["min"].is_null());
        assert_eq!(problems["fields.2.max"], "Must be a number.");
    }

    #[test]
    fn errors_flatten_to_paths_and_land_on_rows() {
        let data = json!({"fields": {"1": {"name": {"code": "x", "message": "Bad name."}}},
                          "listRule": {"code": "y", "message": "Invalid rule."}});
        let flat = flatten_errors(&data);
        assert_eq!(flat["fields.1.name"], "Bad name.");
        assert_eq!(flat["listRule"], "Invalid rule.");
        let draft = json!({"type": "base", "name": "p", "listRule": "x", "fields": [
            {"name": "a", "type": "text"}, {"name": "", "type": "bool"}]});
        let v = editor_view(&draft, &flat, &Registry::from_list(vec![]));
        assert_eq!(v["fields"][1]["errors"], json!(["Bad name."]));
        assert_eq!(v["rules"][0]["error"], "Invalid rule.");
        assert_eq!(v["rules"][1]["locked"], true);
    }

    #[test]
    fn new_fields_get_unique_names() {
        let existing = vec![json!({"name": "field_text"})];
        let f = new_field("text", &existing).unwrap();
        assert_eq!(f["name"], "field_text2");
        assert_eq!(f["type"], "text");
        assert!(new_field("nope", &existing).is_none());
    }
}
