//! Filtering and sorting the collections list (`GET /api/collections`): the filter grammar
//! compiled against the `_collections` table, limited to PocketBase's filterable columns.

use crate::db::Conn;
use sea_query::{Alias, Query};
use serde_json::json;

use super::compile::{self, CompileError, Env, RequestInfo};
use super::fexpr;
use crate::db::{self, DbError};
use crate::schema::{Collection, Registry};

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A system table seen as a collection with the given fields, so the filter and sort
/// compilers can run on it (the collections list, the request logs).
pub(crate) fn table_as_collection(name: &str, fields: serde_json::Value) -> Collection {
    let (mut c, _) = Collection::from_json(&json!({"name": name, "fields": fields}))
        .unwrap_or_else(|_| {
            (
                Collection::scaffold(crate::schema::CollectionType::Base),
                Default::default(),
            )
        });
    c.normalize();
    c
}

/// `_collections` seen as a collection with the columns clients may filter and sort by.
fn meta_collection() -> Collection {
    table_as_collection(
        "_collections",
        json!([
            {"name": "name", "type": "text"},
            {"name": "type", "type": "text"},
            {"name": "system", "type": "bool"},
            {"name": "created", "type": "autodate"},
            {"name": "updated", "type": "autodate"},
        ]),
    )
}

/// The ids of the collections matching `filter`, in `sort` order (rowid order by default).
pub fn filter_ids(conn: &Conn, filter: &str, sort: &str) -> Result<Vec<String>, ListError> {
    let meta = meta_collection();
    let registry = Registry::from_list(vec![meta.clone()]);
    let request = RequestInfo::default();
    let env = Env {
        registry: &registry,
        request: &request,
        trusted: false,
        superuser: false,
    };
    let mut q = Query::select();
    q.column((Alias::new("m"), Alias::new("id")))
        .from_as(Alias::new("_collections"), Alias::new("m"));
    if !filter.trim().is_empty() {
        let expr = fexpr::parse(filter).map_err(|e| CompileError::Invalid(e.to_string()))?;
        q.and_where(compile::compile(&expr, &meta, "m", &env)?.into_expr());
    }
    let order = compile::compile_sort(sort, &meta, "m", &env)?;
    if order.is_empty() {
        q.order_by(
            (Alias::new("m"), Alias::new("rowid")),
            sea_query::Order::Asc,
        );
    }
    for (o, desc) in order {
        let dir = if desc {
            sea_query::Order::Desc
        } else {
            sea_query::Order::Asc
        };
        q.order_by_expr(o.into_expr(), dir);
    }
    Ok(db::query_rows(conn, &q, |r| {
        Ok(r.try_get_by_index::<String>(0)?)
    })?)
}
