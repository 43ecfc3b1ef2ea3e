//! The start-up sweep of local storage: removes what a crash (`kill -9`, power loss) can
//! leave behind between a file write and its commit.
//!
//! A write with uploads stores its files first and commits the record after; a write that
//! drops files commits first and removes them after (`Cleaner`). A crash between the two
//! steps leaves files no record names: uploads of a write that never committed, old files
//! whose removal never ran, folders of records that are gone, and half-written `*.fbtmp`
//! files. None of them is reachable through the API, but they use disk, so the server sweeps
//! them once at start, in the background.
//!
//! Only entries last modified before the server started are touched: the previous process
//! is gone, so every file it wrote is either committed (and named by its record) or garbage,
//! while a file written after the start may belong to a write still in flight. Files are
//! checked against the records on a read-only connection of its own, so the sweep takes
//! neither the writer nor a reader of the pool.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use sea_query::{Alias, Expr, ExprTrait, Query, SqliteQueryBuilder};

use crate::db::{self, Conn};

use crate::schema::{Collection, FieldKind};

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files removed (thumbnails included).
    pub files: u64,
    /// Folders removed (of records that do not exist, or emptied by the sweep).
    pub dirs: u64,
    /// Record folders looked at.
    pub records: u64,
}

/// Sweeps `<storage>/<collectionId>/<recordId>/` for every collection with file fields.
pub fn run(
    db_path: &Path,
    storage: &Path,
    collections: &[Arc<Collection>],
    before: SystemTime,
) -> io::Result<Swept> {
    let mut out = Swept::default();
    if !storage.is_dir() {
        return Ok(out);
    }
    let conn = Conn::open_standalone(db_path, false).map_err(io::Error::other)?;
    for c in collections {
        let file_fields: Vec<&str> = c
            .fields
            .iter()
            .filter(|f| matches!(f.kind, FieldKind::File { .. }))
            .map(|f| f.name.as_str())
            .collect();
        let dir = storage.join(&c.id);
        if file_fields.is_empty() || !dir.is_dir() {
            continue;
        }
        // Built once per collection (the id is bound per record).
        let (sql, _) = Query::select()
            .columns(file_fields.iter().map(|f| Alias::new(*f)))
            .from(Alias::new(&c.name))
            .and_where(Expr::col(Alias::new("id")).eq(""))
            .build(SqliteQueryBuilder);
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let record_id = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type()?.is_dir() {
                remove_file_if_old(&entry.path(), before, &mut out);
                continue;
            }
            out.records += 1;
            let names: HashSet<String> =
                db::query_sql(&conn, &sql, vec![record_id.into()], |row| {
                    let mut names = HashSet::new();
                    for i in 0..file_fields.len() {
                        let v: Option<String> = row.try_get_by_index(i)?;
                        names.extend(stored_names(v.as_deref().unwrap_or("")));
                    }
                    Ok(names)
                })
                .map_err(io::Error::other)?
                .into_iter()
                .next()
                .unwrap_or_default();
            sweep_record_dir(&entry.path(), &names, before, &mut out)?;
        }
    }
    Ok(out)
}

/// The file names a file column holds: one name, or a JSON array of names.
fn stored_names(v: &str) -> Vec<String> {
    let v = v.trim();
    if v.starts_with('[') {
        serde_json::from_str::<Vec<String>>(v).unwrap_or_default()
    } else if v.is_empty() {
        vec![]
    } else {
        vec![v.to_string()]
    }
}

fn sweep_record_dir(
    dir: &Path,
    names: &HashSet<String>,
    before: SystemTime,
    out: &mut Swept,
) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            // `thumbs_<file>/`: kept while <file> is named by the record
            let keep = name
                .strip_prefix("thumbs_")
                .is_some_and(|file| names.contains(file));
            if !keep {
                for thumb in std::fs::read_dir(&path)? {
                    remove_file_if_old(&thumb?.path(), before, out);
                }
                remove_dir_if_empty(&path, out);
            }
        } else if !names.contains(&name) {
            remove_file_if_old(&path, before, out);
        }
    }
    remove_dir_if_empty(dir, out);
    Ok(())
}

fn remove_file_if_old(path: &Path, before: SystemTime, out: &mut Swept) {
    let old = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t < before);
    if old {
        match std::fs::remove_file(path) {
            Ok(()) => out.files += 1,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "storage sweep: could not remove")
            }
        }
    }
}

fn remove_dir_if_empty(path: &Path, out: &mut Swept) {
    // fails (harmlessly) while the folder holds anything
    if std::fs::remove_dir(path).is_ok() {
        out.dirs += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn removes_what_no_record_names_and_only_what_is_older_than_the_start() {
        let tmp = std::env::temp_dir().join(format!("fb-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let storage = tmp.join("storage");
        let db_path = tmp.join("data.db");
        std::fs::create_dir_all(&storage).unwrap();
        let (c, errs) = Collection::from_json(&json!({
            "id": "pbc_docs", "name": "docs", "type": "base",
            "fields": [
                {"name": "id", "type": "text", "primaryKey": true},
                {"name": "one", "type": "file", "maxSelect": 1},
                {"name": "many", "type": "file", "maxSelect": 5}
            ]
        }))
        .unwrap();
        assert!(errs.is_empty());
        let conn = Conn::open_standalone(&db_path, true).unwrap();
        conn.execute_batch(
            "CREATE TABLE docs (id TEXT PRIMARY KEY, one TEXT, many TEXT);
             INSERT INTO docs VALUES ('r1', 'a.txt', '[\"b.txt\",\"c.txt\"]');
             INSERT INTO docs VALUES ('r2', '', '[]');",
        )
        .unwrap();
        let put = |rel: &str| {
            let p = storage.join("pbc_docs").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"x").unwrap();
        };
        for rel in [
            "r1/a.txt",
            "r1/b.txt",
            "r1/c.txt",
            "r1/thumbs_a.txt/10x10_a.txt",
            "r1/stale.txt",
            "r1/half.fbtmp",
            "r1/thumbs_gone.txt/10x10_gone.txt",
            "r2/orphan.txt",
            "r3/of-a-missing-record.txt",
        ] {
            put(rel);
        }
        // the start is "now": nothing written later than it is touched
        std::thread::sleep(Duration::from_millis(20));
        let start = SystemTime::now();
        std::thread::sleep(Duration::from_millis(20));
        put("r4/written-after-the-start.txt");

        let swept = run(&db_path, &storage, &[Arc::new(c)], start).unwrap();
        let exists = |rel: &str| storage.join("pbc_docs").join(rel).exists();
        for kept in [
            "r1/a.txt",
            "r1/b.txt",
            "r1/c.txt",
            "r1/thumbs_a.txt/10x10_a.txt",
            "r4/written-after-the-start.txt",
        ] {
            assert!(exists(kept), "{kept} was removed");
        }
        for gone in [
            "r1/stale.txt",
            "r1/half.fbtmp",
            "r1/thumbs_gone.txt",
            "r2",
            "r3",
        ] {
            assert!(!exists(gone), "{gone} is still there");
        }
        assert_eq!(swept.files, 5);
        assert_eq!(swept.dirs, 3);
        assert_eq!(swept.records, 4);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
