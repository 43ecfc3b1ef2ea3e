//! Schema statements for collection tables: create, drop, and the diff between two versions of
//! a collection. Statements are built with sea-query; identifiers come from validated names
//! (`^\w+$`), and nothing a client sends is ever a value inside DDL.

use sea_query::{Alias, ColumnDef, Expr, SqliteQueryBuilder, Table};

use super::collection::Collection;
use super::field::{Field, FieldKind};
use super::index::IndexDef;

/// PocketBase's random default for the `id` column.
const ID_DEFAULT: &str = "('r'||lower(hex(randomblob(7))))";

/// The type a field's column is declared with (PocketBase's). Only `TEXT` gives SQLite's text
/// affinity; `NUMERIC`, `BOOLEAN` and `JSON` all get numeric affinity (what
/// `records::stored_as_bound` relies on).
pub fn declared_type(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::Number { .. } => "NUMERIC",
        FieldKind::Bool => "BOOLEAN",
        FieldKind::Json { .. } | FieldKind::GeoPoint => "JSON",
        k if k.is_multiple() => "JSON",
        _ => "TEXT",
    }
}

/// The column of a field, with PocketBase's declared type and default.
pub fn column_def(field: &Field) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(&field.name));
    c.custom(Alias::new(declared_type(&field.kind)));
    match &field.kind {
        FieldKind::Text {
            primary_key: true, ..
        } => {
            c.primary_key().default(Expr::cust(ID_DEFAULT)).not_null();
        }
        FieldKind::Number { .. } => {
            c.default(0).not_null();
        }
        FieldKind::Bool => {
            c.default(Expr::cust("FALSE")).not_null();
        }
        FieldKind::Json { .. } => {
            c.default(Expr::cust("NULL"));
        }
        FieldKind::GeoPoint => {
            c.default(r#"{"lon":0,"lat":0}"#).not_null();
        }
        k if k.is_multiple() => {
            c.default("[]").not_null();
        }
        _ => {
            c.default("").not_null();
        }
    }
    c
}

/// Indexes Ferrobase keeps on its own (not listed in the collection's `indexes`): one per
/// autodate field, so `sort=-created` walks an index instead of sorting the whole table.
fn managed_indexes(c: &Collection) -> Vec<(String, String)> {
    c.fields
        .iter()
        .filter(|f| matches!(f.kind, FieldKind::Autodate { .. }))
        .map(|f| {
            let name = format!("_fb_{}_{}", c.id, f.id);
            let sql = format!(
                "CREATE INDEX {} ON {} ({})",
                quoted(&name),
                quoted(&c.name),
                quoted(&f.name)
            );
            (name, sql)
        })
        .collect()
}

/// Statements creating a collection's table and indexes.
pub fn create_statements(c: &Collection) -> Result<Vec<String>, String> {
    let mut t = Table::create();
    t.table(Alias::new(&c.name));
    for f in &c.fields {
        t.col(column_def(f));
    }
    let mut out = vec![t.to_string(SqliteQueryBuilder)];
    for idx in &c.indexes {
        out.push(IndexDef::parse(idx)?.create_sql(&c.name));
    }
    out.extend(managed_indexes(c).into_iter().map(|(_, sql)| sql));
    Ok(out)
}

/// The statement dropping a collection's table (its indexes go with it).
pub fn drop_statement(name: &str) -> String {
    Table::drop()
        .table(Alias::new(name))
        .to_string(SqliteQueryBuilder)
}

fn index_names(c: &Collection) -> Vec<String> {
    c.indexes
        .iter()
        .filter_map(|s| IndexDef::parse(s).ok())
        .map(|d| d.name)
        .collect()
}

fn quoted(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Statements turning the table of `old` into the table of `new`. Fields are matched by id, so
/// a renamed field keeps its data. Indexes are dropped first and created again last, so
/// columns they cover can be renamed or dropped.
pub fn diff_statements(old: &Collection, new: &Collection) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in index_names(old)
        .into_iter()
        .chain(managed_indexes(old).into_iter().map(|(n, _)| n))
    {
        out.push(format!("DROP INDEX IF EXISTS {}", quoted(&name)));
    }
    if old.name != new.name {
        out.push(
            Table::rename()
                .table(Alias::new(&old.name), Alias::new(&new.name))
                .to_string(SqliteQueryBuilder),
        );
    }
    let table = &new.name;
    for f in &old.fields {
        if new.field_by_id(&f.id).is_none() {
            out.push(
                Table::alter()
                    .table(Alias::new(table))
                    .drop_column(Alias::new(&f.name))
                    .to_string(SqliteQueryBuilder),
            );
        }
    }
    // Renames go through temporary names so that swaps (a->b, b->a) cannot collide.
    let renamed: Vec<(&Field, &Field)> = new
        .fields
        .iter()
        .filter_map(|nf| old.field_by_id(&nf.id).map(|of| (of, nf)))
        .filter(|(of, nf)| of.name != nf.name)
        .collect();
    for (of, nf) in &renamed {
        out.push(
            Table::alter()
                .table(Alias::new(table))
                .rename_column(
                    Alias::new(&of.name),
                    Alias::new(format!("_fb_tmp_{}", nf.id)),
                )
                .to_string(SqliteQueryBuilder),
        );
    }
    for (_, nf) in &renamed {
        out.push(
            Table::alter()
                .table(Alias::new(table))
                .rename_column(
                    Alias::new(format!("_fb_tmp_{}", nf.id)),
                    Alias::new(&nf.name),
                )
                .to_string(SqliteQueryBuilder),
        );
    }
    for nf in &new.fields {
        match old.field_by_id(&nf.id) {
            None => out.push(
                Table::alter()
                    .table(Alias::new(table))
                    .add_column(column_def(nf))
                    .to_string(SqliteQueryBuilder),
            ),
            Some(of) if of.kind.is_multiple() != nf.kind.is_multiple() => {
                // Single <-> multiple: convert the stored values in place. (The declared
                // column type keeps its old name; SQLite does not enforce it and records are
                // always written with every column.)
                let col = quoted(&nf.name);
                let expr = if nf.kind.is_multiple() {
                    format!(
                        "CASE WHEN {col} IS NULL OR {col} = '' THEN '[]' ELSE json_array({col}) END"
                    )
                } else {
                    format!(
                        "CASE WHEN json_valid({col}) AND json_type({col}) = 'array' THEN COALESCE(json_extract({col}, '$[#-1]'), '') ELSE COALESCE({col}, '') END"
                    )
                };
                out.push(format!("UPDATE {} SET {col} = {expr}", quoted(table)));
            }
            Some(_) => {}
        }
    }
    for idx in &new.indexes {
        out.push(IndexDef::parse(idx)?.create_sql(table));
    }
    out.extend(managed_indexes(new).into_iter().map(|(_, sql)| sql));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, Conn};
    use crate::schema::collection::Collection;
    use serde_json::json;

    fn coll(v: serde_json::Value) -> Collection {
        let (mut c, errs) = Collection::from_json(&v).unwrap();
        assert!(errs.is_empty());
        c.normalize();
        c
    }

    /// Every row of `sql`, decoded as `T` (a value or a tuple).
    fn rows<T: sea_orm::TryGetableMany>(conn: &Conn, sql: &str) -> Vec<T> {
        db::query_sql(conn, sql, vec![], |r| Ok(r.try_get_many_by_index::<T>()?))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn first<T: sea_orm::TryGetableMany>(conn: &Conn, sql: &str) -> T {
        rows(conn, sql).into_iter().next().expect("a row")
    }

    fn run(conn: &Conn, stmts: &[String]) {
        for s in stmts {
            conn.execute_batch(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    fn columns(conn: &Conn, t: &str) -> Vec<(String, String)> {
        rows(
            conn,
            &format!("SELECT name, type FROM pragma_table_info('{t}')"),
        )
    }

    #[test]
    fn every_type_gets_pocketbase_column() {
        let c = coll(json!({"name":"all","fields":[
            {"name":"t","type":"text"},{"name":"n","type":"number"},{"name":"b","type":"bool"},
            {"name":"e","type":"email"},{"name":"u","type":"url"},{"name":"ed","type":"editor"},
            {"name":"d","type":"date"},{"name":"ad","type":"autodate","onCreate":true},
            {"name":"s1","type":"select","values":["a"]},{"name":"s2","type":"select","values":["a","b"],"maxSelect":2},
            {"name":"f1","type":"file"},{"name":"f2","type":"file","maxSelect":3},
            {"name":"r1","type":"relation","collectionId":"x"},{"name":"r2","type":"relation","collectionId":"x","maxSelect":5},
            {"name":"j","type":"json"},{"name":"p","type":"password"},{"name":"g","type":"geoPoint"}]}));
        let conn = Conn::open_in_memory().unwrap();
        run(&conn, &create_statements(&c).unwrap());
        let cols = columns(&conn, "all");
        let ty = |n: &str| cols.iter().find(|(c, _)| c == n).unwrap().1.clone();
        assert_eq!(ty("id"), "TEXT");
        assert_eq!(ty("n"), "NUMERIC");
        assert_eq!(ty("b"), "BOOLEAN");
        assert_eq!(ty("s1"), "TEXT");
        assert_eq!(ty("s2"), "JSON");
        assert_eq!(ty("f2"), "JSON");
        assert_eq!(ty("r2"), "JSON");
        assert_eq!(ty("j"), "JSON");
        assert_eq!(ty("g"), "JSON");
        conn.execute_batch("INSERT INTO `all` (t) VALUES ('x')")
            .unwrap();
        let (id, n, b, s2, g): (String, i64, bool, String, String) =
            first(&conn, "SELECT id, n, b, s2, g FROM `all`");
        assert_eq!(id.len(), 15);
        assert_eq!((n, b, s2.as_str()), (0, false, "[]"));
        assert_eq!(g, r#"{"lon":0,"lat":0}"#);
    }

    #[test]
    fn add_rename_drop_keep_data() {
        let v1 = coll(
            json!({"name":"p","fields":[{"name":"title","type":"text"},{"name":"gone","type":"text"}],
            "indexes":["CREATE INDEX idx_title ON p (title)"]}),
        );
        let conn = Conn::open_in_memory().unwrap();
        run(&conn, &create_statements(&v1).unwrap());
        conn.execute_batch("INSERT INTO p (id, title, gone) VALUES ('a', 'hello', 'x')")
            .unwrap();
        let title_id = v1.field("title").unwrap().id.clone();
        let v2 = coll(json!({"id": v1.id, "name":"posts","fields":[
            {"id": title_id, "name":"headline","type":"text"},
            {"name":"views","type":"number"}],
            "indexes":["CREATE INDEX idx_title ON posts (headline)"]}));
        run(&conn, &diff_statements(&v1, &v2).unwrap());
        let (h, views): (String, i64) =
            first(&conn, "SELECT headline, views FROM posts WHERE id='a'");
        assert_eq!((h.as_str(), views), ("hello", 0));
        let names: Vec<String> = columns(&conn, "posts").into_iter().map(|c| c.0).collect();
        assert!(!names.contains(&"gone".to_string()));
        let idx: i64 = first(
            &conn,
            "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='idx_title' AND tbl_name='posts'",
        );
        assert_eq!(idx, 1);
    }

    #[test]
    fn autodate_fields_get_a_managed_index_used_by_sort() {
        let c = coll(
            json!({"name":"ev","fields":[{"name":"created","type":"autodate","onCreate":true}]}),
        );
        let conn = Conn::open_in_memory().unwrap();
        run(&conn, &create_statements(&c).unwrap());
        let plan: String = db::query_sql(
            &conn,
            "EXPLAIN QUERY PLAN SELECT id FROM ev ORDER BY created DESC LIMIT 30",
            vec![],
            |r| Ok(r.try_get_by_index::<String>(3)?),
        )
        .unwrap()
        .remove(0);
        assert!(plan.contains("USING INDEX"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn swapping_names_keeps_values_with_their_field() {
        let v1 = coll(
            json!({"name":"s","fields":[{"name":"a","type":"text"},{"name":"b","type":"text"}]}),
        );
        let conn = Conn::open_in_memory().unwrap();
        run(&conn, &create_statements(&v1).unwrap());
        conn.execute_batch("INSERT INTO s (id, a, b) VALUES ('r', 'A', 'B')")
            .unwrap();
        let (ida, idb) = (
            v1.field("a").unwrap().id.clone(),
            v1.field("b").unwrap().id.clone(),
        );
        let v2 = coll(json!({"id": v1.id, "name":"s","fields":[
            {"id": ida, "name":"b","type":"text"},{"id": idb, "name":"a","type":"text"}]}));
        run(&conn, &diff_statements(&v1, &v2).unwrap());
        let (a, b): (String, String) = first(&conn, "SELECT a, b FROM s");
        assert_eq!((a.as_str(), b.as_str()), ("B", "A"));
    }

    #[test]
    fn single_to_multiple_converts_values() {
        let v1 =
            coll(json!({"name":"m","fields":[{"name":"tags","type":"select","values":["x","y"]}]}));
        let conn = Conn::open_in_memory().unwrap();
        run(&conn, &create_statements(&v1).unwrap());
        conn.execute_batch("INSERT INTO m (id, tags) VALUES ('1', 'x'), ('2', '')")
            .unwrap();
        let fid = v1.field("tags").unwrap().id.clone();
        let v2 = coll(
            json!({"id": v1.id, "name":"m","fields":[{"id": fid, "name":"tags","type":"select","values":["x","y"],"maxSelect":2}]}),
        );
        run(&conn, &diff_statements(&v1, &v2).unwrap());
        let vals: Vec<String> = rows(&conn, "SELECT tags FROM m ORDER BY id");
        assert_eq!(vals, vec![r#"["x"]"#.to_string(), "[]".to_string()]);
        run(&conn, &diff_statements(&v2, &v1).unwrap());
        let v: String = first(&conn, "SELECT tags FROM m WHERE id='1'");
        assert_eq!(v, "x");
    }
}
