//! Record operations with their API rules, run on a database connection (reads on a reader,
//! writes inside the writer's transaction). The REST handlers and the batch endpoint both call
//! these, so every path checks the same rules, compiled by the same engine.

use std::sync::Arc;

use crate::db::Conn;
use serde_json::{Map, Value};

use super::{Action, Change, Record, cast_input, modifiers};
use crate::auth::AuthRecord;
use crate::db::DbError;
use crate::query::compile::{self, CompileError, Env, Frag, RequestInfo};
use crate::query::fexpr::{self, Root};
use crate::schema::{Collection, CollectionType, FieldKind, Registry};
use crate::validation::ValidationErrors;

/// Who is asking, and the request context rules can read through `@request.*`.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub auth: Option<AuthRecord>,
    pub query: Vec<(String, String)>,
    /// Header names lowercased with `-` as `_`.
    pub headers: Vec<(String, String)>,
    pub method: String,
    pub context: String,
    /// The system (a plugin acting explicitly outside the rules): passes every rule like a
    /// superuser.
    pub system: bool,
}

impl Caller {
    pub fn guest() -> Caller {
        Caller {
            method: "GET".into(),
            context: "default".into(),
            ..Caller::default()
        }
    }

    /// The system: no rules apply.
    pub fn system() -> Caller {
        Caller {
            system: true,
            ..Caller::guest()
        }
    }

    pub fn is_superuser(&self) -> bool {
        self.system || self.auth.as_ref().is_some_and(AuthRecord::is_superuser)
    }

    /// True when the caller is this very auth record.
    pub fn is_record(&self, c: &Collection, id: &str) -> bool {
        self.auth
            .as_ref()
            .is_some_and(|a| a.collection.id == c.id && a.record.id() == id)
    }

    /// The `@request.*` input for a given body.
    pub fn request_info(&self, body: &Map<String, Value>) -> RequestInfo {
        RequestInfo {
            auth: self
                .auth
                .as_ref()
                .map(|a| (a.collection.clone(), a.record.data.clone())),
            body: body.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            method: self.method.clone(),
            context: self.context.clone(),
        }
    }
}

/// A write in progress: the writer's connection, the schema it runs against, and the changes
/// made so far (published to realtime after commit).
pub struct Tx<'a> {
    pub conn: &'a Conn,
    pub registry: &'a Registry,
    pub changes: Vec<Change>,
    /// Stored names of files uploaded with this request (the only new names file fields
    /// may take).
    pub uploaded: std::collections::HashSet<String>,
    /// File names of updated records before the update (record id, names), to remove files
    /// no longer referenced once the transaction commits.
    pub previous_files: Vec<(String, Vec<String>)>,
    /// The plugins' before hooks (`None`: no plugin hooks any write).
    pub hooks: Option<Arc<crate::plugin::BeforeHooks>>,
    /// How many hooks are running (writes from hooks nest).
    pub hook_depth: u32,
}

impl<'a> Tx<'a> {
    pub fn new(conn: &'a Conn, registry: &'a Registry) -> Tx<'a> {
        Tx {
            conn,
            registry,
            changes: Vec::new(),
            uploaded: Default::default(),
            previous_files: Vec::new(),
            hooks: None,
            hook_depth: 0,
        }
    }

    /// Whether plugin before hooks run for writes to `c`.
    pub fn has_hooks(&self, c: &Collection) -> bool {
        self.hooks.as_ref().is_some_and(|h| h.has(&c.name))
    }
}

/// Errors of record operations, mapped to HTTP by the API layer.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{message}")]
    Validation {
        message: &'static str,
        errors: ValidationErrors,
    },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// A plugin's before hook refused the write; its error reaches the caller as it is.
    #[error("{0}")]
    Hook(ferrobase_plugin::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How a rule applies to a caller.
pub enum Access {
    /// Superuser, or a public rule: no condition.
    All,
    /// Only rows matching this condition (rows aliased `m`).
    Where(Frag),
}

fn locked() -> RecordError {
    RecordError::Forbidden("Only superusers can perform this action.".into())
}

/// True when [`rule_access`] decides `rule` without looking at the row: superusers pass every
/// rule, `null` is superusers only, and an empty rule is open to everyone.
pub fn rule_needs_no_row(rule: &Option<String>, superuser: bool) -> bool {
    superuser || rule.as_deref().is_none_or(|r| r.trim().is_empty())
}

/// Compiles a stored rule for a caller. A rule that no longer compiles (e.g. it names a field
/// that was since removed) denies everyone but superusers.
pub fn rule_access(
    registry: &Registry,
    c: &Collection,
    rule: &Option<String>,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Access, RecordError> {
    if caller.is_superuser() {
        return Ok(Access::All);
    }
    let Some(rule) = rule.as_deref() else {
        return Err(locked());
    };
    if rule.trim().is_empty() {
        return Ok(Access::All);
    }
    let request = caller.request_info(body);
    let env = Env {
        registry,
        request: &request,
        trusted: true,
        superuser: false,
    };
    let compiled = fexpr::parse_cached(rule)
        .map_err(|e| CompileError::Invalid(e.to_string()))
        .and_then(|expr| compile::compile(&expr, c, "m", &env));
    match compiled {
        Ok(frag) => Ok(Access::Where(frag)),
        Err(e) => {
            tracing::warn!(collection = %c.name, error = %e, "a stored rule does not compile; denying");
            Ok(Access::Where(Frag {
                sql: "0".into(),
                values: vec![],
            }))
        }
    }
}

fn id_and(access: &Access, id: &str) -> Frag {
    let id_cond = Frag {
        sql: "\"m\".\"id\" = ?".into(),
        values: vec![id.to_string().into()],
    };
    match access {
        Access::All => id_cond,
        Access::Where(rule) => {
            let mut f = id_cond;
            f.sql = format!("({}) AND ({})", f.sql, rule.sql);
            f.values.extend(rule.values.iter().cloned());
            f
        }
    }
}

/// Checks a client `filter`/`sort` for `@request.*`/`@collection.*`, which only superusers
/// may use (PocketBase's 403).
pub fn check_client_expression(input: &str, caller: &Caller) -> Result<(), RecordError> {
    if caller.is_superuser() || input.trim().is_empty() {
        return Ok(());
    }
    let uses_request = match fexpr::parse(input) {
        Ok(e) => e
            .operands()
            .iter()
            .any(|o| matches!(o, fexpr::Operand::Ident(i) if !matches!(i.root, Root::Field))),
        Err(_) => input.contains("@request.") || input.contains("@collection."),
    };
    if uses_request {
        return Err(RecordError::Forbidden(
            "Only superusers can filter by @request.".into(),
        ));
    }
    Ok(())
}

/// What a list request asks for.
pub struct ListQuery<'a> {
    pub filter: &'a str,
    pub sort: &'a str,
    pub offset: u64,
    pub limit: u64,
    pub count: bool,
}

/// Lists records the caller may see: the list rule is ANDed into the filter.
pub fn list(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    caller: &Caller,
    lq: &ListQuery<'_>,
) -> Result<(Vec<Record>, Option<u64>), RecordError> {
    let access = rule_access(registry, c, &c.rules.list, caller, &Map::new())?;
    let request = caller.request_info(&Map::new());
    let env = Env {
        registry,
        request: &request,
        trusted: false,
        superuser: caller.is_superuser(),
    };
    let bad = |e: CompileError| {
        tracing::debug!(error = %e, "invalid filter or sort");
        match e {
            CompileError::Locked(_) => {
                RecordError::Forbidden("Only superusers can perform this action.".into())
            }
            _ => RecordError::BadRequest(
                "Something went wrong while processing your request.".into(),
            ),
        }
    };
    let mut cond: Option<Frag> = match access {
        Access::All => None,
        Access::Where(f) => Some(f),
    };
    if !lq.filter.trim().is_empty() {
        let expr =
            fexpr::parse(lq.filter).map_err(|e| bad(CompileError::Invalid(e.to_string())))?;
        let f = compile::compile(&expr, c, "m", &env).map_err(bad)?;
        cond = Some(match cond {
            None => f,
            Some(rule) => Frag {
                sql: format!("({}) AND ({})", rule.sql, f.sql),
                values: rule.values.into_iter().chain(f.values).collect(),
            },
        });
    }
    let order = compile::compile_sort(lq.sort, c, "m", &env).map_err(bad)?;
    Ok(super::list(
        conn,
        c,
        cond.as_ref(),
        &order,
        lq.offset,
        lq.limit,
        lq.count,
    )?)
}

/// Reads one record the caller may view (404 when the rule fails).
pub fn view(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    caller: &Caller,
    id: &str,
) -> Result<Record, RecordError> {
    let access = rule_access(registry, c, &c.rules.view, caller, &Map::new())?;
    super::find_where(conn, c, id_and(&access, id), 1)?
        .into_iter()
        .next()
        .ok_or(RecordError::NotFound)
}

/// The first record whose `field` equals `value` among those the caller may list (the list
/// rule applies; hidden fields only for superusers, as in client filters).
pub fn first_by(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    caller: &Caller,
    field: &str,
    value: &Value,
) -> Result<Option<Record>, RecordError> {
    let Some(f) = c.field(field) else {
        return Err(RecordError::BadRequest(format!("Unknown field {field}.")));
    };
    if f.hidden && !caller.is_superuser() {
        return Err(RecordError::Forbidden(
            "Only superusers can filter by hidden fields.".into(),
        ));
    }
    let access = rule_access(registry, c, &c.rules.list, caller, &Map::new())?;
    let mut cond = Frag {
        sql: format!("\"m\".\"{}\" = ?", f.name.replace('"', "\"\"")),
        values: vec![super::storage_value(f, value)],
    };
    if let Access::Where(rule) = access {
        cond.sql = format!("({}) AND ({})", cond.sql, rule.sql);
        cond.values.extend(rule.values);
    }
    Ok(super::find_where(conn, c, cond, 1)?.into_iter().next())
}

/// Reads one record if `rule` (any rule of the collection, e.g. its manageRule) lets the
/// caller see it.
pub fn view_with_rule(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    rule: &Option<String>,
    caller: &Caller,
    id: &str,
) -> Result<Record, RecordError> {
    let access = rule_access(registry, c, rule, caller, &Map::new())?;
    super::find_where(conn, c, id_and(&access, id), 1)?
        .into_iter()
        .next()
        .ok_or(RecordError::NotFound)
}

fn writable(c: &Collection) -> Result<(), RecordError> {
    if c.kind == CollectionType::View {
        return Err(RecordError::BadRequest(
            "Unsupported collection type.".into(),
        ));
    }
    Ok(())
}

fn map_write_error(
    e: DbError,
    c: &Collection,
    values: &Map<String, Value>,
    message: &'static str,
) -> RecordError {
    if e.is_unique_violation() {
        let detail = e.to_string();
        let mut errors = ValidationErrors::new();
        for f in &c.fields {
            if values.contains_key(&f.name) && detail.contains(&format!("{}.{}", c.name, f.name)) {
                errors.add(&[&f.name], "validation_not_unique", "Value must be unique.");
            }
        }
        if errors.is_empty() {
            errors.add(&["id"], "validation_not_unique", "Value must be unique.");
        }
        return RecordError::Validation { message, errors };
    }
    e.into()
}

/// Creates a record. The create rule is checked against the inserted row inside the
/// transaction (PocketBase evaluates it against the submitted data as a row); if it fails, the
/// insert is rolled back. `auth_values` are the prepared auth fields (hashed password, token
/// key), computed before the transaction because bcrypt is slow.
pub fn create(
    tx: &mut Tx<'_>,
    c: &Arc<Collection>,
    caller: &Caller,
    body: &Map<String, Value>,
    auth_values: Map<String, Value>,
) -> Result<Record, RecordError> {
    let prepared = prepare_create(
        tx.registry,
        c,
        caller,
        body,
        auth_values,
        &tx.uploaded,
        tx.has_hooks(c),
    )?;
    insert_prepared(tx, c, caller, prepared)
}

/// A create whose rule is checked as far as it can be without the new row, and whose values
/// are cast: everything of a create that needs no database, so it can run before the write
/// transaction instead of on the writer.
pub struct PreparedCreate {
    /// The body after modifiers, when the rule has a condition on the new row (it is compiled
    /// again in the transaction: compiled SQL values are not `Send`).
    row_rule_body: Option<Map<String, Value>>,
    values: Map<String, Value>,
    /// With plugin before hooks on the collection: the body (after modifiers) and the auth
    /// values, cast only in the transaction, after the hooks had their say.
    deferred: Option<(Map<String, Value>, Map<String, Value>)>,
}

const CREATE_FAILED: &str = "Failed to create record.";

impl PreparedCreate {
    /// Whether [`insert_prepared`] writes with one statement and cannot fail after it (no
    /// create rule to check on the new row), so the writer can run it without a savepoint
    /// (`db::Isolation::SingleStatement`).
    pub fn is_single_statement(&self) -> bool {
        self.row_rule_body.is_none() && self.deferred.is_none()
    }
}

/// The refusals of a create that need neither the body nor a row: a view collection, or a
/// `null` create rule for anyone but superusers.
pub fn check_create_allowed(c: &Collection, caller: &Caller) -> Result<(), RecordError> {
    writable(c)?;
    if !caller.is_superuser() && c.rules.create.is_none() {
        return Err(locked());
    }
    Ok(())
}

/// The checks and casts of a create that need no database (see [`PreparedCreate`]).
pub fn prepare_create(
    registry: &Registry,
    c: &Arc<Collection>,
    caller: &Caller,
    body: &Map<String, Value>,
    auth_values: Map<String, Value>,
    uploaded: &std::collections::HashSet<String>,
    hooked: bool,
) -> Result<PreparedCreate, RecordError> {
    writable(c)?;
    let body = modifiers::resolve(c, body, None);
    let access = rule_access(registry, c, &c.rules.create, caller, &body)?;
    if hooked {
        return Ok(PreparedCreate {
            row_rule_body: match access {
                Access::All => None,
                Access::Where(_) => Some(Map::new()),
            },
            values: Map::new(),
            deferred: Some((body, auth_values)),
        });
    }
    let mut values =
        cast_input(c, &body, None, caller.is_superuser(), uploaded).map_err(|errors| {
            RecordError::Validation {
                message: CREATE_FAILED,
                errors,
            }
        })?;
    values.extend(auth_values);
    let row_rule_body = match access {
        Access::All => None,
        Access::Where(_) => Some(body),
    };
    Ok(PreparedCreate {
        row_rule_body,
        values,
        deferred: None,
    })
}

/// The part of a create that needs the write transaction: relation checks, the insert and a
/// create rule that reads the new row.
pub fn insert_prepared(
    tx: &mut Tx<'_>,
    c: &Arc<Collection>,
    caller: &Caller,
    prepared: PreparedCreate,
) -> Result<Record, RecordError> {
    let PreparedCreate {
        mut row_rule_body,
        mut values,
        deferred,
    } = prepared;
    if let Some((mut body, auth_values)) = deferred {
        crate::plugin::run_before_hooks(tx, c, Action::Create, &mut body, None, caller)?;
        values =
            cast_input(c, &body, None, caller.is_superuser(), &tx.uploaded).map_err(|errors| {
                RecordError::Validation {
                    message: CREATE_FAILED,
                    errors,
                }
            })?;
        values.extend(auth_values);
        if row_rule_body.is_some() {
            row_rule_body = Some(body);
        }
    }
    let (conn, registry) = (tx.conn, tx.registry);
    let id = values
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let written = check_relations(conn, registry, c, &values, CREATE_FAILED).and_then(|()| {
        super::insert(conn, c, &values).map_err(|e| map_write_error(e, c, &values, CREATE_FAILED))
    });
    let record = match (written, &row_rule_body) {
        (Ok(r), _) => r,
        // A missing relation or a taken unique value says something about existing data: a
        // caller the create rule refuses gets the rule's answer instead (checked on the
        // submitted values, since no row could be inserted).
        (Err(e @ RecordError::Validation { .. }), Some(body)) => {
            if create_rule_passes_on_values(conn, registry, c, caller, body, &values)? {
                return Err(e);
            }
            return Err(RecordError::BadRequest(CREATE_FAILED.into()));
        }
        (Err(e), _) => return Err(e),
    };
    if let Some(body) = row_rule_body {
        let access = rule_access(registry, c, &c.rules.create, caller, &body)?;
        if super::find_where(conn, c, id_and(&access, &id), 1)?.is_empty() {
            // The caller's savepoint is rolled back by the writer when this error returns.
            return Err(RecordError::BadRequest(CREATE_FAILED.into()));
        }
    }
    tx.changes.push(Change {
        action: Action::Create,
        collection: c.clone(),
        record: record.clone(),
        old: None,
    });
    Ok(record)
}

/// Whether the create rule would accept a row holding `values` (every field, missing ones as
/// their zero value), evaluated on those values as a one-row subquery standing in for the
/// table: for when the row itself cannot be inserted.
fn create_rule_passes_on_values(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    caller: &Caller,
    body: &Map<String, Value>,
    values: &Map<String, Value>,
) -> Result<bool, RecordError> {
    let Access::Where(rule) = rule_access(registry, c, &c.rules.create, caller, body)? else {
        return Ok(true);
    };
    let mut columns = Vec::with_capacity(c.fields.len());
    let mut bound = Vec::with_capacity(c.fields.len() + rule.values.len());
    for f in &c.fields {
        let v = values
            .get(&f.name)
            .cloned()
            .unwrap_or_else(|| super::cast::zero_value(f));
        columns.push(format!("? AS \"{}\"", f.name.replace('"', "\"\"")));
        bound.push(super::storage_value(f, &v));
    }
    bound.extend(rule.values);
    let sql = format!(
        "SELECT 1 FROM (SELECT {}) AS \"m\" WHERE {} LIMIT 1",
        columns.join(", "),
        rule.sql
    );
    Ok(!crate::db::query_sql(conn, &sql, bound, |_| Ok(()))?.is_empty())
}

/// Updates a record; the rule sees the stored row and `@request.body` the submitted values
/// (after modifiers). Modifiers are resolved against the stored row inside the transaction.
/// Its only write is the one `UPDATE`, and nothing after it can fail, so the writer runs it
/// without a savepoint (`db::Isolation::SingleStatement`).
pub fn update(
    tx: &mut Tx<'_>,
    c: &Arc<Collection>,
    caller: &Caller,
    id: &str,
    body: &Map<String, Value>,
    auth_values: Map<String, Value>,
) -> Result<Record, RecordError> {
    let (conn, registry) = (tx.conn, tx.registry);
    const MSG: &str = "Failed to update record.";
    writable(c)?;
    let (existing, mut body) = check_update(conn, registry, c, caller, id, body)?;
    crate::plugin::run_before_hooks(tx, c, Action::Update, &mut body, Some(&existing), caller)?;
    let (conn, registry) = (tx.conn, tx.registry);
    tx.previous_files
        .push(crate::files::names_before(c, &existing));
    let mut values = cast_input(
        c,
        &body,
        Some(&existing),
        caller.is_superuser(),
        &tx.uploaded,
    )
    .map_err(|errors| RecordError::Validation {
        message: MSG,
        errors,
    })?;
    values.extend(auth_values);
    check_relations(conn, registry, c, &values, MSG)?;
    let record = super::update(conn, c, id, &values)
        .map_err(|e| map_write_error(e, c, &values, MSG))?
        .ok_or(RecordError::NotFound)?;
    tx.changes.push(Change {
        action: Action::Update,
        collection: c.clone(),
        record: record.clone(),
        old: Some(existing),
    });
    Ok(record)
}

/// The update rule of `c` for `caller` on record `id` with `body`: the stored record and the
/// body after modifiers when the caller may update it. A `null` rule refuses non-superusers
/// before any row is read, and a missing row and a refused one give the same 404, so a refused
/// caller learns nothing about which ids exist. Everything that reads the stored record for an
/// update (the old-password check included) runs after this.
pub fn check_update(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    caller: &Caller,
    id: &str,
    body: &Map<String, Value>,
) -> Result<(Record, Map<String, Value>), RecordError> {
    if !caller.is_superuser() && c.rules.update.is_none() {
        return Err(locked());
    }
    let existing = super::find_by_id(conn, c, id)?.ok_or(RecordError::NotFound)?;
    let body = modifiers::resolve(c, body, Some(&existing));
    let access = rule_access(registry, c, &c.rules.update, caller, &body)?;
    if let Access::Where(_) = access
        && super::find_where(conn, c, id_and(&access, id), 1)?.is_empty()
    {
        return Err(RecordError::NotFound);
    }
    Ok((existing, body))
}

/// Checks that every relation id in `values` points to an existing record.
fn check_relations(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    values: &Map<String, Value>,
    message: &'static str,
) -> Result<(), RecordError> {
    let mut errors = ValidationErrors::new();
    for f in &c.fields {
        let FieldKind::Relation { collection_id, .. } = &f.kind else {
            continue;
        };
        let ids: Vec<String> = match values.get(&f.name) {
            Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => continue,
        };
        if ids.is_empty() {
            continue;
        }
        let Some(target) = registry.get(collection_id) else {
            errors.add(
                &[&f.name],
                "validation_missing_rel_records",
                "Failed to find all relation records with the provided ids.",
            );
            continue;
        };
        let cond = Frag {
            sql: "\"m\".\"id\" IN (SELECT value FROM json_each(?))".into(),
            values: vec![serde_json::to_string(&ids).unwrap_or_default().into()],
        };
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        let found = super::find_where(conn, &target, cond, unique.len() as u64)?;
        if found.len() != unique.len() {
            errors.add(
                &[&f.name],
                "validation_missing_rel_records",
                "Failed to find all relation records with the provided ids.",
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RecordError::Validation { message, errors })
    }
}

/// Before deleting `id` of `c`: removes it from every relation that points at it; a record
/// left with an empty `cascadeDelete` relation is deleted too (recursively), and a record left
/// with an empty *required* relation blocks the delete.
fn cascade(
    conn: &Conn,
    registry: &Registry,
    c: &Collection,
    id: &str,
    depth: usize,
    changes: &mut Vec<Change>,
) -> Result<(), RecordError> {
    if depth > 32 {
        return Err(RecordError::BadRequest("Too deep cascade delete.".into()));
    }
    let blocked = || {
        RecordError::BadRequest(
            "Failed to delete record. Make sure that the record is not part of a required relation reference."
                .into(),
        )
    };
    for other in registry.all() {
        for f in &other.fields {
            let FieldKind::Relation {
                collection_id,
                cascade_delete,
                ..
            } = &f.kind
            else {
                continue;
            };
            if *collection_id != c.id {
                continue;
            }
            let column = format!("\"m\".\"{}\"", f.name);
            let cond = if f.kind.is_multiple() {
                Frag {
                    sql: format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)"),
                    values: vec![id.to_string().into()],
                }
            } else {
                Frag {
                    sql: format!("{column} = ?"),
                    values: vec![id.to_string().into()],
                }
            };
            for r in super::find_where(conn, other, cond, u64::MAX >> 1)? {
                if other.id == c.id && r.id() == id {
                    continue;
                }
                let remaining: Vec<Value> = match r.data.get(&f.name) {
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter(|v| v.as_str() != Some(id))
                        .cloned()
                        .collect(),
                    _ => vec![],
                };
                if remaining.is_empty() && *cascade_delete {
                    cascade(conn, registry, other, r.id(), depth + 1, changes)?;
                    super::delete(conn, other, r.id())?;
                    changes.push(Change {
                        action: Action::Delete,
                        collection: other.clone(),
                        record: r,
                        old: None,
                    });
                } else if remaining.is_empty() && f.required {
                    return Err(blocked());
                } else {
                    let mut values = Map::new();
                    values.insert(
                        f.name.clone(),
                        if f.kind.is_multiple() {
                            Value::Array(remaining)
                        } else {
                            Value::String(String::new())
                        },
                    );
                    if let Some(updated) = super::update(conn, other, r.id(), &values)? {
                        changes.push(Change {
                            action: Action::Update,
                            collection: other.clone(),
                            record: updated,
                            old: Some(r),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Deletes a record the caller may delete.
pub fn delete(
    tx: &mut Tx<'_>,
    c: &Arc<Collection>,
    caller: &Caller,
    id: &str,
) -> Result<(), RecordError> {
    writable(c)?;
    let access = rule_access(tx.registry, c, &c.rules.delete, caller, &Map::new())?;
    let Some(record) = super::find_where(tx.conn, c, id_and(&access, id), 1)?
        .into_iter()
        .next()
    else {
        return Err(RecordError::NotFound);
    };
    drop(access);
    crate::plugin::run_before_hooks(
        tx,
        c,
        Action::Delete,
        &mut Map::new(),
        Some(&record),
        caller,
    )?;
    let (conn, registry) = (tx.conn, tx.registry);
    cascade(conn, registry, c, id, 0, &mut tx.changes)?;
    if super::delete(conn, c, id)? == 0 {
        return Err(RecordError::NotFound);
    }
    tx.changes.push(Change {
        action: Action::Delete,
        collection: c.clone(),
        record,
        old: None,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::collection::CollectionType;

    #[test]
    fn rule_needs_no_row_agrees_with_rule_access() {
        let mut c = Collection::scaffold(CollectionType::Base);
        c.name = "posts".into();
        let registry = Registry::default();
        let guest = Caller::guest();
        for rule in [
            None,
            Some(""),
            Some("  "),
            Some("id != ''"),
            Some("@request.auth.id != ''"),
        ] {
            let rule = rule.map(String::from);
            let row = matches!(
                rule_access(&registry, &c, &rule, &guest, &Map::new()),
                Ok(Access::Where(_))
            );
            assert_eq!(rule_needs_no_row(&rule, false), !row, "{rule:?}");
            assert!(rule_needs_no_row(&rule, true));
        }
    }
}
