//! The collection model: its JSON form (as the collections API speaks it), its stored form
//! (`_collections` rows) and the checks a collection must pass before it is saved.

use serde_json::{Map, Value, json};

use super::auth_options::AuthOptions;
use super::field::{Field, FieldKind, MalformedField};
use super::ids;
use super::index::IndexDef;
use crate::validation::{ValidationErrors, msg};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionType {
    Base,
    Auth,
    View,
}

impl CollectionType {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectionType::Base => "base",
            CollectionType::Auth => "auth",
            CollectionType::View => "view",
        }
    }

    pub fn parse(s: &str) -> Option<CollectionType> {
        match s {
            "base" => Some(CollectionType::Base),
            "auth" => Some(CollectionType::Auth),
            "view" => Some(CollectionType::View),
            _ => None,
        }
    }
}

/// The five API rules. `None` means locked (superusers only), `Some("")` public.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub list: Option<String>,
    pub view: Option<String>,
    pub create: Option<String>,
    pub update: Option<String>,
    pub delete: Option<String>,
}

/// A collection definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub kind: CollectionType,
    pub system: bool,
    pub rules: Rules,
    pub fields: Vec<Field>,
    pub indexes: Vec<String>,
    pub created: String,
    pub updated: String,
    pub view_query: String,
    /// Present exactly for auth collections.
    pub auth: Option<AuthOptions>,
    /// SQL text of this collection's frequent statements, filled on first use.
    pub statements: StatementCache,
}

/// Which of a collection's frequent statements a cached SQL text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKey {
    /// `SELECT "m".<every field> FROM <table> AS "m"`, to which a `WHERE` is appended.
    SelectPrefix,
    /// `INSERT … RETURNING` of the fields marked `true` (in field order).
    Insert(Vec<bool>),
    /// `INSERT` of every field, without `RETURNING` (see `records::insert`).
    InsertAll,
    /// `UPDATE … SET <the marked fields> WHERE id = ? RETURNING …`.
    Update(Vec<bool>),
}

/// The SQL text of a collection's frequent statements, built with sea-query the first time each
/// is needed instead of on every request (building showed up at 6 % of a read by id). Values are
/// always bound, so the text depends on the collection's table and fields only.
///
/// Registry collections are immutable (`Arc`), and cloning gives an *empty* cache, so a changed
/// copy of a collection never runs a stale statement; each entry also remembers the table
/// and fields it was built for and is rebuilt when they differ.
#[derive(Default)]
pub struct StatementCache {
    entries: std::sync::Mutex<Vec<CachedStatement>>,
}

struct CachedStatement {
    key: StatementKey,
    table: String,
    fields: Vec<String>,
    sql: std::sync::Arc<str>,
}

impl StatementCache {
    /// The SQL of `key` for collection `c`, built by `build` on a miss.
    pub fn get_or_build(
        &self,
        c: &Collection,
        key: &StatementKey,
        build: impl FnOnce() -> String,
    ) -> std::sync::Arc<str> {
        let fits = |e: &CachedStatement| {
            e.table == c.name && e.fields.iter().eq(c.fields.iter().map(|f| &f.name))
        };
        if let Ok(entries) = self.entries.lock()
            && let Some(e) = entries.iter().find(|e| e.key == *key && fits(e))
        {
            return e.sql.clone();
        }
        let sql: std::sync::Arc<str> = build().into();
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|e| fits(e) && e.key != *key);
            // A bound on odd field combinations (updates of varying subsets).
            if entries.len() < 64 {
                entries.push(CachedStatement {
                    key: key.clone(),
                    table: c.name.clone(),
                    fields: c.fields.iter().map(|f| f.name.clone()).collect(),
                    sql: sql.clone(),
                });
            }
        }
        sql
    }
}

impl Clone for StatementCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for StatementCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for StatementCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatementCache")
    }
}

/// Errors of reading a collection from JSON before any validation can run.
#[derive(Debug, thiserror::Error)]
pub enum MalformedCollection {
    #[error("{0}")]
    Field(#[from] MalformedField),
    #[error("invalid collection: {0}")]
    Shape(String),
}

/// The fields every auth collection has, in PocketBase's order.
pub const AUTH_SYSTEM_FIELDS: &[&str] = &[
    "id",
    "password",
    "tokenKey",
    "email",
    "emailVisibility",
    "verified",
];

fn system_field(name: &str, kind: FieldKind, required: bool, hidden: bool) -> Field {
    let mut f = Field {
        id: String::new(),
        name: name.into(),
        system: true,
        hidden,
        presentable: false,
        required,
        help: String::new(),
        kind,
    };
    f.ensure_id();
    f
}

/// The `id` primary-key field of every collection.
pub fn id_field() -> Field {
    system_field(
        "id",
        FieldKind::Text {
            min: 15,
            max: 15,
            pattern: "^[a-z0-9]+$".into(),
            autogenerate_pattern: "[a-z0-9]{15}".into(),
            primary_key: true,
        },
        true,
        false,
    )
}

/// The system field of an auth collection with this name.
pub fn auth_system_field(name: &str) -> Option<Field> {
    Some(match name {
        "id" => id_field(),
        "password" => system_field(
            "password",
            FieldKind::Password {
                min: 8,
                max: 0,
                pattern: String::new(),
                cost: 0,
            },
            true,
            true,
        ),
        "tokenKey" => system_field(
            "tokenKey",
            FieldKind::Text {
                min: 30,
                max: 60,
                pattern: String::new(),
                autogenerate_pattern: "[a-zA-Z0-9]{50}".into(),
                primary_key: false,
            },
            true,
            true,
        ),
        "email" => system_field(
            "email",
            FieldKind::Email {
                except_domains: vec![],
                only_domains: vec![],
            },
            true,
            false,
        ),
        "emailVisibility" => system_field("emailVisibility", FieldKind::Bool, false, false),
        "verified" => system_field("verified", FieldKind::Bool, false, false),
        _ => return None,
    })
}

/// An autodate field as PocketBase's defaults define `created` and `updated`.
pub fn autodate_field(name: &str, on_update: bool, system: bool) -> Field {
    let mut f = Field {
        id: String::new(),
        name: name.into(),
        system,
        hidden: false,
        presentable: false,
        required: false,
        help: String::new(),
        kind: FieldKind::Autodate {
            on_create: true,
            on_update,
        },
    };
    f.ensure_id();
    f
}

fn rule_from_json(v: Option<&Value>, key: &str, errs: &mut ValidationErrors) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.add(&[key], "validation_invalid_value", msg::INVALID_VALUE);
            None
        }
    }
}

/// Deep-merges `patch` into `base`: objects merge key by key, anything else is replaced.
pub fn merge_json(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_json(existing, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl Collection {
    /// A blank collection of a type, as `GET /api/collections/meta/scaffolds` shows it.
    pub fn scaffold(kind: CollectionType) -> Collection {
        let mut c = Collection {
            id: String::new(),
            name: String::new(),
            kind,
            system: false,
            rules: Rules::default(),
            fields: vec![],
            indexes: vec![],
            created: String::new(),
            updated: String::new(),
            view_query: String::new(),
            auth: None,
            statements: StatementCache::default(),
        };
        match kind {
            CollectionType::Base => c.fields.push(id_field()),
            CollectionType::Auth => {
                c.fields = AUTH_SYSTEM_FIELDS
                    .iter()
                    .filter_map(|n| auth_system_field(n))
                    .collect();
                c.auth = Some(AuthOptions::default());
            }
            CollectionType::View => {}
        }
        c
    }

    /// The collection's JSON as the API returns it (token secrets removed).
    pub fn to_json(&self) -> Value {
        let mut v = self.to_json_with_secrets();
        for key in [
            "authToken",
            "passwordResetToken",
            "emailChangeToken",
            "verificationToken",
            "fileToken",
        ] {
            if let Some(Value::Object(t)) = v.get_mut(key) {
                t.remove("secret");
            }
        }
        // OAuth2 client secrets are write-only: an update that leaves one out keeps it
        // (`keep_oauth2_secrets`).
        if let Some(Value::Array(providers)) = v.pointer_mut("/oauth2/providers") {
            for p in providers.iter_mut().filter_map(Value::as_object_mut) {
                p.remove("clientSecret");
            }
        }
        v
    }

    /// Gives the OAuth2 providers of this (updated) collection that came without a
    /// `clientSecret` (or with an empty one) the secret of `old`'s provider of the same name:
    /// the API never returns the secrets, so a client that edits a collection cannot send
    /// them back.
    pub fn keep_oauth2_secrets(&mut self, old: &Collection) {
        let (Some(new), Some(old)) = (self.auth.as_mut(), old.auth.as_ref()) else {
            return;
        };
        for p in new
            .oauth2
            .providers
            .iter_mut()
            .filter_map(Value::as_object_mut)
        {
            let missing = p
                .get("clientSecret")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            if !missing {
                continue;
            }
            let name = p.get("name").and_then(Value::as_str).unwrap_or("");
            let secret = old
                .oauth2
                .providers
                .iter()
                .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|o| o.get("clientSecret"))
                .filter(|s| s.as_str().is_some_and(|s| !s.is_empty()));
            if let Some(secret) = secret {
                p.insert("clientSecret".into(), secret.clone());
            }
        }
    }

    /// The full JSON including token secrets (for storage and export to trusted places).
    pub fn to_json_with_secrets(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("system".into(), json!(self.system));
        m.insert("listRule".into(), json!(self.rules.list));
        m.insert("viewRule".into(), json!(self.rules.view));
        m.insert("createRule".into(), json!(self.rules.create));
        m.insert("updateRule".into(), json!(self.rules.update));
        m.insert("deleteRule".into(), json!(self.rules.delete));
        m.insert(
            "fields".into(),
            Value::Array(self.fields.iter().map(Field::to_json).collect()),
        );
        m.insert("indexes".into(), json!(self.indexes));
        m.insert("created".into(), json!(self.created));
        m.insert("updated".into(), json!(self.updated));
        if self.kind == CollectionType::View {
            m.insert("viewQuery".into(), json!(self.view_query));
        }
        if self.kind == CollectionType::Auth
            && let Value::Object(opts) = self.options_json()
        {
            m.extend(opts);
        }
        Value::Object(m)
    }

    /// The `options` column of `_collections`.
    pub fn options_json(&self) -> Value {
        match (&self.kind, &self.auth) {
            (CollectionType::Auth, Some(a)) => serde_json::to_value(a).unwrap_or(json!({})),
            (CollectionType::View, _) => json!({ "viewQuery": self.view_query }),
            _ => json!({}),
        }
    }

    /// Reads a collection from the JSON of the API (or of an import). The result is not yet
    /// validated; field option type errors found while reading are returned alongside.
    pub fn from_json(v: &Value) -> Result<(Collection, ValidationErrors), MalformedCollection> {
        let obj = v
            .as_object()
            .ok_or_else(|| MalformedCollection::Shape("a collection must be an object".into()))?;
        let mut errs = ValidationErrors::new();
        let type_str = match obj.get("type") {
            None | Some(Value::Null) => "base",
            Some(Value::String(s)) if s.is_empty() => "base",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => {
                return Err(MalformedCollection::Shape("type must be a string".into()));
            }
        };
        let kind = match CollectionType::parse(type_str) {
            Some(k) => k,
            None => {
                errs.add(&["type"], "validation_in_invalid", "Must be a valid value.");
                CollectionType::Base
            }
        };
        let str_of = |key: &str| -> Result<String, MalformedCollection> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(MalformedCollection::Shape(format!(
                    "{key} must be a string"
                ))),
            }
        };
        let mut fields = Vec::new();
        match obj.get("fields") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let (f, ferrs) = Field::from_json(item)?;
                    errs.merge_under("fields", {
                        let mut wrapped = ValidationErrors::new();
                        wrapped.merge_under(&i.to_string(), ferrs);
                        wrapped
                    });
                    fields.push(f);
                }
            }
            Some(_) => return Err(MalformedCollection::Shape("fields must be a list".into())),
        }
        let indexes = match obj.get("indexes") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| MalformedCollection::Shape("indexes must be strings".into()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(MalformedCollection::Shape("indexes must be a list".into())),
        };
        let system = match obj.get("system") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(MalformedCollection::Shape("system must be a bool".into())),
        };
        let rules = Rules {
            list: rule_from_json(obj.get("listRule"), "listRule", &mut errs),
            view: rule_from_json(obj.get("viewRule"), "viewRule", &mut errs),
            create: rule_from_json(obj.get("createRule"), "createRule", &mut errs),
            update: rule_from_json(obj.get("updateRule"), "updateRule", &mut errs),
            delete: rule_from_json(obj.get("deleteRule"), "deleteRule", &mut errs),
        };
        let auth = if kind == CollectionType::Auth {
            // Start from the defaults and lay the given options over them, so a partial
            // options object keeps PocketBase's defaults for what it leaves out.
            let mut base = serde_json::to_value(AuthOptions::default())
                .map_err(|e| MalformedCollection::Shape(e.to_string()))?;
            let mut given = Map::new();
            for (k, v) in obj {
                if base.get(k).is_some() {
                    given.insert(k.clone(), v.clone());
                }
            }
            merge_json(&mut base, &Value::Object(given));
            let mut opts: AuthOptions = serde_json::from_value(base)
                .map_err(|e| MalformedCollection::Shape(format!("auth options: {e}")))?;
            opts.ensure_secrets();
            Some(opts)
        } else {
            None
        };
        let c = Collection {
            id: str_of("id")?,
            name: str_of("name")?,
            kind,
            system,
            rules,
            fields,
            indexes,
            created: str_of("created")?,
            updated: str_of("updated")?,
            view_query: str_of("viewQuery")?,
            auth,
            statements: StatementCache::default(),
        };
        Ok((c, errs))
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn field_by_id(&self, id: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.id == id)
    }

    pub fn is_auth(&self) -> bool {
        self.kind == CollectionType::Auth
    }

    /// Fills in what PocketBase derives on save: ids, the system fields of the type (kept in
    /// the user's position when named, appended otherwise), the auth indexes, and
    /// de-duplication of fields given twice under one name (the later one wins, keeping the
    /// earlier id).
    pub fn normalize(&mut self) {
        if self.id.is_empty() {
            self.id = ids::collection_id(self.kind.as_str(), &self.name);
        }
        let mut deduped: Vec<Field> = Vec::with_capacity(self.fields.len());
        for mut f in std::mem::take(&mut self.fields) {
            if let Some(pos) = deduped.iter().position(|e| {
                (!f.id.is_empty() && e.id == f.id) || (f.id.is_empty() && e.name == f.name)
            }) {
                if f.id.is_empty() {
                    f.id = deduped[pos].id.clone();
                }
                deduped[pos] = f;
            } else {
                f.ensure_id();
                deduped.push(f);
            }
        }
        self.fields = deduped;
        for f in &mut self.fields {
            f.ensure_id();
        }
        match self.kind {
            CollectionType::Base => {
                match self.fields.iter().position(|f| f.name == "id") {
                    Some(pos) => {
                        let mut id = id_field();
                        if let FieldKind::Text { .. } = self.fields[pos].kind {
                            // Keep the user's tuning of the id field (length, pattern).
                            id = self.fields[pos].clone();
                            id.system = true;
                            id.required = true;
                            if let FieldKind::Text { primary_key, .. } = &mut id.kind {
                                *primary_key = true;
                            }
                        }
                        self.fields[pos] = id;
                    }
                    None => self.fields.insert(0, id_field()),
                }
            }
            CollectionType::Auth => {
                for name in AUTH_SYSTEM_FIELDS {
                    let Some(mut sys) = auth_system_field(name) else {
                        continue;
                    };
                    match self.fields.iter().position(|f| f.name == *name) {
                        Some(pos) => {
                            let existing = &self.fields[pos];
                            // Keep the options a user may tune on system fields of the right
                            // type (e.g. password min, email domains); enforce the rest.
                            if existing.kind.type_name() == sys.kind.type_name() {
                                sys.kind = existing.kind.clone();
                                sys.presentable = existing.presentable;
                                sys.help = existing.help.clone();
                            }
                            sys.id = existing.id.clone();
                            self.fields[pos] = sys;
                        }
                        None if *name == "id" => self.fields.insert(0, sys),
                        None => self.fields.push(sys),
                    }
                }
                let token_idx = format!("idx_tokenKey_{}", self.id);
                let email_idx = format!("idx_email_{}", self.id);
                let has = |name: &str, idx: &[String]| {
                    idx.iter()
                        .any(|s| IndexDef::parse(s).map(|d| d.name == name).unwrap_or(false))
                };
                if !has(&token_idx, &self.indexes) {
                    self.indexes.push(format!(
                        "CREATE UNIQUE INDEX `{token_idx}` ON `{}` (`tokenKey`)",
                        self.name
                    ));
                }
                if !has(&email_idx, &self.indexes) {
                    self.indexes.push(format!(
                        "CREATE UNIQUE INDEX `{email_idx}` ON `{}` (`email`) WHERE `email` != ''",
                        self.name
                    ));
                }
                if let Some(a) = &mut self.auth {
                    a.ensure_secrets();
                }
            }
            CollectionType::View => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_cache_never_serves_another_shape() {
        let mut c = Collection::scaffold(CollectionType::Base);
        c.name = "posts".into();
        let built = std::cell::Cell::new(0);
        let sql = |c: &Collection| {
            c.statements
                .get_or_build(c, &StatementKey::SelectPrefix, || {
                    built.set(built.get() + 1);
                    format!("{} {}", c.name, c.fields.len())
                })
                .to_string()
        };
        assert_eq!(sql(&c), "posts 1");
        assert_eq!(sql(&c), "posts 1");
        assert_eq!(built.get(), 1, "a hit does not rebuild");
        // A copy starts empty, and a changed collection does not get the old text.
        let mut copy = c.clone();
        copy.name = "articles".into();
        assert_eq!(sql(&copy), "articles 1");
        c.fields[0].name = "key".into();
        assert_eq!(sql(&c), "posts 1");
        assert_eq!(built.get(), 3);
        c.name = "other".into();
        assert_eq!(sql(&c), "other 1");
        // Different keys are different entries.
        let insert = c
            .statements
            .get_or_build(&c, &StatementKey::Insert(vec![true]), || "insert".into());
        assert_eq!(&*insert, "insert");
        assert_eq!(sql(&c), "other 1");
    }

    #[test]
    fn auth_scaffold_has_system_fields_in_order() {
        let c = Collection::scaffold(CollectionType::Auth);
        let names: Vec<_> = c.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, AUTH_SYSTEM_FIELDS);
        let j = c.to_json();
        assert_eq!(j["authToken"], json!({"duration": 432000}));
        assert_eq!(j["passwordAuth"]["identityFields"], json!(["email"]));
        assert!(
            c.to_json_with_secrets()["authToken"]["secret"]
                .as_str()
                .is_some_and(|s| s.len() == 50)
        );
    }

    #[test]
    fn normalize_adds_id_and_auth_indexes() {
        let (mut c, errs) = Collection::from_json(&json!({"name":"members","type":"auth",
            "fields":[{"name":"email","type":"text"},{"name":"nick","type":"text"}]}))
        .unwrap();
        assert!(errs.is_empty());
        c.normalize();
        assert_eq!(c.id, ids::collection_id("auth", "members"));
        let email = c.field("email").unwrap();
        assert_eq!(email.kind.type_name(), "email");
        assert!(email.system);
        assert_eq!(c.fields[0].name, "id");
        assert_eq!(c.indexes.len(), 2);
        assert!(c.indexes[1].contains("WHERE `email` != ''"));
    }

    #[test]
    fn duplicate_names_collapse_keeping_first_id() {
        let (mut c, _) = Collection::from_json(&json!({"name":"t",
            "fields":[{"name":"a","type":"text"},{"name":"a","type":"number"}]}))
        .unwrap();
        c.normalize();
        assert_eq!(c.fields.len(), 2);
        assert_eq!(c.fields[1].id, ids::field_id("text", "a"));
        assert_eq!(c.fields[1].kind.type_name(), "number");
    }

    #[test]
    fn oauth2_client_secrets_are_write_only() {
        let with = |providers: Value| {
            Collection::from_json(&json!({"name": "u", "type": "auth", "oauth2": {"enabled": true, "providers": providers}}))
                .unwrap()
                .0
        };
        let old = with(json!([
            {"name": "github", "clientId": "a", "clientSecret": "gh-secret"},
            {"name": "google", "clientId": "b", "clientSecret": "g-secret"}
        ]));
        let shown = old.to_json().to_string();
        assert!(!shown.contains("gh-secret") && !shown.contains("g-secret"));
        assert!(old.to_json_with_secrets().to_string().contains("gh-secret"));
        // sent back without secrets (or with an empty one): the stored ones stay; a new secret
        // replaces; a provider that is new gets none
        let mut new = with(json!([
            {"name": "github", "clientId": "a2"},
            {"name": "google", "clientId": "b", "clientSecret": "new-g"},
            {"name": "gitlab", "clientId": "c", "clientSecret": ""}
        ]));
        new.keep_oauth2_secrets(&old);
        let p = &new.auth.as_ref().unwrap().oauth2.providers;
        assert_eq!(p[0]["clientSecret"], "gh-secret");
        assert_eq!(p[0]["clientId"], "a2");
        assert_eq!(p[1]["clientSecret"], "new-g");
        assert_eq!(p[2]["clientSecret"], "");
    }

    #[test]
    fn partial_auth_options_keep_defaults() {
        let (c, _) = Collection::from_json(
            &json!({"name":"m","type":"auth","passwordAuth":{"enabled":false},"authToken":{"duration":60}}),
        )
        .unwrap();
        let a = c.auth.unwrap();
        assert!(!a.password_auth.enabled);
        assert_eq!(a.password_auth.identity_fields, vec!["email".to_string()]);
        assert_eq!(a.auth_token.duration, 60);
        assert_eq!(a.auth_token.secret.len(), 50);
    }

    #[test]
    fn wrong_shapes_are_malformed() {
        assert!(Collection::from_json(&json!({"name":"t","fields":"x"})).is_err());
        assert!(Collection::from_json(&json!({"name":1})).is_err());
        assert!(Collection::from_json(&json!([])).is_err());
        let (_, errs) = Collection::from_json(&json!({"name":"t","type":"weird"})).unwrap();
        assert!(errs.has("type"));
    }
}
