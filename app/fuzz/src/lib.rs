//! Shared fixtures of the fuzz targets: a few collections (auth users with hidden fields and
//! emails, posts with single and multiple relations, JSON, select and geo fields, comments
//! pointing back) in an in-memory SQLite with rows, so compiled filters and sorts are not only
//! built but run.

use ferrobase::query::compile::{Env, Frag, RequestInfo};
use ferrobase::schema::{Collection, Registry};
use ferrobase::db::Conn;
use serde_json::json;

pub struct World {
    pub conn: Conn,
    pub registry: Registry,
}

fn coll(v: serde_json::Value) -> Collection {
    let (mut c, errors) = Collection::from_json(&v).expect("fixture collection");
    assert!(errors.is_empty(), "{errors:?}");
    c.normalize();
    c
}

pub fn world() -> World {
    let users = coll(json!({"name": "users", "type": "auth", "listRule": "verified = true", "fields": [
        {"name": "name", "type": "text"}, {"name": "secret", "type": "text", "hidden": true}]}));
    let posts = coll(json!({"name": "posts", "listRule": "", "fields": [
        {"name": "title", "type": "text"}, {"name": "views", "type": "number"},
        {"name": "author", "type": "relation", "collectionId": users.id},
        {"name": "editors", "type": "relation", "collectionId": users.id, "maxSelect": 5},
        {"name": "tags", "type": "select", "values": ["a", "b", "c"], "maxSelect": 3},
        {"name": "meta", "type": "json"}, {"name": "loc", "type": "geoPoint"},
        {"name": "when", "type": "date"}, {"name": "flag", "type": "bool"}]}));
    let comments = coll(json!({"name": "comments", "listRule": "", "fields": [
        {"name": "msg", "type": "text"}, {"name": "post", "type": "relation", "collectionId": posts.id}]}));
    let conn = Conn::open_in_memory().expect("sqlite");
    for c in [&users, &posts, &comments] {
        for s in ferrobase::schema::ddl::create_statements(c).expect("ddl") {
            conn.execute_batch(&s).expect("create");
        }
    }
    conn.execute_batch(
        r#"INSERT INTO users (id, email, emailVisibility, verified, name, secret, password, tokenKey)
             VALUES ('u1','a@x.io',0,1,'Ann','s1','h','k1'),('u2','b@x.io',1,0,'Bob','s2','h','k2');
           INSERT INTO posts (id, title, views, author, editors, tags, meta, loc, "when", flag) VALUES
             ('p1','hello world',10,'u1','["u1","u2"]','["a","b"]','{"k":{"x":1}}','{"lon":1,"lat":2}','2024-01-01 00:00:00.000Z',1),
             ('p2','second',20,'u2','["u2"]','["c"]','{"k":[1,2]}','{"lon":0,"lat":0}','',0),
             ('p3','',0,'','[]','[]',NULL,'{"lon":0,"lat":0}','',0);
           INSERT INTO comments (id, msg, post) VALUES ('c1','first','p1'),('c2','c3','p1'),('c3','ok','p2');"#,
    )
    .expect("rows");
    let registry = Registry::from_list(vec![users, posts, comments]);
    World { conn, registry }
}

/// Request contexts the targets compile under: a guest, and a signed-in user.
pub fn requests(w: &World) -> Vec<RequestInfo> {
    let users = w.registry.get("users").expect("users");
    let mut auth = serde_json::Map::new();
    auth.insert("id".into(), json!("u1"));
    auth.insert("email".into(), json!("a@x.io"));
    vec![
        RequestInfo::default(),
        RequestInfo {
            auth: Some((users, auth)),
            ..RequestInfo::default()
        },
    ]
}

/// Runs a compiled condition on `table`: it must be valid SQL with every value bound.
pub fn run(w: &World, table: &str, cond: &Frag, order: &[(Frag, bool)]) {
    let mut sql = format!("SELECT count(*) FROM \"{table}\" AS \"m\" WHERE {}", cond.sql);
    let mut values = cond.values.clone();
    if !order.is_empty() {
        let terms: Vec<String> = order
            .iter()
            .map(|(f, desc)| format!("{} {}", f.sql, if *desc { "DESC" } else { "ASC" }))
            .collect();
        sql = format!(
            "SELECT \"m\".\"id\" FROM \"{table}\" AS \"m\" WHERE {} ORDER BY {}",
            cond.sql,
            terms.join(", ")
        );
        for (f, _) in order {
            values.extend(f.values.iter().cloned());
        }
    }
    if let Err(e) = ferrobase::db::query_sql(&w.conn, &sql, values, |_| Ok(())) {
        panic!("compiled SQL fails: {e}\n{sql}");
    }
}

pub fn env<'a>(w: &'a World, request: &'a RequestInfo, trusted: bool, superuser: bool) -> Env<'a> {
    Env {
        registry: &w.registry,
        request,
        trusted,
        superuser,
    }
}
