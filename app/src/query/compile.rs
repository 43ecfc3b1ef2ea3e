//! Compiling filter and rule expressions to SQL conditions.
//!
//! The output is a SQL fragment with `?` placeholders and its values, in order; it is embedded
//! into sea-query statements with `Expr::cust_with_values`, so values are always bound, never
//! printed. Identifiers come from the collection schema (validated `^\w+$` names) and are
//! quoted.
//!
//! Semantics follow PocketBase:
//! - `=`/`!=` treat NULL and `''` as equal (`a = ''` is `(a = '' OR a IS NULL)`);
//! - a path through a multi-valued hop (multiple relation, back-relation `x_via_f`,
//!   `@collection.*`, `field:each`) is a set: plain operators require every item to match
//!   (an empty set behaves like a single NULL value), `?` operators require at least one;
//! - `~` wraps a plain string in `%…%`.
//!
//! One deliberate difference (see `docs/compatibility.md`): `@request.auth.*` of a guest is
//! *absent*, not `''`. Comparing it with `=` to a field is false (so `author =
//! @request.auth.id` never matches a record with an empty `author` for a guest), comparing it
//! to `''`/`null` is true, and `!=` is the negation.

use chrono::{Datelike, Duration, TimeZone, Utc};
use sea_query::Value as SqlValue;
use serde_json::{Map, Value};

use super::fexpr::{Expr, Func, Ident, Macro, Modifier, Op, Operand, Root};
use crate::schema::{Collection, FieldKind, Registry, ids};

/// Errors of compiling an expression against a schema.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    #[error("unknown or unsupported field {0:?}")]
    UnknownField(String),
    #[error("{0}")]
    Invalid(String),
    /// A client filter reached a collection whose list rule is locked.
    #[error("the filter reaches the locked collection {0:?}")]
    Locked(String),
}

/// The request an expression is evaluated for (the input of `@request.*`).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The authenticated record: its collection and its full data (hidden fields included:
    /// rules are trusted).
    pub auth: Option<(std::sync::Arc<Collection>, Map<String, Value>)>,
    pub body: Map<String, Value>,
    pub query: Vec<(String, String)>,
    /// Header names lowercased with `-` replaced by `_`.
    pub headers: Vec<(String, String)>,
    pub method: String,
    pub context: String,
}

/// A SQL fragment and its bound values, in placeholder order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frag {
    pub sql: String,
    pub values: Vec<SqlValue>,
}

impl Frag {
    fn raw(sql: impl Into<String>) -> Frag {
        Frag {
            sql: sql.into(),
            values: vec![],
        }
    }

    fn value(v: SqlValue) -> Frag {
        Frag {
            sql: "?".into(),
            values: vec![v],
        }
    }

    /// Joins fragments with SQL text between them, keeping values in order.
    fn join(parts: &[&Frag], template: &[&str]) -> Frag {
        let mut out = Frag::default();
        for (i, t) in template.iter().enumerate() {
            out.sql.push_str(t);
            if let Some(p) = parts.get(i) {
                out.sql.push_str(&p.sql);
                out.values.extend(p.values.iter().cloned());
            }
        }
        out
    }

    /// The fragment as a sea-query expression with bound values.
    pub fn into_expr(self) -> sea_query::SimpleExpr {
        sea_query::Expr::cust_with_values(self.sql, self.values)
    }
}

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn col(alias: &str, name: &str) -> String {
    format!("{}.{}", q(alias), q(name))
}

/// What a literal is known to be, for PocketBase's NULL/'' equality rules.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Empty,
    NonEmpty,
    Unknown,
}

/// A set of values: `SELECT value FROM from WHERE where`.
#[derive(Debug, Clone)]
struct Set {
    from: Frag,
    cond: Frag,
    value: Frag,
}

#[derive(Debug, Clone)]
enum Side {
    Scalar(Frag, Kind),
    Set(Set),
    /// `@request.auth.*` of a guest.
    Absent,
}

/// Compilation settings.
pub struct Env<'a> {
    pub registry: &'a Registry,
    pub request: &'a RequestInfo,
    /// Rules are trusted (hidden fields, `@request.*`, `@collection.*`); client filters are
    /// not: they cannot see hidden fields, and each relation hop applies the target
    /// collection's list rule.
    pub trusted: bool,
    /// Superusers skip the hop rules and may filter by anything.
    pub superuser: bool,
}

struct Compiler<'a> {
    env: &'a Env<'a>,
    aliases: usize,
    /// Row aliases whose hidden-capable email the comparison being compiled read: the
    /// comparison then also requires `emailVisibility` (PocketBase's rule for client filters).
    email_guards: Vec<String>,
}

fn datetime_macro(m: Macro) -> Frag {
    let now = Utc::now();
    let day_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now);
    let month_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let next_month = if now.month() == 12 {
        Utc.with_ymd_and_hms(now.year() + 1, 1, 1, 0, 0, 0)
    } else {
        Utc.with_ymd_and_hms(now.year(), now.month() + 1, 1, 0, 0, 0)
    }
    .single()
    .unwrap_or(now);
    let year_start = Utc
        .with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let year_end = Utc
        .with_ymd_and_hms(now.year() + 1, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
        - Duration::milliseconds(1);
    let text = |t: chrono::DateTime<Utc>| Frag::value(ids::format_datetime(t).into());
    let num = |n: i64| Frag::value(n.into());
    match m {
        Macro::Now => text(now),
        Macro::Yesterday => text(now - Duration::days(1)),
        Macro::Tomorrow => text(now + Duration::days(1)),
        Macro::TodayStart => text(day_start),
        Macro::TodayEnd => text(day_start + Duration::days(1) - Duration::milliseconds(1)),
        Macro::MonthStart => text(month_start),
        Macro::MonthEnd => text(next_month - Duration::milliseconds(1)),
        Macro::YearStart => text(year_start),
        Macro::YearEnd => text(year_end),
        Macro::Second => num(i64::from(
            now.format("%S").to_string().parse::<u32>().unwrap_or(0),
        )),
        Macro::Minute => num(i64::from(
            now.format("%M").to_string().parse::<u32>().unwrap_or(0),
        )),
        Macro::Hour => num(i64::from(
            now.format("%H").to_string().parse::<u32>().unwrap_or(0),
        )),
        Macro::Day => num(i64::from(now.day())),
        Macro::Month => num(i64::from(now.month())),
        Macro::Weekday => num(i64::from(now.weekday().num_days_from_sunday())),
        Macro::Year => num(i64::from(now.year())),
    }
}

/// A JSON value as a scalar side (arrays become sets over `json_each`).
/// A unique alias for a `json_each` in one statement.
fn json_each_alias() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("_je{}", N.fetch_add(1, Ordering::Relaxed))
}

fn json_side(v: Option<&Value>) -> Side {
    match v {
        None | Some(Value::Null) => Side::Scalar(Frag::raw("NULL"), Kind::Empty),
        Some(Value::String(s)) if s.is_empty() => Side::Scalar(Frag::value("".into()), Kind::Empty),
        Some(Value::String(s)) => Side::Scalar(Frag::value(s.clone().into()), Kind::NonEmpty),
        Some(Value::Bool(b)) => Side::Scalar(Frag::value(i64::from(*b).into()), Kind::NonEmpty),
        Some(Value::Number(n)) => Side::Scalar(
            Frag::value(match n.as_i64() {
                Some(i) => i.into(),
                None => n.as_f64().unwrap_or(0.0).into(),
            }),
            Kind::NonEmpty,
        ),
        Some(v @ Value::Array(_)) => {
            let a = json_each_alias();
            Side::Set(Set {
                from: Frag::join(
                    &[&Frag::value(v.to_string().into())],
                    &["json_each(", &format!(") {}", q(&a))],
                ),
                cond: Frag::raw("1"),
                value: Frag::raw(format!("{}.value", q(&a))),
            })
        }
        Some(v @ Value::Object(_)) => {
            Side::Scalar(Frag::value(v.to_string().into()), Kind::NonEmpty)
        }
    }
}

fn is_multi_json(kind: &FieldKind) -> bool {
    kind.is_multiple()
}

impl<'a> Compiler<'a> {
    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("_a{}", self.aliases)
    }

    fn collection(&self, id: &str) -> Result<std::sync::Arc<Collection>, CompileError> {
        self.env
            .registry
            .get(id)
            .ok_or_else(|| CompileError::Invalid(format!("missing collection {id:?}")))
    }

    /// The extra condition a client filter must meet when it hops into `target`.
    fn hop_rule(&mut self, target: &Collection, alias: &str) -> Result<Option<Frag>, CompileError> {
        if self.env.trusted || self.env.superuser {
            return Ok(None);
        }
        match target.rules.list.as_deref() {
            None => Err(CompileError::Locked(target.name.clone())),
            Some("") => Ok(None),
            Some(rule) => {
                let expr = super::fexpr::parse_cached(rule)
                    .map_err(|e| CompileError::Invalid(e.to_string()))?;
                let env = Env {
                    registry: self.env.registry,
                    request: self.env.request,
                    trusted: true,
                    superuser: false,
                };
                let mut inner = Compiler {
                    env: &env,
                    aliases: self.aliases,
                    email_guards: Vec::new(),
                };
                let frag = inner.expr(&expr, target, alias)?;
                self.aliases = inner.aliases;
                Ok(Some(frag))
            }
        }
    }

    /// Resolves a field path within collection `c` whose row is `alias`.
    fn path(
        &mut self,
        c: &Collection,
        alias: &str,
        path: &[String],
        modifier: Option<Modifier>,
    ) -> Result<Side, CompileError> {
        let Some((first, rest)) = path.split_first() else {
            return Err(CompileError::Invalid("empty identifier".into()));
        };
        if let Some(f) = c.field(first) {
            if f.hidden && !self.env.trusted && !self.env.superuser {
                return Err(CompileError::UnknownField(first.clone()));
            }
            // A client filter or sort reads an auth record's email as empty unless the record
            // made it visible: no comparison or order can depend on a hidden address.
            let column =
                if c.is_auth() && f.name == "email" && !self.env.trusted && !self.env.superuser {
                    self.email_guards.push(alias.to_string());
                    Frag::raw(format!(
                        "(CASE WHEN {} = 1 THEN {} END)",
                        col(alias, "emailVisibility"),
                        col(alias, &f.name)
                    ))
                } else {
                    Frag::raw(col(alias, &f.name))
                };
            if rest.is_empty() {
                return Ok(match modifier {
                    // PocketBase's normalisation: a value that is not a JSON array counts as
                    // one item (none when empty). Without it SQLite can fail the whole query
                    // with "malformed JSON": from `tags = 'a'` in the same filter it
                    // substitutes 'a' for the column (constant propagation).
                    Some(Modifier::Length) if is_multi_json(&f.kind) => Side::Scalar(
                        Frag::join(
                            &[&column, &column, &column, &column, &column],
                            &[
                                "json_array_length(CASE WHEN json_valid(",
                                ") THEN ",
                                " ELSE (CASE WHEN ",
                                " = '' OR ",
                                " IS NULL THEN json_array() ELSE json_array(",
                                ") END) END)",
                            ],
                        ),
                        Kind::Unknown,
                    ),
                    Some(Modifier::Each) if is_multi_json(&f.kind) => {
                        let a = json_each_alias();
                        Side::Set(Set {
                            from: Frag::join(&[&column], &["json_each(", &format!(") {}", q(&a))]),
                            cond: Frag::raw("1"),
                            value: Frag::raw(format!("{}.value", q(&a))),
                        })
                    }
                    Some(Modifier::Each | Modifier::Length) => {
                        return Err(CompileError::Invalid(format!(
                            ":each and :length need a multiple-value field, {first:?} is not"
                        )));
                    }
                    Some(Modifier::Lower) => {
                        Side::Scalar(Frag::join(&[&column], &["LOWER(", ")"]), Kind::Unknown)
                    }
                    _ => Side::Scalar(column, Kind::Unknown),
                });
            }
            return match &f.kind {
                FieldKind::Json { .. } | FieldKind::GeoPoint => {
                    // `a..b` or a trailing `.` would be a JSON path SQLite rejects at run time.
                    if rest.iter().any(String::is_empty) {
                        return Err(CompileError::Invalid(format!(
                            "invalid JSON path in {:?}",
                            path.join(".")
                        )));
                    }
                    let json_path = format!("$.{}", rest.join("."));
                    let e = Frag::join(
                        &[&column, &Frag::value(json_path.into())],
                        &["json_extract(", ", ", ")"],
                    );
                    Ok(Side::Scalar(
                        if modifier == Some(Modifier::Lower) {
                            Frag::join(&[&e], &["LOWER(", ")"])
                        } else {
                            e
                        },
                        Kind::Unknown,
                    ))
                }
                FieldKind::Relation { collection_id, .. } => {
                    let target = self.collection(collection_id)?;
                    let b = self.alias();
                    let inner = self.path(&target, &b, rest, modifier)?;
                    let hop = self.hop_rule(&target, &b)?;
                    let table = Frag::raw(format!("{} {}", q(&target.name), q(&b)));
                    if f.kind.is_multiple() {
                        let je = self.alias();
                        let from = Frag::join(
                            &[&column, &table],
                            &[
                                "json_each(",
                                &format!(") {} JOIN ", q(&je)),
                                &format!(" ON {} = {}.value", col(&b, "id"), q(&je)),
                            ],
                        );
                        Ok(self.nest(from, Frag::raw("1"), hop, inner))
                    } else {
                        let cond = Frag::raw(format!("{} = {}", col(&b, "id"), column.sql));
                        Ok(self.nest(table, cond, hop, inner).into_scalar_if_single())
                    }
                }
                _ => Err(CompileError::UnknownField(path.join("."))),
            };
        }
        // Back-relation: <collection>_via_<field>
        if let Some((coll_name, via)) = first.split_once("_via_")
            && !rest.is_empty()
        {
            let target = self.collection(coll_name)?;
            let rel = target
                .field(via)
                .filter(|rf| matches!(&rf.kind, FieldKind::Relation { collection_id, .. } if *collection_id == c.id))
                .ok_or_else(|| CompileError::UnknownField(first.clone()))?
                .clone();
            let b = self.alias();
            let inner = self.path(&target, &b, rest, modifier)?;
            let hop = self.hop_rule(&target, &b)?;
            let table = Frag::raw(format!("{} {}", q(&target.name), q(&b)));
            let cond = if rel.kind.is_multiple() {
                Frag::raw(format!(
                    "EXISTS (SELECT 1 FROM json_each({}) WHERE value = {})",
                    col(&b, &rel.name),
                    col(alias, "id")
                ))
            } else {
                Frag::raw(format!("{} = {}", col(&b, &rel.name), col(alias, "id")))
            };
            return Ok(self.nest(table, cond, hop, inner));
        }
        if rest.is_empty() && modifier.is_none() {
            match first.as_str() {
                "true" => return Ok(Side::Scalar(Frag::raw("1"), Kind::NonEmpty)),
                "false" => return Ok(Side::Scalar(Frag::raw("0"), Kind::NonEmpty)),
                "null" => return Ok(Side::Scalar(Frag::raw("NULL"), Kind::Empty)),
                _ => {}
            }
        }
        Err(CompileError::UnknownField(path.join(".")))
    }

    /// Puts `inner` (resolved against the hopped row) behind a hop `from … where cond`.
    fn nest(&mut self, from: Frag, cond: Frag, hop: Option<Frag>, inner: Side) -> Side {
        let cond = match hop {
            Some(h) => Frag::join(&[&cond, &h], &["(", ") AND (", ")"]),
            None => cond,
        };
        match inner {
            Side::Scalar(value, _) => Side::Set(Set { from, cond, value }),
            Side::Set(s) => Side::Set(Set {
                from: Frag::join(&[&from, &s.from], &["", ", ", ""]),
                cond: Frag::join(&[&cond, &s.cond], &["(", ") AND (", ")"]),
                value: s.value,
            }),
            Side::Absent => Side::Absent,
        }
    }

    fn operand(&mut self, o: &Operand, c: &Collection, alias: &str) -> Result<Side, CompileError> {
        match o {
            Operand::Str(s) => Ok(json_side(Some(&Value::String(s.clone())))),
            Operand::Num(n) => {
                let f: f64 = n
                    .parse()
                    .map_err(|_| CompileError::Invalid(format!("bad number {n}")))?;
                let v: SqlValue = if f.fract() == 0.0 && f.abs() < 9e15 {
                    (f as i64).into()
                } else {
                    f.into()
                };
                Ok(Side::Scalar(Frag::value(v), Kind::NonEmpty))
            }
            Operand::Macro(m) => Ok(Side::Scalar(datetime_macro(*m), Kind::NonEmpty)),
            Operand::Func(func, args) => {
                let mut frags = Vec::with_capacity(args.len());
                for a in args {
                    match self.operand(a, c, alias)? {
                        Side::Scalar(f, _) => frags.push(f),
                        _ => {
                            return Err(CompileError::Invalid(
                                "function arguments must be single values".into(),
                            ));
                        }
                    }
                }
                let refs: Vec<&Frag> = frags.iter().collect();
                let f = match func {
                    // Haversine on a 6371 km sphere; args are (lonA, latA, lonB, latB).
                    Func::GeoDistance if refs.len() == 4 => Frag::join(
                        &[refs[3], refs[1], refs[1], refs[3], refs[2], refs[0]],
                        &[
                            "(6371 * 2 * asin(sqrt(power(sin((radians(",
                            ") - radians(",
                            ")) / 2), 2) + cos(radians(",
                            ")) * cos(radians(",
                            ")) * power(sin((radians(",
                            ") - radians(",
                            ")) / 2), 2))))",
                        ],
                    ),
                    Func::GeoDistance => {
                        return Err(CompileError::Invalid(
                            "geoDistance takes 4 arguments".into(),
                        ));
                    }
                    Func::Strftime => {
                        let mut tpl = vec!["strftime("];
                        tpl.extend(std::iter::repeat_n(", ", refs.len().saturating_sub(1)));
                        tpl.push(")");
                        Frag::join(&refs, &tpl)
                    }
                };
                Ok(Side::Scalar(f, Kind::Unknown))
            }
            Operand::Ident(id) => self.ident(id, c, alias),
        }
    }

    fn ident(&mut self, id: &Ident, c: &Collection, alias: &str) -> Result<Side, CompileError> {
        let request_allowed = self.env.trusted || self.env.superuser;
        if !matches!(id.root, Root::Field) && !request_allowed {
            return Err(CompileError::Invalid(
                "only superusers can filter by @request.* and @collection.*".into(),
            ));
        }
        let req = self.env.request;
        let lower = |s: Side| match (id.modifier, s) {
            (Some(Modifier::Lower), Side::Scalar(f, k)) => {
                Side::Scalar(Frag::join(&[&f], &["LOWER(", ")"]), k)
            }
            (_, s) => s,
        };
        match &id.root {
            Root::Field => self.path(c, alias, &id.path, id.modifier),
            Root::Method => Ok(json_side(Some(&Value::String(req.method.clone())))),
            Root::Context => Ok(json_side(Some(&Value::String(req.context.clone())))),
            Root::Query | Root::Headers => {
                let list = if id.root == Root::Query {
                    &req.query
                } else {
                    &req.headers
                };
                let key = id.path.first().map(String::as_str).unwrap_or("");
                let found = list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
                if id.modifier == Some(Modifier::Isset) {
                    return Ok(Side::Scalar(
                        Frag::raw(if found.is_some() { "1" } else { "0" }),
                        Kind::NonEmpty,
                    ));
                }
                Ok(lower(json_side(found.map(Value::String).as_ref())))
            }
            Root::Body => {
                let key = &id.path[0];
                let given = req.body.get(key);
                match id.modifier {
                    Some(Modifier::Isset) => {
                        return Ok(Side::Scalar(
                            Frag::raw(if given.is_some() { "1" } else { "0" }),
                            Kind::NonEmpty,
                        ));
                    }
                    Some(Modifier::Changed) => {
                        let Some(v) = given else {
                            return Ok(Side::Scalar(Frag::raw("0"), Kind::NonEmpty));
                        };
                        if c.field(key).is_none() {
                            return Err(CompileError::UnknownField(key.clone()));
                        }
                        let stored = col(alias, key);
                        let given_frag = match json_side(Some(v)) {
                            Side::Scalar(f, _) => f,
                            _ => Frag::value(v.to_string().into()),
                        };
                        return Ok(Side::Scalar(
                            Frag::join(&[&given_frag], &["(", &format!(" IS NOT {stored})")]),
                            Kind::NonEmpty,
                        ));
                    }
                    Some(Modifier::Length) => {
                        let n = match given {
                            Some(Value::Array(a)) => a.len() as i64,
                            Some(Value::Null) | None => 0,
                            Some(Value::String(s)) if s.is_empty() => 0,
                            Some(_) => 1,
                        };
                        return Ok(Side::Scalar(Frag::value(n.into()), Kind::NonEmpty));
                    }
                    _ => {}
                }
                if id.path.len() == 1 {
                    return Ok(lower(json_side(given)));
                }
                // @request.body.rel.field: hop from the submitted relation id(s).
                let f = c
                    .field(key)
                    .ok_or_else(|| CompileError::UnknownField(key.clone()))?;
                let FieldKind::Relation { collection_id, .. } = &f.kind else {
                    return Err(CompileError::UnknownField(id.path.join(".")));
                };
                let target = self.collection(collection_id)?;
                let b = self.alias();
                let inner = self.path(&target, &b, &id.path[1..], id.modifier)?;
                let ids = match given {
                    Some(Value::Array(a)) => Value::Array(a.clone()),
                    Some(v) => Value::Array(vec![v.clone()]),
                    None => Value::Array(vec![]),
                };
                let table = Frag::raw(format!("{} {}", q(&target.name), q(&b)));
                let cond = Frag::join(
                    &[&Frag::value(ids.to_string().into())],
                    &[
                        &format!("{} IN (SELECT value FROM json_each(", col(&b, "id")),
                        "))",
                    ],
                );
                let side = self.nest(table, cond, None, inner);
                Ok(if f.kind.is_multiple() {
                    side
                } else {
                    side.into_scalar_if_single()
                })
            }
            Root::Auth => {
                let Some((ac, data)) = &req.auth else {
                    if id.modifier == Some(Modifier::Isset) {
                        return Ok(Side::Scalar(Frag::raw("0"), Kind::NonEmpty));
                    }
                    return Ok(Side::Absent);
                };
                let key = &id.path[0];
                if id.modifier == Some(Modifier::Isset) {
                    return Ok(Side::Scalar(
                        Frag::raw(if data.contains_key(key) { "1" } else { "0" }),
                        Kind::NonEmpty,
                    ));
                }
                if id.path.len() == 1 {
                    let v = match key.as_str() {
                        "collectionId" => Some(Value::String(ac.id.clone())),
                        "collectionName" => Some(Value::String(ac.name.clone())),
                        _ => {
                            if ac.field(key).is_none() {
                                return Err(CompileError::UnknownField(format!(
                                    "@request.auth.{key}"
                                )));
                            }
                            data.get(key).cloned()
                        }
                    };
                    if id.modifier == Some(Modifier::Length) {
                        let n = v
                            .as_ref()
                            .and_then(Value::as_array)
                            .map_or(0, |a| a.len() as i64);
                        return Ok(Side::Scalar(Frag::value(n.into()), Kind::NonEmpty));
                    }
                    if id.modifier == Some(Modifier::Each) {
                        return Ok(json_side(Some(&Value::Array(
                            v.and_then(|v| v.as_array().cloned()).unwrap_or_default(),
                        ))));
                    }
                    return Ok(lower(json_side(v.as_ref())));
                }
                // @request.auth.rel.field: resolve inside the auth collection for the auth row.
                let b = self.alias();
                let inner = self.path(ac, &b, &id.path, id.modifier)?;
                let table = Frag::raw(format!("{} {}", q(&ac.name), q(&b)));
                let auth_id = data
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let cond = Frag::join(
                    &[&Frag::value(auth_id.into())],
                    &[&format!("{} = ", col(&b, "id")), ""],
                );
                Ok(self.nest(table, cond, None, inner).into_scalar_if_single())
            }
            Root::Collection {
                name,
                alias: user_alias,
            } => {
                let target = self.collection(name)?;
                let b = match user_alias {
                    Some(a) => format!("_c_{a}"),
                    None => self.alias(),
                };
                let inner = self.path(&target, &b, &id.path, id.modifier)?;
                let table = Frag::raw(format!("{} {}", q(&target.name), q(&b)));
                Ok(self.nest(table, Frag::raw("1"), None, inner))
            }
        }
    }

    fn expr(&mut self, e: &Expr, c: &Collection, alias: &str) -> Result<Frag, CompileError> {
        match e {
            Expr::And(a, b) => {
                let (a, b) = (self.expr(a, c, alias)?, self.expr(b, c, alias)?);
                Ok(Frag::join(&[&a, &b], &["(", " AND ", ")"]))
            }
            Expr::Or(a, b) => {
                let (a, b) = (self.expr(a, c, alias)?, self.expr(b, c, alias)?);
                Ok(Frag::join(&[&a, &b], &["(", " OR ", ")"]))
            }
            Expr::Cmp {
                left,
                op,
                any,
                right,
            } => {
                let guards_before = self.email_guards.len();
                let l = self.operand(left, c, alias)?;
                let r = self.operand(right, c, alias)?;
                let cmp = compare(l, *op, *any, r);
                // An email of this row read by the comparison: hidden ones match nothing, as
                // in PocketBase. (Emails reached through a relation read as empty when hidden.)
                let guarded = self.email_guards.drain(guards_before..).any(|a| a == alias);
                Ok(if guarded {
                    Frag::join(
                        &[&cmp],
                        &[
                            "((",
                            &format!(") AND {} = 1)", col(alias, "emailVisibility")),
                        ],
                    )
                } else {
                    cmp
                })
            }
        }
    }
}

impl Side {
    /// A set reached only through single hops has at most one value: use it as a scalar
    /// subquery (NULL when the relation is empty, like a LEFT JOIN).
    fn into_scalar_if_single(self) -> Side {
        match self {
            Side::Set(s) if !s.from.sql.contains("json_each") && !s.from.sql.contains(", ") => {
                Side::Scalar(
                    Frag::join(
                        &[&s.value, &s.from, &s.cond],
                        &["(SELECT ", " FROM ", " WHERE ", " LIMIT 1)"],
                    ),
                    Kind::Unknown,
                )
            }
            other => other,
        }
    }
}

/// A comparison of two scalar SQL values with PocketBase's NULL/'' rules.
fn scalar_cmp(l: &Frag, lk: Kind, op: Op, r: &Frag, rk: Kind) -> Frag {
    match op {
        Op::Eq | Op::Neq => {
            let eq = op == Op::Eq;
            let (op_s, null_s, join_s) = if eq {
                ("=", "IS NULL", "OR")
            } else {
                ("!=", "IS NOT NULL", "AND")
            };
            match (lk, rk) {
                (Kind::Empty, Kind::Empty) => Frag::raw(if eq { "1" } else { "0" }),
                (Kind::NonEmpty, _) | (_, Kind::NonEmpty) => {
                    let l = if lk == Kind::Empty {
                        Frag::raw("''")
                    } else {
                        l.clone()
                    };
                    let r = if rk == Kind::Empty {
                        Frag::raw("''")
                    } else {
                        r.clone()
                    };
                    if eq {
                        Frag::join(&[&l, &r], &["", " = ", ""])
                    } else {
                        // `IS NOT` so that NULL columns count as different from a value.
                        Frag::join(&[&l, &r], &["", " IS NOT ", ""])
                    }
                }
                (Kind::Empty, _) => Frag::join(
                    &[r, r],
                    &[
                        "(",
                        &format!(" {op_s} '' {join_s} "),
                        &format!(" {null_s})"),
                    ],
                ),
                (_, Kind::Empty) => Frag::join(
                    &[l, l],
                    &[
                        "(",
                        &format!(" {op_s} '' {join_s} "),
                        &format!(" {null_s})"),
                    ],
                ),
                _ => Frag::join(
                    &[l, r],
                    &["(COALESCE(", &format!(", '') {op_s} COALESCE("), ", ''))"],
                ),
            }
        }
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let s = match op {
                Op::Gt => " > ",
                Op::Gte => " >= ",
                Op::Lt => " < ",
                _ => " <= ",
            };
            Frag::join(&[l, r], &["", s, ""])
        }
        Op::Like | Op::NotLike => {
            let not = if op == Op::NotLike { " NOT" } else { "" };
            // A plain string operand is wrapped in %…% (its own \ and _ escaped).
            let pattern = match (r.values.as_slice(), r.sql.as_str()) {
                ([SqlValue::String(Some(s))], "?") if !s.contains('%') => {
                    let escaped = s.replace('\\', "\\\\").replace('_', "\\_");
                    Frag::value(format!("%{escaped}%").into())
                }
                _ if rk == Kind::Unknown => Frag::join(&[r], &["('%' || ", " || '%')"]),
                _ => r.clone(),
            };
            Frag::join(
                &[l, &pattern],
                &["", &format!("{not} LIKE "), " ESCAPE '\\'"],
            )
        }
    }
}

fn compare(l: Side, op: Op, any: bool, r: Side) -> Frag {
    // A guest's @request.auth.* is absent: equal only to empty literals.
    if matches!(l, Side::Absent) || matches!(r, Side::Absent) {
        let other = if matches!(l, Side::Absent) { &r } else { &l };
        let other_empty = matches!(other, Side::Scalar(_, Kind::Empty) | Side::Absent);
        let truth = match op {
            Op::Eq => other_empty,
            Op::Neq => !other_empty,
            _ => false,
        };
        return Frag::raw(if truth { "1" } else { "0" });
    }
    let mut sets = Vec::new();
    let (lf, lk) = match l {
        Side::Scalar(f, k) => (f, k),
        Side::Set(s) => {
            let v = s.value.clone();
            sets.push(s);
            (v, Kind::Unknown)
        }
        Side::Absent => (Frag::raw("NULL"), Kind::Empty),
    };
    let (rf, rk) = match r {
        Side::Scalar(f, k) => (f, k),
        Side::Set(s) => {
            let v = s.value.clone();
            sets.push(s);
            (v, Kind::Unknown)
        }
        Side::Absent => (Frag::raw("NULL"), Kind::Empty),
    };
    let cmp = scalar_cmp(&lf, lk, op, &rf, rk);
    if sets.is_empty() {
        return cmp;
    }
    let from_parts: Vec<&Frag> = sets.iter().map(|s| &s.from).collect();
    let mut from_tpl = vec![""];
    from_tpl.extend(std::iter::repeat_n(
        ", ",
        from_parts.len().saturating_sub(1),
    ));
    from_tpl.push("");
    let from = Frag::join(&from_parts, &from_tpl);
    let cond_parts: Vec<&Frag> = sets.iter().map(|s| &s.cond).collect();
    let mut cond_tpl = vec!["("];
    cond_tpl.extend(std::iter::repeat_n(
        ") AND (",
        cond_parts.len().saturating_sub(1),
    ));
    cond_tpl.push(")");
    let cond = Frag::join(&cond_parts, &cond_tpl);
    // Every item must match; with no items the comparison is made against NULL.
    let null_l = if sets.len() == 2 || lf.sql == sets[0].value.sql {
        Frag::raw("NULL")
    } else {
        lf.clone()
    };
    let null_r = if sets.len() == 2 || rf.sql == sets[sets.len() - 1].value.sql {
        Frag::raw("NULL")
    } else {
        rf.clone()
    };
    let (nlk, nrk) = (
        if null_l.sql == "NULL" {
            Kind::Empty
        } else {
            lk
        },
        if null_r.sql == "NULL" {
            Kind::Empty
        } else {
            rk
        },
    );
    // With no items, PocketBase compares against NULL (its LEFT JOIN yields one NULL row).
    let empty_case = scalar_cmp(&null_l, nlk, op, &null_r, nrk);
    if any {
        let some = Frag::join(
            &[&from, &cond, &cmp],
            &["EXISTS (SELECT 1 FROM ", " WHERE ", " AND ", ")"],
        );
        if empty_case.sql == "0" {
            return some;
        }
        return Frag::join(
            &[&some, &from, &cond, &empty_case],
            &[
                "(",
                " OR (NOT EXISTS (SELECT 1 FROM ",
                " WHERE ",
                ") AND ",
                "))",
            ],
        );
    }
    Frag::join(
        &[&from, &cond, &cmp, &from, &cond, &empty_case],
        &[
            "(NOT EXISTS (SELECT 1 FROM ",
            " WHERE ",
            " AND NOT COALESCE(",
            ", 0)) AND (EXISTS (SELECT 1 FROM ",
            " WHERE ",
            ") OR ",
            "))",
        ],
    )
}

/// Compiles `e` as a condition on rows of `c` aliased `alias`.
pub fn compile(e: &Expr, c: &Collection, alias: &str, env: &Env<'_>) -> Result<Frag, CompileError> {
    let mut compiler = Compiler {
        env,
        aliases: 0,
        email_guards: Vec::new(),
    };
    compiler.expr(e, c, alias)
}

/// Compiles a `sort` parameter into ORDER BY terms for rows of `c` aliased `alias`.
pub fn compile_sort(
    sort: &str,
    c: &Collection,
    alias: &str,
    env: &Env<'_>,
) -> Result<Vec<(Frag, bool)>, CompileError> {
    let mut out = Vec::new();
    let mut compiler = Compiler {
        env,
        aliases: 100,
        email_guards: Vec::new(),
    };
    for (i, part) in sort
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        if i >= 8 {
            return Err(CompileError::Invalid("too many sort expressions".into()));
        }
        let (desc, name) = match part.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        let term = match name {
            "@random" => Frag::raw("RANDOM()"),
            "@rowid" => Frag::raw(format!("{}.rowid", q(alias))),
            _ => {
                let expr = super::fexpr::parse(&format!("{name} = 1"))
                    .map_err(|e| CompileError::Invalid(e.to_string()))?;
                let Expr::Cmp {
                    left: Operand::Ident(id),
                    ..
                } = expr
                else {
                    return Err(CompileError::Invalid(format!(
                        "invalid sort field {name:?}"
                    )));
                };
                match compiler.ident(&id, c, alias)? {
                    Side::Scalar(f, _) => f,
                    Side::Set(_) | Side::Absent => {
                        return Err(CompileError::Invalid(format!(
                            "cannot sort by the multi-value path {name:?}"
                        )));
                    }
                }
            }
        };
        // A constant term (`false`, `@request.body.x:isset`, ...) orders nothing, and SQLite
        // would read an integer literal in ORDER BY as a column number: refused, as
        // PocketBase refuses it (400).
        if term.values.is_empty() && term.sql.trim().parse::<i64>().is_ok() {
            return Err(CompileError::Invalid(format!(
                "invalid sort field {name:?}: a constant orders nothing"
            )));
        }
        out.push((term, desc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, Conn};
    use crate::query::fexpr::parse;
    use crate::schema::Collection;
    use serde_json::json;

    fn coll(v: Value) -> Collection {
        let (mut c, e) = Collection::from_json(&v).unwrap();
        assert!(e.is_empty());
        c.normalize();
        c
    }

    struct World {
        conn: Conn,
        registry: Registry,
    }

    fn world() -> World {
        let users = coll(
            json!({"name":"users_t","type":"base","listRule":"name != 'Hidden'","fields":[{"name":"name","type":"text"},{"name":"secret","type":"text","hidden":true}]}),
        );
        let posts = coll(json!({"name":"posts","listRule":"","fields":[
            {"name":"title","type":"text"},{"name":"views","type":"number"},
            {"name":"author","type":"relation","collectionId": users.id},
            {"name":"editors","type":"relation","collectionId": users.id,"maxSelect":5},
            {"name":"tags","type":"select","values":["a","b","c"],"maxSelect":3},
            {"name":"meta","type":"json"}]}));
        let comments = coll(json!({"name":"comments","listRule":"","fields":[
            {"name":"msg","type":"text"},{"name":"post","type":"relation","collectionId": posts.id}]}));
        let conn = Conn::open_in_memory().unwrap();
        for c in [&users, &posts, &comments] {
            for s in crate::schema::ddl::create_statements(c).unwrap() {
                conn.execute_batch(&s).unwrap();
            }
        }
        conn.execute_batch(
            r#"INSERT INTO users_t (id, name, secret) VALUES ('u1','Ann','s1'),('u2','Bob','s2');
               INSERT INTO posts (id, title, views, author, editors, tags, meta) VALUES
                 ('p1','hello world',10,'u1','["u1","u2"]','["a","b"]','{"k":{"x":1}}'),
                 ('p2','second',20,'u2','["u2"]','["c"]','{"k":{"x":2}}'),
                 ('p3','',0,'','[]','[]',NULL);
               INSERT INTO comments (id, msg, post) VALUES ('c1','first','p1'),('c2','c3','p1'),('c3','ok','p2');"#,
        )
        .unwrap();
        let registry = Registry::from_list(vec![users, posts, comments]);
        World { conn, registry }
    }

    fn ids(
        w: &World,
        filter: &str,
        req: &RequestInfo,
        trusted: bool,
    ) -> Result<Vec<String>, CompileError> {
        let posts = w.registry.get("posts").unwrap();
        let env = Env {
            registry: &w.registry,
            request: req,
            trusted,
            superuser: false,
        };
        let expr = parse(filter).map_err(|e| CompileError::Invalid(e.to_string()))?;
        let frag = compile(&expr, &posts, "m", &env)?;
        let sql = format!(
            "SELECT \"m\".\"id\" FROM \"posts\" \"m\" WHERE {} ORDER BY \"m\".\"id\"",
            frag.sql
        );
        let rows = db::query_sql(&w.conn, &sql, frag.values, |r| {
            Ok(r.try_get_by_index::<String>(0)?)
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        Ok(rows)
    }

    fn f(w: &World, filter: &str) -> Vec<String> {
        ids(w, filter, &RequestInfo::default(), false).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    #[test]
    fn comparisons_and_null_equals_empty() {
        let w = world();
        assert_eq!(f(&w, "title = 'second'"), ["p2"]);
        assert_eq!(f(&w, "title != 'second'"), ["p1", "p3"]);
        assert_eq!(f(&w, "title = ''"), ["p3"]);
        assert_eq!(f(&w, "meta = null"), ["p3"]);
        assert_eq!(f(&w, "views > 5 && views <= 20"), ["p1", "p2"]);
        assert_eq!(f(&w, "title ~ 'wor'"), ["p1"]);
        assert_eq!(f(&w, "title !~ 'wor'"), ["p2", "p3"]);
        assert_eq!(f(&w, "title ~ 'sec%'"), ["p2"]);
        assert_eq!(
            f(&w, "(views = 10 || views = 20) && title ~ 'o'"),
            ["p1", "p2"]
        );
        assert_eq!(f(&w, "meta.k.x = 2"), ["p2"]);
        // LIKE is case-insensitive for ASCII, as in PocketBase.
        assert_eq!(
            f(&w, "title:lower = 'HELLO WORLD' || title:lower ~ 'SECOND'"),
            ["p2"]
        );
        assert_eq!(f(&w, "title:lower = 'hello world'"), ["p1"]);
    }

    #[test]
    fn relations_back_relations_and_multi_semantics() {
        let w = world();
        assert_eq!(f(&w, "author.name = 'Ann'"), ["p1"]);
        assert_eq!(f(&w, "author.name != 'Ann'"), ["p2", "p3"]);
        // Multi relation: plain operator = every item; ? = any item.
        assert_eq!(f(&w, "editors.name ?= 'Ann'"), ["p1"]);
        assert_eq!(f(&w, "editors.name = 'Bob'"), ["p2"]);
        // Back-relations: a post with no comments passes != (PocketBase's semantics).
        assert_eq!(f(&w, "comments_via_post.msg != 'c3'"), ["p2", "p3"]);
        assert_eq!(f(&w, "comments_via_post.msg ?= 'c3'"), ["p1"]);
        assert_eq!(f(&w, "tags:each ?= 'c'"), ["p2"]);
        // An empty set compares as NULL for ?-operators too (p3 has no editors).
        assert_eq!(f(&w, "editors.name ?!= 'Bob'"), ["p1", "p3"]);
        assert_eq!(f(&w, "tags:length = 2"), ["p1"]);
        assert_eq!(f(&w, "tags ~ 'c'"), ["p2"]);
        assert_eq!(f(&w, "tags = 'c'"), Vec::<String>::new());
    }

    #[test]
    fn hops_apply_the_target_list_rule_for_clients() {
        let mut w = world();
        w.conn
            .execute_batch("UPDATE users_t SET name = 'Hidden' WHERE id = 'u2'")
            .unwrap();
        // Bob (now hidden by users_t's list rule) cannot be reached through a client filter...
        assert_eq!(f(&w, "author.name = 'Hidden'"), Vec::<String>::new());
        // ...but rules are trusted.
        assert_eq!(
            ids(&w, "author.name = 'Hidden'", &RequestInfo::default(), true).unwrap(),
            ["p2"]
        );
        let mut users = (*w.registry.get("users_t").unwrap()).clone();
        users.rules.list = None;
        let posts = (*w.registry.get("posts").unwrap()).clone();
        let comments = (*w.registry.get("comments").unwrap()).clone();
        w.registry = Registry::from_list(vec![users, posts, comments]);
        assert!(matches!(
            ids(&w, "author.name = 'Ann'", &RequestInfo::default(), false),
            Err(CompileError::Locked(_))
        ));
    }

    #[test]
    fn client_filters_cannot_see_hidden_fields_or_request_data() {
        let w = world();
        assert!(ids(&w, "author.secret = 's1'", &RequestInfo::default(), false).is_err());
        assert!(ids(&w, "@request.auth.id = ''", &RequestInfo::default(), false).is_err());
        assert!(ids(&w, "nope = 1", &RequestInfo::default(), false).is_err());
        // Rules are trusted.
        assert_eq!(
            ids(&w, "author.secret = 's1'", &RequestInfo::default(), true).unwrap(),
            ["p1"]
        );
    }

    #[test]
    fn guest_never_matches_owner_rules() {
        let w = world();
        let guest = RequestInfo::default();
        assert_eq!(
            ids(&w, "author = @request.auth.id", &guest, true).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&w, "@request.auth.id = ''", &guest, true).unwrap(),
            ["p1", "p2", "p3"]
        );
        assert_eq!(
            ids(&w, "@request.auth.id != ''", &guest, true).unwrap(),
            Vec::<String>::new()
        );
        let users = w.registry.get("users_t").unwrap();
        let mut data = Map::new();
        data.insert("id".into(), json!("u2"));
        data.insert("name".into(), json!("Bob"));
        let bob = RequestInfo {
            auth: Some((users, data)),
            ..Default::default()
        };
        assert_eq!(
            ids(&w, "author = @request.auth.id", &bob, true).unwrap(),
            ["p2"]
        );
        assert_eq!(
            ids(&w, "editors ?= @request.auth.id", &bob, true).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&w, "editors:each ?= @request.auth.id", &bob, true).unwrap(),
            ["p1", "p2"]
        );
        assert_eq!(
            ids(
                &w,
                "@collection.comments.post ?= id && @collection.comments.msg ?= 'ok'",
                &bob,
                true
            )
            .unwrap(),
            ["p1", "p2"]
        );
    }

    #[test]
    fn request_body_query_and_macros() {
        let w = world();
        let mut body = Map::new();
        body.insert("title".into(), json!("second"));
        let req = RequestInfo {
            body,
            method: "PATCH".into(),
            ..Default::default()
        };
        assert_eq!(
            ids(
                &w,
                "@request.body.title:isset = true && @request.body.views:isset = false",
                &req,
                true
            )
            .unwrap()
            .len(),
            3
        );
        assert_eq!(
            ids(&w, "@request.body.title:changed = true", &req, true).unwrap(),
            ["p1", "p3"]
        );
        assert_eq!(
            ids(
                &w,
                "@request.method = 'PATCH' && title = @request.body.title",
                &req,
                true
            )
            .unwrap(),
            ["p2"]
        );
        assert_eq!(
            f(&w, "@now > '2000-01-01' && @year > 2000 && views >= 0").len(),
            3
        );
        assert_eq!(
            f(&w, "strftime('%Y', '2024-05-01') = '2024' && views = 10"),
            ["p1"]
        );
    }

    #[test]
    fn injection_attempts_are_values() {
        let w = world();
        assert!(f(&w, "title = \"x' OR 1=1 --\"").is_empty());
        assert!(f(&w, "title ~ \"%' OR '1'='1\"").is_empty());
        assert!(
            ids(
                &w,
                "title; DROP TABLE posts = 1",
                &RequestInfo::default(),
                false
            )
            .is_err()
        );
        assert!(ids(&w, "meta.a\") = 1", &RequestInfo::default(), false).is_err());
    }

    #[test]
    fn sort_terms() {
        let w = world();
        let posts = w.registry.get("posts").unwrap();
        let req = RequestInfo::default();
        let env = Env {
            registry: &w.registry,
            request: &req,
            trusted: false,
            superuser: false,
        };
        let terms =
            compile_sort("-views,title,@random,@rowid,author.name", &posts, "m", &env).unwrap();
        assert_eq!(terms.len(), 5);
        assert!(terms[0].1 && !terms[1].1);
        assert!(compile_sort("nope", &posts, "m", &env).is_err());
        // constant terms order nothing (and `ORDER BY 0` would be a column number in SQLite)
        assert!(compile_sort("false,-title", &posts, "m", &env).is_err());
        assert!(compile_sort("-title,true", &posts, "m", &env).is_err());
        assert!(compile_sort("editors.name", &posts, "m", &env).is_err());
    }

    mod property {
        use super::*;
        use crate::query::fexpr::{Expr, Op, Operand};
        use proptest::prelude::*;

        fn operand() -> impl Strategy<Value = Operand> {
            let idents = [
                "title",
                "views",
                "tags",
                "meta.k.x",
                "author.name",
                "fans.name",
                "tags:each",
                "tags:length",
                "title:lower",
                "comments_via_post.msg",
                "@request.auth.id",
                "@request.body.title",
                "@request.body.title:isset",
                "@request.query.q",
                "@collection.comments.msg",
                "@request.method",
                "nope",
                "null",
                "true",
                "author.secret",
            ];
            prop_oneof![
                "[a-z%_' ]{0,6}".prop_map(Operand::Str),
                (-50i64..50).prop_map(|n| Operand::Num(n.to_string())),
                proptest::sample::select(idents.to_vec()).prop_map(|i| {
                    match parse(&format!("{i} = 1")) {
                        Ok(Expr::Cmp { left, .. }) => left,
                        _ => Operand::Num("0".into()),
                    }
                }),
                Just(Operand::Macro(crate::query::fexpr::Macro::Now)),
            ]
        }

        fn expr() -> impl Strategy<Value = Expr> {
            let leaf =
                (operand(), 0usize..8, any::<bool>(), operand()).prop_map(|(l, o, any, r)| {
                    Expr::Cmp {
                        left: l,
                        op: [
                            Op::Eq,
                            Op::Neq,
                            Op::Gt,
                            Op::Gte,
                            Op::Lt,
                            Op::Lte,
                            Op::Like,
                            Op::NotLike,
                        ][o],
                        any,
                        right: r,
                    }
                });
            leaf.prop_recursive(3, 12, 2, |inner| {
                prop_oneof![
                    (inner.clone(), inner.clone())
                        .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                    (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
                ]
            })
        }

        proptest! {
            #![proptest_config(crate::query::proptest_config(300))]
            /// Random trees compile without panics, and whatever compiles is valid SQL whose
            /// placeholders are all bound.
            #[test]
            fn compiled_sql_is_valid_and_fully_bound(e in expr(), trusted in any::<bool>(), guest in any::<bool>()) {
                let w = world();
                let posts = w.registry.get("posts").unwrap();
                let mut req = RequestInfo::default();
                if !guest {
                    let users = w.registry.get("users_t").unwrap();
                    let mut data = Map::new();
                    data.insert("id".into(), json!("u1"));
                    req.auth = Some((users, data));
                }
                let env = Env { registry: &w.registry, request: &req, trusted, superuser: false };
                if let Ok(frag) = compile(&e, &posts, "m", &env) {
                    let sql = format!("SELECT count(*) FROM \"posts\" \"m\" WHERE {}", frag.sql);
                    // Binding checks the parameter count (the driver refuses a mismatch).
                    let n = db::query_sql(&w.conn, &sql, frag.values, |r| {
                        Ok(r.try_get_by_index::<i64>(0)?)
                    });
                    prop_assert!(n.is_ok(), "{sql}: {:?}", n.as_ref().err());
                    let n = n.unwrap_or_default().first().copied().unwrap_or(-1);
                    prop_assert!((0..=3).contains(&n));
                }
            }
        }
    }
}
