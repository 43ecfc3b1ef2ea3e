//! Runs the system migrations of `ferrobase-migrations` on the writer.

use sea_query::{Alias, Expr, ExprTrait, Query};

use super::{Db, DbError};

/// Applies every pending system migration, each in its own transaction, and records it in
/// `_migrations` (file name, applied time in microseconds, as PocketBase records them).
/// Returns the names it applied.
pub async fn run_system_migrations(db: &Db) -> Result<Vec<String>, DbError> {
    db.write(|conn| {
        conn.execute_batch(&ferrobase_migrations::migrations_table())?;
        Ok::<_, DbError>(())
    })
    .await?;
    let mut applied = Vec::new();
    for m in ferrobase_migrations::all() {
        let name = m.name.to_string();
        let ran = db
            .write(move |conn| {
                let q = Query::select()
                    .expr(Expr::val(1))
                    .from(Alias::new("_migrations"))
                    .and_where(Expr::col(Alias::new("file")).eq(name.clone()))
                    .to_owned();
                if !super::query_rows(conn, &q, |_| Ok(()))?.is_empty() {
                    return Ok::<_, DbError>(false);
                }
                for stmt in (m.up)() {
                    conn.execute_batch(&stmt)?;
                }
                let micros = chrono::Utc::now().timestamp_micros();
                let ins = Query::insert()
                    .into_table(Alias::new("_migrations"))
                    .columns([Alias::new("file"), Alias::new("applied")])
                    .values_panic([name.into(), micros.into()])
                    .to_owned();
                super::execute(conn, &ins)?;
                Ok(true)
            })
            .await?;
        if ran {
            applied.push(m.name.to_string());
        }
    }
    Ok(applied)
}
