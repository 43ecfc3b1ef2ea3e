//! What a collection change does, for dry runs (`CollectionStore::dry_run_update`): fields
//! added, removed, renamed and changed (matched by field id, as the DDL diff matches them),
//! rules and indexes that change, and how many records hold data in the fields that would go.

use crate::db::Conn;
use sea_query::{Alias, Expr, ExprTrait, Func, Query};

use super::{Collection, SchemaError};
use crate::db;

/// Describes the change from `old` to `new`, counting lost values on `conn` (where the table
/// is still as `old` has it).
pub fn describe(
    conn: &Conn,
    old: &Collection,
    new: &Collection,
) -> Result<ferrobase_plugin::SchemaDiff, SchemaError> {
    let mut d = ferrobase_plugin::SchemaDiff {
        after: new.to_json(),
        ..Default::default()
    };
    for f in &new.fields {
        match old.fields.iter().find(|o| o.id == f.id) {
            None => d.added_fields.push(f.name.clone()),
            Some(o) => {
                if o.name != f.name {
                    d.renamed_fields.push((o.name.clone(), f.name.clone()));
                }
                let (mut a, mut b) = (o.to_json(), f.to_json());
                for v in [&mut a, &mut b] {
                    if let Some(m) = v.as_object_mut() {
                        m.remove("name");
                    }
                }
                if a != b {
                    d.changed_fields.push(f.name.clone());
                }
            }
        }
    }
    for o in &old.fields {
        if new.fields.iter().any(|f| f.id == o.id) {
            continue;
        }
        d.removed_fields.push(o.name.clone());
        let q = Query::select()
            .expr(Func::count(Expr::col(Alias::new("id"))))
            .from(Alias::new(&old.name))
            .and_where(Expr::col(Alias::new(&o.name)).is_not_null())
            .and_where(Expr::col(Alias::new(&o.name)).ne(""))
            .and_where(Expr::col(Alias::new(&o.name)).ne("[]"))
            .to_owned();
        let n = db::query_rows(conn, &q, |r| Ok(r.try_get_by_index::<i64>(0)?))?
            .into_iter()
            .next()
            .unwrap_or(0);
        if n > 0 {
            d.data_loss.push((o.name.clone(), n as u64));
        }
    }
    for (name, a, b) in [
        ("listRule", &old.rules.list, &new.rules.list),
        ("viewRule", &old.rules.view, &new.rules.view),
        ("createRule", &old.rules.create, &new.rules.create),
        ("updateRule", &old.rules.update, &new.rules.update),
        ("deleteRule", &old.rules.delete, &new.rules.delete),
    ] {
        if a != b {
            d.changed_rules.push(name.to_string());
        }
    }
    d.added_indexes = new
        .indexes
        .iter()
        .filter(|i| !old.indexes.contains(i))
        .cloned()
        .collect();
    d.removed_indexes = old
        .indexes
        .iter()
        .filter(|i| !new.indexes.contains(i))
        .cloned()
        .collect();
    if old.name != new.name {
        d.renamed_to = Some(new.name.clone());
    }
    Ok(d)
}
