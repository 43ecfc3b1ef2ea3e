//! Schema migration files: declarative JSON, one file per change, kept in git beside the
//! data directory (`./fb_migrations` by default).
//!
//! ```json
//! {"up":   [{"action": "create", "collection": { ...collection JSON... }}],
//!  "down": [{"action": "delete", "collection": {"id": "pbc_123", ...}}]}
//! ```
//! Actions are `create`, `update` (the full collection as it should be after) and `delete`.
//! Pending files run in name order at start-up (and with `ferrobase migrate up`), each in its
//! own transaction together with its `_migrations` row; a failing file stops start-up and
//! changes nothing.

use std::path::{Path, PathBuf};

use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use super::{CollectionStore, SchemaError};
use crate::db::entities::migration;
use crate::db::{Db, DbError};

/// Errors of migration files.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A parsed migration file.
#[derive(Debug, Clone)]
pub struct MigrationFile {
    pub name: String,
    pub up: Vec<Value>,
    pub down: Vec<Value>,
}

fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    s.trim_matches('_').chars().take(80).collect()
}

/// A new file name `{unix}_{name}.json` that sorts after every file already in `dir`: files
/// replay in name order, so a file written in the same second as the last one (or while the
/// clock reads earlier than its stamp) takes the last stamp + 1 instead of the clock's.
pub fn new_file_name(dir: &Path, name: &str) -> String {
    let latest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name();
            let n = n.to_str()?;
            n.strip_suffix(".json")?
                .split('_')
                .next()?
                .parse::<i64>()
                .ok()
        })
        .max();
    let now = chrono::Utc::now().timestamp();
    let ts = match latest {
        Some(l) if l >= now => l + 1,
        _ => now,
    };
    format!("{ts}_{}.json", sanitize(name))
}

/// Writes a new migration file into `dir` and returns its path.
pub fn write_file(
    dir: &Path,
    name: &str,
    up: &[Value],
    down: &[Value],
) -> std::io::Result<PathBuf> {
    let file = new_file_name(dir, name);
    write_named(dir, &file, up, down)
}

/// Writes a migration file with an exact file name.
pub fn write_named(
    dir: &Path,
    file: &str,
    up: &[Value],
    down: &[Value],
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file);
    let body = serde_json::to_string_pretty(&json!({"up": up, "down": down}))
        .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body + "\n")?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Reads every `*.json` migration file of `dir`, in name order.
pub fn read_dir(dir: &Path) -> Result<Vec<MigrationFile>, MigrationError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name))?;
        let bad = |m: String| MigrationError::File {
            file: name.clone(),
            message: m,
        };
        let v: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let list = |k: &str| -> Result<Vec<Value>, MigrationError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(vec![]),
                Some(Value::Array(a)) => Ok(a.clone()),
                Some(_) => Err(bad(format!("{k:?} must be a list"))),
            }
        };
        out.push(MigrationFile {
            up: list("up")?,
            down: list("down")?,
            name,
        });
    }
    Ok(out)
}

/// Names of the applied migrations, oldest first.
pub async fn applied(db: &Db) -> Result<Vec<String>, DbError> {
    db.read(|conn| {
        Ok(migration::Entity::find()
            .select_only()
            .column(migration::Column::File)
            .order_by_asc(migration::Column::Applied)
            .order_by_asc(migration::Column::File)
            .into_tuple::<String>()
            .all(conn)?)
    })
    .await
}

/// Applies pending migration files in order; returns the names applied.
pub async fn up(
    db: &Db,
    store: &CollectionStore,
    dir: &Path,
) -> Result<Vec<String>, MigrationError> {
    let done = applied(db).await?;
    let mut ran = Vec::new();
    for m in read_dir(dir)?
        .into_iter()
        .filter(|m| !done.contains(&m.name))
    {
        store
            .apply_ops(m.up.clone(), Some((m.name.clone(), true)))
            .await
            .map_err(|e| MigrationError::File {
                file: m.name.clone(),
                message: e.to_string(),
            })?;
        ran.push(m.name);
    }
    Ok(ran)
}

/// Reverts the last `n` applied migrations that have files; returns the names reverted.
pub async fn down(
    db: &Db,
    store: &CollectionStore,
    dir: &Path,
    n: usize,
) -> Result<Vec<String>, MigrationError> {
    let files = read_dir(dir)?;
    let done = applied(db).await?;
    let mut reverted = Vec::new();
    for name in done
        .iter()
        .rev()
        .filter(|n| files.iter().any(|f| &f.name == *n))
        .take(n)
    {
        let Some(m) = files.iter().find(|f| &f.name == name) else {
            continue;
        };
        store
            .apply_ops(m.down.clone(), Some((m.name.clone(), false)))
            .await
            .map_err(|e| MigrationError::File {
                file: m.name.clone(),
                message: e.to_string(),
            })?;
        reverted.push(m.name.clone());
    }
    Ok(reverted)
}

/// Removes `_migrations` rows of this store's kind (files in `dir`'s format) whose files are
/// gone; returns how many.
pub async fn history_sync(db: &Db, dir: &Path) -> Result<usize, MigrationError> {
    let files: Vec<String> = read_dir(dir)?.into_iter().map(|m| m.name).collect();
    let stale: Vec<String> = applied(db)
        .await?
        .into_iter()
        .filter(|n| n.ends_with(".json") && !files.contains(n))
        .collect();
    let count = stale.len();
    db.write(move |conn| {
        for file in stale {
            migration::Entity::delete_by_id(file).exec(conn)?;
        }
        Ok::<_, DbError>(())
    })
    .await?;
    Ok(count)
}

/// Writes one migration holding the whole current schema (every non-system collection),
/// recorded as applied (it describes what is already there).
pub async fn snapshot(
    db: &Db,
    store: &CollectionStore,
    dir: &Path,
) -> Result<PathBuf, MigrationError> {
    let reg = store.snapshot();
    let list: Vec<_> = reg.all().iter().filter(|c| !c.system).cloned().collect();
    // Create in an order where relation targets come first.
    let mut ordered: Vec<std::sync::Arc<super::Collection>> = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        let before = rest.len();
        let mut i = 0;
        while i < rest.len() {
            let deps_ok = rest[i].fields.iter().all(|f| match &f.kind {
                super::FieldKind::Relation { collection_id, .. } => {
                    collection_id == &rest[i].id
                        || !rest.iter().any(|o| &o.id == collection_id)
                        || ordered.iter().any(|o| &o.id == collection_id)
                }
                _ => true,
            });
            if deps_ok {
                ordered.push(rest.remove(i));
            } else {
                i += 1;
            }
        }
        if rest.len() == before {
            ordered.append(&mut rest);
        }
    }
    let up: Vec<Value> = ordered
        .iter()
        .map(|c| json!({"action": "create", "collection": c.to_json()}))
        .collect();
    let down: Vec<Value> = ordered
        .iter()
        .rev()
        .map(|c| json!({"action": "delete", "collection": c.to_json()}))
        .collect();
    let path = write_file(dir, "collections_snapshot", &up, &down)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    db.write(move |conn| {
        migration::Entity::insert(migration::ActiveModel {
            file: Set(name),
            applied: Set(chrono::Utc::now().timestamp_micros()),
        })
        .exec_without_returning(conn)?;
        Ok::<_, DbError>(())
    })
    .await?;
    Ok(path)
}
