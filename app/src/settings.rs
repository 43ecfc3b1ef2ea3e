//! Application settings (`/api/settings`), stored as one JSON document in `_params` under the
//! id `settings`, exactly where and how PocketBase keeps them.

use std::sync::{Arc, RwLock};

use ferrobase_plugin::SettingField;

use sea_orm::{ActiveValue::Set, EntityTrait};
use sea_query::OnConflict;
use serde_json::{Value, json};

use crate::db::entities::{Text, param};
use crate::db::{Conn, Db, DbError};
use crate::schema::collection::merge_json;
use crate::schema::ids;
use crate::validation::ValidationErrors;

/// Errors of the settings layer.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid settings")]
    Validation(ValidationErrors),
    /// The stored settings are encrypted and no (or another) key was given, or the key is
    /// malformed.
    #[error("{0}")]
    Encryption(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// PocketBase 0.40's defaults (but `rateLimits`, on; see docs/compatibility.md).
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
        // PocketBase's rules, but on by default (PocketBase ships them off), with loopback
        // excluded: behind a reverse proxy on the same host every client is 127.0.0.1 until
        // `trustedProxy` names the proxy's header, and one shared limit would throttle all
        // users together. Direct clients and, with `trustedProxy`, proxied ones are limited.
        "rateLimits": {"enabled": true, "excludedIPs": ["127.0.0.1", "::1"], "rules": [
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

/// Removes the value at `path` (objects only).
fn remove_path(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = v;
    for p in parents {
        match node.get_mut(*p) {
            Some(n) => node = n,
            None => return,
        }
    }
    if let Value::Object(m) = node {
        m.remove(*last);
    }
}

/// The core's settings as a client sees them (plugin sections need
/// [`SettingsStore::client_json`], which knows their secrets).
pub fn client_json(settings: &Value) -> Value {
    let mut v = settings.clone();
    for path in SECRETS {
        remove_path(&mut v, path);
    }
    v
}

/// Settings encryption at rest, as PocketBase does it with `--encryptionEnv`: the whole
/// settings document is sealed with AES-256-GCM under the 32-byte key, a random 12-byte nonce
/// in front of the ciphertext, stored base64 (standard alphabet) instead of the JSON.
pub mod crypt {
    use aes_gcm::aead::{Aead, KeyInit};
    use aes_gcm::{Aes256Gcm, Nonce};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    /// Checks a key: exactly 32 bytes.
    pub fn check_key(key: &str) -> Result<(), String> {
        if key.len() == 32 {
            Ok(())
        } else {
            Err(format!(
                "the encryption key must be 32 characters long (it has {})",
                key.len()
            ))
        }
    }

    /// Seals `plain` under `key`.
    pub fn encrypt(plain: &[u8], key: &str) -> Result<String, String> {
        check_key(key)?;
        let cipher = Aes256Gcm::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
        let nonce_bytes: [u8; 12] = rand::random();
        let sealed = cipher
            .encrypt(<&Nonce<_>>::from(&nonce_bytes), plain)
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        Ok(STANDARD.encode(out))
    }

    /// Opens what [`encrypt`] sealed.
    pub fn decrypt(sealed: &str, key: &str) -> Result<Vec<u8>, String> {
        check_key(key)?;
        let raw = STANDARD
            .decode(sealed.trim().trim_matches('"'))
            .map_err(|_| "the stored settings are not valid encrypted data".to_string())?;
        if raw.len() < 12 {
            return Err("the stored settings are not valid encrypted data".into());
        }
        let (nonce, body) = raw.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| "the stored settings are not valid encrypted data".to_string())?;
        let cipher = Aes256Gcm::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
        cipher
            .decrypt(<&Nonce<_>>::from(&nonce), body)
            .map_err(|_| "the settings could not be decrypted with this key".to_string())
    }
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
    for (section, key) in [("logs", "maxDays"), ("logs", "maxDataSize")] {
        if s[section][key].as_i64().is_some_and(|n| n < 0) {
            errs.add(
                &[section, key],
                "validation_min_greater_equal_than_required",
                "Must be no less than 0.",
            );
        }
    }
    let cron = s["backups"]["cron"].as_str().unwrap_or("").trim();
    if !cron.is_empty() {
        if crate::cron::parse(cron).is_err() {
            errs.add(
                &["backups", "cron"],
                "validation_invalid_cron",
                "Invalid cron expression - must be a valid macro or to have exactly 5 space separated segments.",
            );
        }
        if s["backups"]["cronMaxKeep"].as_i64().unwrap_or(0) < 1 {
            errs.add(
                &["backups", "cronMaxKeep"],
                "validation_min_greater_equal_than_required",
                "Must be no less than 1.",
            );
        }
    }
    for (i, ip) in s["superuserIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ok = ip
            .as_str()
            .is_some_and(|ip| crate::api::rate_limit::parse_ip_or_subnet(ip).is_some());
        if !ok {
            let idx = i.to_string();
            errs.add(
                &["superuserIPs", &idx],
                "validation_invalid_ip_or_subnet",
                "Invalid IP or CIDR subnet.",
            );
        }
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

/// Plugins' settings sections: (plugin name, fields).
type PluginSpecs = Vec<(String, Vec<SettingField>)>;

/// The settings document, cached; written through the single writer.
#[derive(Clone)]
pub struct SettingsStore {
    db: Db,
    cache: Arc<RwLock<Arc<Value>>>,
    /// The encryption key (`--encryptionEnv`): the stored document is sealed with it.
    key: Option<Arc<str>>,
    /// Plugins' sections: (plugin name, fields).
    plugins: Arc<RwLock<PluginSpecs>>,
}

const ID: &str = "settings";

/// The stored settings document: plain JSON, or sealed with `key` (see [`crypt`]). Plain
/// JSON is read with or without a key (the next write seals it); sealed settings without the
/// right key are an error, never silently replaced by the defaults.
fn read(conn: &Conn, key: Option<&str>) -> Result<Option<Value>, SettingsError> {
    // PocketBase stores the value as a BLOB; Ferrobase as TEXT: `Text` reads either.
    let row = param::Entity::find_by_id(ID)
        .one(conn)
        .map_err(DbError::from)?;
    let Some(Text(text)) = row.and_then(|r| r.value) else {
        return Ok(None);
    };
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text) {
        return Ok(Some(v));
    }
    let Some(key) = key else {
        return Err(SettingsError::Encryption(
            "the stored settings are encrypted: start with --encryptionEnv naming the variable that holds the key".into(),
        ));
    };
    let plain = crypt::decrypt(&text, key).map_err(SettingsError::Encryption)?;
    serde_json::from_slice::<Value>(&plain)
        .map(Some)
        .map_err(|_| SettingsError::Encryption("the decrypted settings are not JSON".into()))
}

impl SettingsStore {
    /// Opens the settings; `key` is the encryption key (`--encryptionEnv`), checked here.
    pub async fn open(db: Db, key: Option<String>) -> Result<SettingsStore, SettingsError> {
        if let Some(k) = &key {
            crypt::check_key(k).map_err(SettingsError::Encryption)?;
        }
        let key: Option<Arc<str>> = key.map(Into::into);
        let k2 = key.clone();
        let stored = db.read(move |conn| read(conn, k2.as_deref())).await?;
        let mut s = defaults();
        if let Some(stored) = stored {
            merge_json(&mut s, &stored);
        }
        Ok(SettingsStore {
            db,
            cache: Arc::new(RwLock::new(Arc::new(s))),
            key,
            plugins: Arc::default(),
        })
    }

    /// Registers a plugin's settings section (at start, before the plugin's setup): its
    /// defaults join the document, its secrets are hidden from clients.
    pub fn register_plugin(&self, name: &str, fields: Vec<SettingField>) {
        let mut guard = match self.plugins.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.retain(|(n, _)| n != name);
        guard.push((name.to_string(), fields));
        drop(guard);
        let mut cache = match self.cache.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut s = (**cache).clone();
        let mut full = self.defaults();
        merge_json(&mut full, &s);
        s = full;
        *cache = Arc::new(s);
    }

    fn plugin_specs(&self) -> Vec<(String, Vec<SettingField>)> {
        match self.plugins.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The plugins' fields, by plugin.
    pub fn plugin_fields(&self) -> Vec<(String, Vec<SettingField>)> {
        self.plugin_specs()
    }

    /// The defaults, with every registered plugin's section.
    pub fn defaults(&self) -> Value {
        let mut d = defaults();
        let specs = self.plugin_specs();
        if !specs.is_empty() {
            let mut plugins = serde_json::Map::new();
            for (name, fields) in specs {
                let mut section = serde_json::Map::new();
                for f in fields {
                    section.insert(f.name.clone(), f.default.clone());
                }
                plugins.insert(name, Value::Object(section));
            }
            d["plugins"] = Value::Object(plugins);
        }
        d
    }

    /// A plugin's section: stored values over the defaults, then the environment overrides
    /// of its fields.
    pub fn plugin_section(&self, name: &str) -> serde_json::Map<String, Value> {
        let s = self.get();
        let mut section = s["plugins"][name].as_object().cloned().unwrap_or_default();
        for (plugin, fields) in self.plugin_specs() {
            if plugin != name {
                continue;
            }
            for f in fields {
                if let Some(v) = f.env.as_deref().and_then(|e| std::env::var(e).ok())
                    && !v.is_empty()
                {
                    let v = match &f.default {
                        Value::Bool(_) => Value::Bool(matches!(v.as_str(), "1" | "true" | "yes")),
                        Value::Number(_) => v
                            .parse::<i64>()
                            .map(Value::from)
                            .or_else(|_| v.parse::<f64>().map(Value::from))
                            .unwrap_or(Value::String(v)),
                        _ => Value::String(v),
                    };
                    section.insert(f.name.clone(), v);
                }
            }
        }
        section
    }

    /// The settings as a client sees them: every secret removed, the plugins' too.
    pub fn client_json(&self, settings: &Value) -> Value {
        let mut v = client_json(settings);
        for (plugin, fields) in self.plugin_specs() {
            for f in fields.iter().filter(|f| f.secret) {
                remove_path(&mut v, &["plugins", &plugin, &f.name]);
            }
        }
        v
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
        let base = self.defaults();
        check_types(&base, &patch, &mut Vec::new(), &mut errs);
        if !errs.is_empty() {
            return Err(SettingsError::Validation(errs));
        }
        let key = self.key.clone();
        let next = self
            .db
            .write(move |conn| {
                let mut s = base;
                if let Some(stored) = read(conn, key.as_deref())? {
                    merge_json(&mut s, &stored);
                }
                merge_json(&mut s, &patch);
                let errs = validate(&s);
                if !errs.is_empty() {
                    return Err(SettingsError::Validation(errs));
                }
                let now = ids::now();
                let stored = match key.as_deref() {
                    Some(k) => crypt::encrypt(s.to_string().as_bytes(), k)
                        .map_err(SettingsError::Encryption)?,
                    None => s.to_string(),
                };
                param::Entity::insert(param::ActiveModel {
                    id: Set(ID.to_owned()),
                    value: Set(Some(Text(stored))),
                    created: Set(now.clone()),
                    updated: Set(now),
                })
                .on_conflict(
                    OnConflict::column(param::Column::Id)
                        .update_columns([param::Column::Value, param::Column::Updated])
                        .to_owned(),
                )
                .exec_without_returning(conn)
                .map_err(DbError::from)?;
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
    fn encryption_round_trips_and_refuses_the_wrong_key() {
        let key = "0123456789abcdef0123456789abcdef";
        let sealed = crypt::encrypt(b"{\"a\":1}", key).unwrap();
        assert_eq!(crypt::decrypt(&sealed, key).unwrap(), b"{\"a\":1}");
        assert!(crypt::decrypt(&sealed, "0123456789abcdef0123456789abcdeX").is_err());
        assert!(crypt::check_key("short").is_err());
        // A fresh nonce every time: the same document never seals to the same text.
        assert_ne!(sealed, crypt::encrypt(b"{\"a\":1}", key).unwrap());
    }

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
