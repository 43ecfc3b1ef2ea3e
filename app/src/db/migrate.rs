//! Runs the system migrations of `ferrobase-migrations` on the writer.

use sea_orm::{ActiveValue::Set, EntityTrait};

use super::entities::migration;
use super::{Db, DbError};

/// Applies every pending system migration, each in its own transaction, and records it in
/// `_migrations` (file name, applied time in microseconds, as PocketBase records them).
/// Returns the names it applied.
pub async fn run_system_migrations(db: &Db) -> Result<Vec<String>, DbError> {
    db.write(|conn| conn.execute_batch(&ferrobase_migrations::migrations_table()))
        .await?;
    let mut applied = Vec::new();
    for m in ferrobase_migrations::all() {
        let name = m.name.to_string();
        let ran = db
            .write(move |conn| {
                if migration::Entity::find_by_id(name.clone())
                    .one(conn)?
                    .is_some()
                {
                    return Ok::<_, DbError>(false);
                }
                for stmt in (m.up)() {
                    conn.execute_batch(&stmt)?;
                }
                migration::Entity::insert(migration::ActiveModel {
                    file: Set(name),
                    applied: Set(chrono::Utc::now().timestamp_micros()),
                })
                .exec_without_returning(conn)?;
                Ok(true)
            })
            .await?;
        if ran {
            applied.push(m.name.to_string());
        }
    }
    Ok(applied)
}
