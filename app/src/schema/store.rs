//! The collection registry: `_collections` rows, the in-memory cache every request reads, and
//! the transactional save/delete paths that keep rows, tables and indexes in step.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use sea_query::{Alias, Expr, ExprTrait, OnConflict, Query};
use serde_json::Value;

use super::collection::{Collection, CollectionType};
use super::field::FieldKind;
use super::index::IndexDef;
use super::{SchemaError, ddl, ids};
use crate::db::entities::{collection, migration};
use crate::db::{self, Conn, Db, DbError};
use crate::validation::{ValidationErrors, msg};

/// An immutable snapshot of all collections, swapped whole after each committed change.
#[derive(Debug, Default)]
pub struct Registry {
    version: u64,
    list: Vec<Arc<Collection>>,
    by_id: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

impl Registry {
    fn new(version: u64, list: Vec<Collection>) -> Registry {
        let list: Vec<Arc<Collection>> = list.into_iter().map(Arc::new).collect();
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let by_name = list
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.to_lowercase(), i))
            .collect();
        Registry {
            version,
            list,
            by_id,
            by_name,
        }
    }

    /// A registry of the given collections (for tools and tests that work without a store).
    pub fn from_list(list: Vec<Collection>) -> Registry {
        Registry::new(0, list)
    }

    /// Finds a collection by id, or by name (case-insensitive).
    pub fn get(&self, id_or_name: &str) -> Option<Arc<Collection>> {
        self.by_id
            .get(id_or_name)
            .or_else(|| self.by_name.get(&id_or_name.to_lowercase()))
            .map(|&i| self.list[i].clone())
    }

    pub fn all(&self) -> &[Arc<Collection>] {
        &self.list
    }
}

/// Reads and changes collections. Cheap to clone.
#[derive(Clone)]
pub struct CollectionStore {
    db: Db,
    cache: Arc<RwLock<Arc<Registry>>>,
    version: Arc<AtomicU64>,
    /// Where automigrate files go (None: automigrate off).
    migrations_dir: Option<std::path::PathBuf>,
    /// Collections and fields plugins own (kept while the plugin is on).
    protection: Arc<RwLock<Protection>>,
}

/// What plugins own: collections that cannot be deleted, fields an edit cannot remove.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    /// Collection id -> plugin name.
    pub owned: std::collections::HashMap<String, String>,
    /// (collection id, field, plugin name).
    pub fields: Vec<(String, super::Field, String)>,
}

impl Protection {
    /// Puts back plugin fields an edit or import of `c` left out (by field id), so their
    /// columns and data stay.
    fn restore_fields(&self, c: &mut Collection) {
        for (cid, f, _) in &self.fields {
            if *cid == c.id && !c.fields.iter().any(|x| x.id == f.id) {
                c.fields.push(f.clone());
            }
        }
    }

    fn refuse_delete(&self, c: &Collection) -> Result<(), SchemaError> {
        match self.owned.get(&c.id) {
            Some(plugin) => Err(SchemaError::Refused(format!(
                "The collection {} belongs to the {plugin} plugin and cannot be deleted while the plugin is on.",
                c.name
            ))),
            None => Ok(()),
        }
    }
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// Reads one `_collections` row into a collection.
fn collection_from_model(row: collection::Model) -> Result<Collection, String> {
    let fields: Value = serde_json::from_str(&row.fields.0).unwrap_or(Value::Array(vec![]));
    let indexes: Value = serde_json::from_str(&row.indexes.0).unwrap_or(Value::Array(vec![]));
    let options: Value =
        serde_json::from_str(&row.options.0).unwrap_or(Value::Object(Default::default()));
    let rule = |r: Option<String>| r.map(Value::String).unwrap_or(Value::Null);
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), Value::String(row.id));
    obj.insert("system".into(), Value::Bool(row.system));
    obj.insert("type".into(), Value::String(row.kind));
    obj.insert("name".into(), Value::String(row.name));
    obj.insert("fields".into(), fields);
    obj.insert("indexes".into(), indexes);
    obj.insert("listRule".into(), rule(row.list_rule));
    obj.insert("viewRule".into(), rule(row.view_rule));
    obj.insert("createRule".into(), rule(row.create_rule));
    obj.insert("updateRule".into(), rule(row.update_rule));
    obj.insert("deleteRule".into(), rule(row.delete_rule));
    obj.insert("created".into(), Value::String(row.created));
    obj.insert("updated".into(), Value::String(row.updated));
    if let Value::Object(o) = options {
        for (k, v) in o {
            obj.entry(k).or_insert(v);
        }
    }
    Collection::from_json(&Value::Object(obj))
        .map(|(c, _)| c)
        .map_err(|e| e.to_string())
}

/// Loads every collection (inside whatever transaction `conn` is in), in creation order.
pub fn load_all(conn: &Conn) -> Result<Vec<Collection>, DbError> {
    let rows = collection::Entity::find()
        .order_by_asc(Expr::col(col("rowid")))
        .all(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        match collection_from_model(r) {
            Ok(c) => out.push(c),
            Err(e) => tracing::error!(error = %e, "skipping an unreadable _collections row"),
        }
    }
    Ok(out)
}

/// Writes (inserts or replaces) the `_collections` row of `c`.
fn upsert_row(conn: &Conn, c: &Collection) -> Result<(), DbError> {
    use collection::Column as C;
    let json = |v: &Value| db::entities::Text(v.to_string());
    let fields = Value::Array(c.fields.iter().map(|f| f.to_json()).collect());
    let row = collection::ActiveModel {
        id: Set(c.id.clone()),
        system: Set(c.system),
        kind: Set(c.kind.as_str().to_owned()),
        name: Set(c.name.clone()),
        fields: Set(json(&fields)),
        indexes: Set(json(&serde_json::json!(c.indexes))),
        list_rule: Set(c.rules.list.clone()),
        view_rule: Set(c.rules.view.clone()),
        create_rule: Set(c.rules.create.clone()),
        update_rule: Set(c.rules.update.clone()),
        delete_rule: Set(c.rules.delete.clone()),
        options: Set(json(&c.options_json())),
        created: Set(c.created.clone()),
        updated: Set(c.updated.clone()),
    };
    collection::Entity::insert(row)
        .on_conflict(
            OnConflict::column(C::Id)
                .update_columns([
                    C::System,
                    C::Kind,
                    C::Name,
                    C::Fields,
                    C::Indexes,
                    C::ListRule,
                    C::ViewRule,
                    C::CreateRule,
                    C::UpdateRule,
                    C::DeleteRule,
                    C::Options,
                    C::Updated,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)?;
    Ok(())
}

/// Deletes the `_collections` row of the collection `id`.
fn delete_row(conn: &Conn, id: &str) -> Result<(), DbError> {
    collection::Entity::delete_many()
        .filter(collection::Column::Id.eq(id))
        .exec(conn)?;
    Ok(())
}

/// Records (or, with `applied` false, forgets) a migration file in `_migrations`.
fn set_migration(conn: &Conn, file: String, applied: bool) -> Result<(), DbError> {
    if applied {
        migration::Entity::insert(migration::ActiveModel {
            file: Set(file),
            applied: Set(chrono::Utc::now().timestamp_micros()),
        })
        .exec_without_returning(conn)?;
    } else {
        migration::Entity::delete_by_id(file).exec(conn)?;
    }
    Ok(())
}

fn name_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^\w+$").expect("static regex"))
}

/// Names of tables in the database that are not collections (system tables, SQLite's own).
fn internal_tables(conn: &Conn, collections: &[Collection]) -> Result<Vec<String>, DbError> {
    let q = Query::select()
        .column(col("name"))
        .from(col("sqlite_master"))
        .and_where(Expr::col(col("type")).is_in(["table", "view"]))
        .to_owned();
    let names = db::query_rows(conn, &q, |r| Ok(r.try_get_by_index::<String>(0)?))?;
    Ok(names
        .into_iter()
        .filter(|n| !collections.iter().any(|c| c.name.eq_ignore_ascii_case(n)))
        .collect())
}

/// The registry rules of `c` compile against: the other collections plus `c` as given.
fn registry_with<'a>(others: impl Iterator<Item = &'a Collection>, c: &Collection) -> Registry {
    let mut view: Vec<Collection> = others.filter(|o| o.id != c.id).cloned().collect();
    view.push(c.clone());
    Registry::from_list(view)
}

/// Why one rule of `c` does not parse or compile against `registry` (as saving reports it).
fn rule_problem(registry: &Registry, c: &Collection, rule: &str) -> Option<String> {
    if rule.trim().is_empty() {
        return None;
    }
    let request = crate::query::compile::RequestInfo::default();
    let env = crate::query::compile::Env {
        registry,
        request: &request,
        trusted: true,
        superuser: false,
    };
    crate::query::fexpr::parse(rule)
        .map_err(|e| e.to_string())
        .and_then(|expr| {
            crate::query::compile::compile(&expr, c, "m", &env)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .err()
        .map(|raw| format!("Invalid rule. Raw error: {raw}."))
}

/// Checks one rule of the (unsaved) collection `c` against the other collections, exactly as
/// saving would: the message saving would give, or `None`. Used for live checks.
pub fn check_rule(registry: &Registry, c: &Collection, rule: &str) -> Option<String> {
    let view = registry_with(registry.all().iter().map(|o| &**o), c);
    rule_problem(&view, c, rule)
}

/// Checks a normalised collection against the others. `old` is the stored version when
/// updating.
pub fn validate(
    conn: &Conn,
    c: &Collection,
    old: Option<&Collection>,
    all: &[Collection],
) -> Result<ValidationErrors, DbError> {
    let mut e = ValidationErrors::new();
    // `all` may hold the stored version of `c` (updates); everything else is "other".
    let others: Vec<&Collection> = all
        .iter()
        .filter(|o| old.is_none_or(|old| o.id != old.id))
        .collect();

    if c.name.is_empty() {
        e.add(&["name"], "validation_required", msg::REQUIRED);
    } else if c.name.len() > 255 {
        e.add_with_params(
            &["name"],
            "validation_length_out_of_range",
            "The length must be between 1 and 255.",
            Some(serde_json::json!({"min": 1, "max": 255})),
        );
    } else if !name_regex().is_match(&c.name) {
        e.add(
            &["name"],
            "validation_match_invalid",
            "Must be in a valid format.",
        );
    } else if others.iter().any(|o| o.name.eq_ignore_ascii_case(&c.name)) {
        e.add(
            &["name"],
            "validation_collection_name_exists",
            "Collection name must be unique (case insensitive).",
        );
    } else if c.name.to_lowercase().starts_with("sqlite_")
        || internal_tables(conn, all)?
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&c.name))
    {
        e.add(
            &["name"],
            "validation_collection_name_invalid",
            "The name shouldn't match with an existing internal table.",
        );
    }
    if c.id.len() > 100 || !name_regex().is_match(&c.id) {
        e.add(
            &["id"],
            "validation_match_invalid",
            "Must be in a valid format.",
        );
    }
    if c.kind == CollectionType::View {
        if c.view_query.trim().is_empty() {
            e.add(&["viewQuery"], "validation_required", msg::REQUIRED);
            e.add(&["fields"], "validation_required", msg::REQUIRED);
        } else {
            e.add(
                &["viewQuery"],
                "validation_unsupported_view",
                "View collections are not supported by this server yet.",
            );
        }
    }
    if let Some(old) = old {
        if old.kind != c.kind {
            e.add(
                &["type"],
                "validation_collection_type_change",
                "Collection type cannot be changed.",
            );
        }
        if old.system && old.name != c.name {
            e.add(
                &["name"],
                "validation_collection_system_name_change",
                "System collection name cannot be changed.",
            );
        }
    }

    let mut seen = std::collections::HashSet::new();
    for (i, f) in c.fields.iter().enumerate() {
        let idx = i.to_string();
        let mut fe = f.validate();
        if !f.name.is_empty() && !seen.insert(f.name.to_lowercase()) {
            fe.add_with_params(
                &["name"],
                "validation_duplicated_field_name",
                &format!("Duplicated or invalid field name {}.", f.name),
                Some(serde_json::json!({"fieldName": f.name})),
            );
        }
        if let FieldKind::Relation { collection_id, .. } = &f.kind
            && !collection_id.is_empty()
            && collection_id != &c.id
            && !all.iter().any(|o| &o.id == collection_id)
        {
            fe.add(
                &["collectionId"],
                "validation_field_relation_missing_collection",
                "The relation collection doesn't exist.",
            );
        }
        if let Some(old) = old
            && let Some(of) = old.field_by_id(&f.id)
        {
            if of.kind.type_name() != f.kind.type_name() {
                let mut wrap = ValidationErrors::new();
                wrap.add(
                    &[&idx],
                    "validation_field_type_change",
                    "Field type cannot be changed.",
                );
                e.merge_under("fields", wrap);
                continue;
            }
            if of.system && of.name != f.name {
                fe.add(
                    &["name"],
                    "validation_system_field_name_change",
                    "System field name cannot be changed.",
                );
            }
        }
        let mut wrap = ValidationErrors::new();
        wrap.merge_under(&idx, fe);
        e.merge_under("fields", wrap);
    }
    if let Some(old) = old {
        for of in old.fields.iter().filter(|f| f.system) {
            if c.field_by_id(&of.id).is_none() {
                e.add(
                    &["fields"],
                    "validation_system_field_removed",
                    &format!("System field {:?} cannot be deleted.", of.name),
                );
            }
        }
    }

    // Identity fields need a UNIQUE index of their own (email has one by default).
    if let Some(a) = &c.auth {
        for name in &a.password_auth.identity_fields {
            let unique = c
                .indexes
                .iter()
                .filter_map(|s| IndexDef::parse(s).ok())
                .any(|d| d.unique && d.columns.len() == 1 && d.columns[0].name == *name);
            if !unique {
                e.add_with_params(
                    &["passwordAuth", "identityFields"],
                    "validation_missing_unique_constraint",
                    &format!("The field {name} doesn't have a UNIQUE constraint."),
                    Some(serde_json::json!({"fieldName": name})),
                );
                break;
            }
        }
    }

    // Rules must parse and compile against the new schema (names, relation paths).
    let registry = registry_with(all.iter(), c);
    let mut rules: Vec<(&str, &Option<String>)> = vec![
        ("listRule", &c.rules.list),
        ("viewRule", &c.rules.view),
        ("createRule", &c.rules.create),
        ("updateRule", &c.rules.update),
        ("deleteRule", &c.rules.delete),
    ];
    if let Some(a) = &c.auth {
        rules.push(("authRule", &a.auth_rule));
        rules.push(("manageRule", &a.manage_rule));
    }
    for (key, rule) in rules {
        if let Some(problem) = rule.as_deref().and_then(|r| rule_problem(&registry, c, r)) {
            e.add(&[key], "validation_invalid_rule", &problem);
        }
    }

    // Indexes: parse, check referenced columns exist, and that names are unique database-wide.
    let mut index_names = std::collections::HashSet::new();
    let field_names: Vec<&str> = c.fields.iter().map(|f| f.name.as_str()).collect();
    for (i, s) in c.indexes.iter().enumerate() {
        let idx = i.to_string();
        let problem = match IndexDef::parse(s) {
            Err(err) => Some(format!("Invalid index expression - {err}.")),
            Ok(d) => {
                if let Some(missing) = d
                    .referenced_columns()
                    .into_iter()
                    .find(|n| !field_names.contains(n))
                {
                    Some(format!(
                        "Failed to create index {} - no such column: {missing}.",
                        d.name
                    ))
                } else if !index_names.insert(d.name.to_lowercase())
                    || others.iter().any(|o| {
                        o.indexes
                            .iter()
                            .filter_map(|x| IndexDef::parse(x).ok())
                            .any(|x| x.name.eq_ignore_ascii_case(&d.name))
                    })
                {
                    Some(format!("The index name {:?} is already used.", d.name))
                } else {
                    None
                }
            }
        };
        if let Some(p) = problem {
            e.add(
                &["indexes", &idx],
                "validation_invalid_index_expression",
                &p,
            );
        }
    }
    Ok(e)
}

impl CollectionStore {
    /// Loads the registry from the database.
    pub async fn open(db: Db) -> Result<CollectionStore, DbError> {
        let list = db.read(load_all).await?;
        let store = CollectionStore {
            db,
            cache: Arc::new(RwLock::new(Arc::new(Registry::default()))),
            version: Arc::new(AtomicU64::new(1)),
            migrations_dir: None,
            protection: Arc::default(),
        };
        store.install(Registry::new(1, list));
        Ok(store)
    }

    fn install(&self, reg: Registry) {
        let mut guard = match self.cache.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if reg.version >= guard.version {
            *guard = Arc::new(reg);
        }
    }

    /// Turns automigrate on: schema changes made through this store write migration files.
    pub fn with_automigrate(mut self, dir: Option<std::path::PathBuf>) -> CollectionStore {
        self.migrations_dir = dir;
        self
    }

    /// What plugins own (a copy).
    pub fn protection(&self) -> Protection {
        match self.protection.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn protection_mut(&self) -> std::sync::RwLockWriteGuard<'_, Protection> {
        match self.protection.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Marks a collection as owned by a plugin (no deletes while it is on).
    pub fn protect_collection(&self, id: &str, plugin: &str) {
        self.protection_mut()
            .owned
            .insert(id.to_string(), plugin.to_string());
    }

    /// Marks a field of a collection as added by a plugin (edits keep it).
    pub fn protect_field(&self, collection_id: &str, field: super::Field, plugin: &str) {
        let mut p = self.protection_mut();
        p.fields
            .retain(|(c, f, _)| !(c == collection_id && f.id == field.id));
        p.fields
            .push((collection_id.to_string(), field, plugin.to_string()));
    }

    /// The plugin owning a collection, if any.
    pub fn owner_of(&self, id: &str) -> Option<String> {
        self.protection().owned.get(id).cloned()
    }

    /// The current snapshot of all collections.
    pub fn snapshot(&self) -> Arc<Registry> {
        match self.cache.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn get(&self, id_or_name: &str) -> Option<Arc<Collection>> {
        self.snapshot().get(id_or_name)
    }

    /// Runs a schema change on the writer: `change` gets the connection and the current
    /// collections (read inside the same transaction, so concurrent changes cannot race) and
    /// returns its result; the registry is reloaded in the transaction and installed after
    /// commit.
    async fn change<T, F>(&self, change: F) -> Result<T, SchemaError>
    where
        F: FnOnce(&Conn, &[Collection]) -> Result<T, SchemaError> + Send + 'static,
        T: Send + 'static,
    {
        let version = self.version.clone();
        let (out, reg) = self
            .db
            .write(move |conn| {
                let all = load_all(conn)?;
                let out = change(conn, &all)?;
                let list = load_all(conn)?;
                let v = version.fetch_add(1, Ordering::SeqCst) + 1;
                Ok::<_, SchemaError>((out, Registry::new(v, list)))
            })
            .await?;
        self.install(reg);
        Ok(out)
    }

    /// Creates a collection from API JSON.
    pub async fn create(&self, input: Value) -> Result<Arc<Collection>, SchemaError> {
        let file = self.automigrate_file(&format!(
            "created_{}",
            input
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("collection")
        ));
        let f2 = file.clone();
        let c = self
            .change(move |conn, all| {
                let c = create_in(conn, all, &input)?;
                record_migration(conn, f2)?;
                Ok(c)
            })
            .await?;
        self.automigrate(file, vec![op("create", &c)], vec![op("delete", &c)]);
        self.get(&c.id).ok_or(SchemaError::NotFound)
    }

    /// Applies a (partial) update given as API JSON to the collection `id_or_name`.
    pub async fn update(
        &self,
        id_or_name: &str,
        patch: Value,
    ) -> Result<Arc<Collection>, SchemaError> {
        let key = id_or_name.to_string();
        let label = patch
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&key)
            .to_string();
        let file = self.automigrate_file(&format!("updated_{label}"));
        let f2 = file.clone();
        let prot = self.protection();
        let (old, new) = self
            .change(move |conn, all| {
                let out = update_in(conn, all, &key, &patch, &prot)?;
                record_migration(conn, f2)?;
                Ok(out)
            })
            .await?;
        self.automigrate(file, vec![op("update", &new)], vec![op("update", &old)]);
        self.get(&new.id).ok_or(SchemaError::NotFound)
    }

    /// Deletes a collection and its table. Refused for system collections and for collections
    /// other collections point to with relation fields.
    pub async fn delete(&self, id_or_name: &str) -> Result<(), SchemaError> {
        let key = id_or_name.to_string();
        let file = self.automigrate_file(&format!("deleted_{key}"));
        let f2 = file.clone();
        let prot = self.protection();
        let old = self
            .change(move |conn, all| {
                let c = delete_in(conn, all, &key, &prot)?;
                record_migration(conn, f2)?;
                Ok(c)
            })
            .await?;
        self.automigrate(file, vec![op("delete", &old)], vec![op("create", &old)]);
        Ok(())
    }

    /// Applies migration operations (`create`/`update`/`delete` of full collection JSON) in one
    /// transaction, optionally recording (or removing) a `_migrations` row in the same
    /// transaction. No automigrate file is written for these.
    pub async fn apply_ops(
        &self,
        ops: Vec<Value>,
        record: Option<(String, bool)>,
    ) -> Result<(), SchemaError> {
        self.change(move |conn, all| {
            let mut all = all.to_vec();
            for (i, o) in ops.iter().enumerate() {
                let action = o.get("action").and_then(Value::as_str).unwrap_or("");
                let coll = o.get("collection").cloned().unwrap_or(Value::Null);
                let key = coll
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .or_else(|| coll.get("name").and_then(Value::as_str))
                    .unwrap_or("")
                    .to_string();
                let res = match action {
                    "create" => create_in(conn, &all, &coll).map(|_| ()),
                    "update" => {
                        update_in(conn, &all, &key, &coll, &Protection::default()).map(|_| ())
                    }
                    "delete" => delete_in(conn, &all, &key, &Protection::default()).map(|_| ()),
                    other => Err(SchemaError::Malformed(format!(
                        "unknown migration action {other:?}"
                    ))),
                };
                res.map_err(|e| match e {
                    SchemaError::Validation(v) => SchemaError::Malformed(format!(
                        "operation {i} ({action} {key}): {}",
                        v.into_value()
                    )),
                    other => other,
                })?;
                all = load_all(conn)?;
            }
            if let Some((file, applied)) = record {
                set_migration(conn, file, applied)?;
            }
            Ok(())
        })
        .await
    }

    /// The file name of the automigrate file for a change (None when automigrate is off).
    fn automigrate_file(&self, label: &str) -> Option<String> {
        self.migrations_dir
            .as_ref()
            .map(|dir| super::migrations::new_file_name(dir, label))
    }

    /// Writes a migration file for a schema change made through the API (when automigrate is
    /// on). The change is already committed; a failure here is logged.
    fn automigrate(&self, file: Option<String>, up: Vec<Value>, down: Vec<Value>) {
        let (Some(dir), Some(file)) = (self.migrations_dir.as_ref(), file) else {
            return;
        };
        if let Err(e) = super::migrations::write_named(dir, &file, &up, &down) {
            tracing::error!(error = %e, dir = %dir.display(), "could not write the automigrate file");
        }
    }

    /// Deletes every record of a collection, keeping its schema.
    pub async fn truncate(&self, id_or_name: &str) -> Result<(), SchemaError> {
        let c = self.get(id_or_name).ok_or(SchemaError::NotFound)?;
        if c.kind == CollectionType::View {
            return Err(SchemaError::Refused(
                "View collections cannot be truncated.".into(),
            ));
        }
        let table = c.name.clone();
        self.db
            .write(move |conn| {
                let q = Query::delete().from_table(col(&table)).to_owned();
                db::execute(conn, &q)?;
                Ok::<_, SchemaError>(())
            })
            .await
    }

    /// Imports collections (PocketBase's `PUT /api/collections/import`): each given collection
    /// is created or updated (matched by id, then by name); with `delete_missing`, collections
    /// not in the list are deleted (system ones excepted). All of it happens in one
    /// transaction; any error leaves everything as it was.
    pub async fn import(
        &self,
        mut items: Vec<Value>,
        delete_missing: bool,
    ) -> Result<(), SchemaError> {
        super::export::resolve_portable(&mut items, &self.snapshot());
        let prot = self.protection();
        self.change(move |conn, all| {
            let mut current: Vec<Collection> = all.to_vec();
            let mut errors = ValidationErrors::new();
            let mut kept_ids = Vec::new();
            // Create tables in dependency order is not needed in SQLite (no FKs between
            // collection tables); but relation checks need every imported id visible, so the
            // candidates are all normalised before any validation.
            let mut candidates = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let (mut c, read_errs) = Collection::from_json(item)?;
                let old = all
                    .iter()
                    .find(|o| {
                        (!c.id.is_empty() && o.id == c.id) || o.name.eq_ignore_ascii_case(&c.name)
                    })
                    .cloned();
                if let Some(old) = &old {
                    c.id = old.id.clone();
                    c.system = old.system;
                    c.created = old.created.clone();
                    if c.is_auth()
                        && let (Some(new_a), Some(old_a)) = (&mut c.auth, &old.auth)
                    {
                        // Keep stored secrets when the import (as exported) has none.
                        for (key, n, o) in [
                            ("authToken", &mut new_a.auth_token, &old_a.auth_token),
                            (
                                "passwordResetToken",
                                &mut new_a.password_reset_token,
                                &old_a.password_reset_token,
                            ),
                            (
                                "emailChangeToken",
                                &mut new_a.email_change_token,
                                &old_a.email_change_token,
                            ),
                            (
                                "verificationToken",
                                &mut new_a.verification_token,
                                &old_a.verification_token,
                            ),
                            ("fileToken", &mut new_a.file_token, &old_a.file_token),
                        ] {
                            let given = item
                                .get(key)
                                .and_then(|t| t.get("secret"))
                                .and_then(Value::as_str)
                                .is_some_and(|s| !s.is_empty());
                            if !given {
                                n.secret = o.secret.clone();
                            }
                        }
                    }
                } else {
                    c.system = false;
                    c.created = ids::now();
                }
                c.updated = ids::now();
                prot.restore_fields(&mut c);
                c.normalize();
                candidates.push((i, c, old, read_errs));
            }
            let mut view: Vec<Collection> = current.clone();
            for (_, c, _, _) in &candidates {
                match view.iter_mut().find(|o| o.id == c.id) {
                    Some(slot) => *slot = c.clone(),
                    None => view.push(c.clone()),
                }
            }
            for (i, c, old, read_errs) in &candidates {
                let others: Vec<Collection> = view
                    .iter()
                    .filter(|o| o.id != c.id || old.is_some())
                    .cloned()
                    .collect();
                let mut errs = validate(conn, c, old.as_ref(), &others)?;
                merge_errors(&mut errs, read_errs.clone());
                if !errs.is_empty() && errors.is_empty() {
                    // PocketBase reports the first failing collection as one import failure.
                    errors.add(
                        &["collections"],
                        "validation_collections_import_failure",
                        &format!(
                            "Failed to import collection {:?} (#{i}): {}",
                            c.name,
                            errs.into_value()
                        ),
                    );
                }
            }
            errors.into_result()?;
            for (_, c, old, _) in &candidates {
                let stmts = match old {
                    Some(old) => ddl::diff_statements(old, c),
                    None => ddl::create_statements(c),
                }
                .map_err(SchemaError::Internal)?;
                for s in stmts {
                    db::execute_ddl(conn, &s)?;
                }
                upsert_row(conn, c)?;
                kept_ids.push(c.id.clone());
                match current.iter_mut().find(|o| o.id == c.id) {
                    Some(slot) => *slot = c.clone(),
                    None => current.push(c.clone()),
                }
            }
            if delete_missing {
                for c in current
                    .iter()
                    .filter(|c| !c.system && !kept_ids.contains(&c.id))
                    .filter(|c| !prot.owned.contains_key(&c.id))
                {
                    db::execute_ddl(conn, &ddl::drop_statement(&c.name))?;
                    delete_row(conn, &c.id)?;
                }
            }
            Ok(())
        })
        .await
    }

    /// Creates a collection defined in code (a plugin's) without an automigrate file: the
    /// plugin is its source, and creates it again on a fresh database.
    pub async fn create_quiet(&self, input: Value) -> Result<Arc<Collection>, SchemaError> {
        let c = self
            .change(move |conn, all| create_in(conn, all, &input))
            .await?;
        self.get(&c.id).ok_or(SchemaError::NotFound)
    }

    /// Updates a collection from code (a plugin's declaration) without an automigrate file.
    pub async fn update_quiet(
        &self,
        id_or_name: &str,
        patch: Value,
    ) -> Result<Arc<Collection>, SchemaError> {
        let key = id_or_name.to_string();
        let prot = self.protection();
        let (_, new) = self
            .change(move |conn, all| update_in(conn, all, &key, &patch, &prot))
            .await?;
        self.get(&new.id).ok_or(SchemaError::NotFound)
    }

    /// What [`CollectionStore::update`] would do with `patch`, without doing it: the update
    /// runs in a savepoint that is rolled back, then the records that would lose data are
    /// counted on the table as it is.
    pub async fn dry_run_update(
        &self,
        id_or_name: &str,
        patch: Value,
    ) -> Result<ferrobase_plugin::SchemaDiff, SchemaError> {
        let key = id_or_name.to_string();
        let prot = self.protection();
        self.db
            .write(move |conn| {
                let all = load_all(conn)?;
                db::execute_ddl(conn, "SAVEPOINT fb_dry_run")?;
                let out = update_in(conn, &all, &key, &patch, &prot);
                db::execute_ddl(conn, "ROLLBACK TO fb_dry_run")?;
                db::execute_ddl(conn, "RELEASE fb_dry_run")?;
                let (old, new) = out?;
                super::diff::describe(conn, &old, &new)
            })
            .await
    }

    /// Saves a collection defined in code (system collections, plugins' collections) at start:
    /// created if missing, left alone if present.
    pub async fn ensure(&self, mut c: Collection) -> Result<(), SchemaError> {
        c.normalize();
        if self.get(&c.id).is_some() || self.get(&c.name).is_some() {
            return Ok(());
        }
        let now = ids::now();
        c.created = now.clone();
        c.updated = now;
        self.change(move |conn, all| {
            if all
                .iter()
                .any(|o| o.id == c.id || o.name.eq_ignore_ascii_case(&c.name))
            {
                return Ok(());
            }
            for stmt in ddl::create_statements(&c).map_err(SchemaError::Internal)? {
                db::execute_ddl(conn, &stmt)?;
            }
            upsert_row(conn, &c)?;
            Ok(())
        })
        .await
    }
}

/// Records an automigrate file as applied, in the transaction of the change it describes
/// (the change is already in the database, so replaying the file must not run it again).
fn record_migration(conn: &Conn, file: Option<String>) -> Result<(), SchemaError> {
    if let Some(file) = file {
        set_migration(conn, file, true)?;
    }
    Ok(())
}

/// A migration operation on a collection (its JSON without token secrets).
fn op(action: &str, c: &Collection) -> Value {
    serde_json::json!({"action": action, "collection": c.to_json()})
}

fn create_in(conn: &Conn, all: &[Collection], input: &Value) -> Result<Collection, SchemaError> {
    let (mut c, read_errs) = Collection::from_json(input)?;
    c.system = false;
    c.normalize();
    let now = ids::now();
    c.created = now.clone();
    c.updated = now;
    let mut errs = validate(conn, &c, None, all)?;
    if !errs.has("name") && all.iter().any(|o| o.id == c.id) {
        errs.add(
            &["id"],
            "validation_invalid_id",
            "The model id is invalid or already exists.",
        );
    }
    merge_errors(&mut errs, read_errs);
    errs.into_result()?;
    for stmt in ddl::create_statements(&c).map_err(SchemaError::Internal)? {
        db::execute_ddl(conn, &stmt)?;
    }
    upsert_row(conn, &c)?;
    Ok(c)
}

fn update_in(
    conn: &Conn,
    all: &[Collection],
    key: &str,
    patch: &Value,
    prot: &Protection,
) -> Result<(Collection, Collection), SchemaError> {
    let old = find(all, key).ok_or(SchemaError::NotFound)?.clone();
    let mut merged = old.to_json_with_secrets();
    let Value::Object(p) = patch else {
        return Err(SchemaError::Malformed("the body must be an object".into()));
    };
    let obj = merged
        .as_object_mut()
        .ok_or(SchemaError::Internal("bad json".into()))?;
    for (k, v) in p {
        match (obj.get_mut(k), v) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                super::collection::merge_json(existing, v)
            }
            _ => {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
    let (mut c, read_errs) = Collection::from_json(&merged)?;
    c.id = old.id.clone();
    c.system = old.system;
    c.created = old.created.clone();
    c.updated = ids::now();
    c.keep_oauth2_secrets(&old);
    prot.restore_fields(&mut c);
    c.normalize();
    let mut errs = validate(conn, &c, Some(&old), all)?;
    merge_errors(&mut errs, read_errs);
    errs.into_result()?;
    for stmt in ddl::diff_statements(&old, &c).map_err(SchemaError::Internal)? {
        db::execute_ddl(conn, &stmt)?;
    }
    upsert_row(conn, &c)?;
    Ok((old, c))
}

fn delete_in(
    conn: &Conn,
    all: &[Collection],
    key: &str,
    prot: &Protection,
) -> Result<Collection, SchemaError> {
    let c = find(all, key).ok_or(SchemaError::NotFound)?;
    prot.refuse_delete(c)?;
    if c.system {
        // PocketBase's answer, without details.
        return Err(SchemaError::Refused("Failed to delete collection.".into()));
    }
    if let Some(referrer) = all.iter().find(|o| {
        o.id != c.id
            && o.fields.iter().any(|f| matches!(&f.kind, FieldKind::Relation { collection_id, .. } if *collection_id == c.id))
    }) {
        return Err(SchemaError::Refused(format!(
            "Failed to delete collection probably due to existing reference in {}.",
            referrer.name
        )));
    }
    db::execute_ddl(conn, &ddl::drop_statement(&c.name))?;
    delete_row(conn, &c.id)?;
    Ok(c.clone())
}

fn find<'a>(all: &'a [Collection], key: &str) -> Option<&'a Collection> {
    all.iter()
        .find(|c| c.id == key)
        .or_else(|| all.iter().find(|c| c.name.eq_ignore_ascii_case(key)))
}

fn merge_errors(into: &mut ValidationErrors, other: ValidationErrors) {
    into.extend(other);
}
