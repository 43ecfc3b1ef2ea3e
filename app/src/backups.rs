//! Backups of the data directory (`/api/backups`, the `__pbAutoBackup__` cron job): zip
//! archives in `<data dir>/backups`, in PocketBase's layout (the data directory's contents at
//! the archive's root: `data.db`, `auxiliary.db`, `storage/…`), so a backup of either opens in
//! the other.
//!
//! **Creating** never stops writes. Each database is copied with SQLite's online backup API in
//! one step, which reads a single snapshot (under WAL a reader never blocks the writer), into a
//! temporary file; then the stored files are added. The file cleaner (which removes files of
//! deleted or changed records after their commit) is held for the whole backup, so every file
//! the database snapshot references is still there when the files are copied. The archive is
//! written as `backups/.tmp_<name>`, flushed to disk, then renamed: a listed backup is always
//! complete.
//!
//! **Restoring** happens in two steps, so that a crash at any point leaves either the old or
//! the new data, never a mix:
//! 1. [`stage_restore`] (while serving): the archive is checked (it must hold a `data.db` that
//!    passes `PRAGMA integrity_check`) and extracted into `<dir>/.restore_tmp`, which is then
//!    renamed to `<dir>/.restore_pending` (the marker that a restore is due). The server then
//!    stops and re-executes itself.
//! 2. [`finish_pending_restore`] (at start, before anything opens the database): everything in
//!    the data directory but `backups/` moves into `<dir>/.restore_old`, a marker file records
//!    that this is complete, the staged entries move in, and the staging and old folders are
//!    removed. Started again after a crash, it resumes from the step it was in.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

/// Folder of the backups, inside the data directory.
pub const DIR: &str = "backups";
/// Staged restore, complete and checked (its presence at start means "restore now").
const PENDING: &str = ".restore_pending";
/// A restore being extracted.
const STAGING: &str = ".restore_tmp";
/// The replaced data, removed once a restore has finished.
const OLD: &str = ".restore_old";
/// Written into [`OLD`] once every old entry has moved there.
const MOVED_OUT: &str = ".moved_out";
/// Prefix of the archives the scheduled job makes (PocketBase's).
pub const AUTO_PREFIX: &str = "@auto_pb_backup_";

/// Errors of the backups layer.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The name is not a valid backup key.
    #[error("invalid backup name")]
    InvalidName,
    #[error("backup not found")]
    NotFound,
    #[error("a backup with this name already exists")]
    Exists,
    /// Another backup or restore is in progress.
    #[error("another backup or restore is in progress; try again later")]
    Busy,
    /// The archive is not a usable backup (the message says why).
    #[error("{0}")]
    Invalid(String),
    #[error("sqlite: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("zip: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Checks a backup key: PocketBase's rule (`^[\w-]+\.zip$`, at most 150 characters), and
/// `@` allowed first for the scheduled backups' names. Never a path.
pub fn valid_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".zip") else {
        return false;
    };
    let stem = stem.strip_prefix('@').unwrap_or(stem);
    !stem.is_empty()
        && name.len() <= 150
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A backup name as PocketBase makes them: `<prefix><app name in snake case>_<UTC time>.zip`
/// (`pb_backup_` for a backup made on request, [`AUTO_PREFIX`] for the scheduled ones).
pub fn generated_name(prefix: &str, app_name: &str) -> String {
    let mut snake = String::new();
    for c in app_name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && !snake.is_empty() && !snake.ends_with('_') {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else if !snake.is_empty() && !snake.ends_with('_') {
            snake.push('_');
        }
    }
    let snake: String = snake.trim_end_matches('_').chars().take(50).collect();
    format!(
        "{prefix}{snake}_{}.zip",
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    )
}

/// The backups of one data directory, and the lock that keeps their operations apart.
#[derive(Clone)]
pub struct Backups {
    data_dir: PathBuf,
    /// Held by a create, upload or restore: one at a time.
    busy: Arc<tokio::sync::Mutex<()>>,
    /// The name of the archive being written, if any (it cannot be deleted meanwhile).
    current: Arc<std::sync::Mutex<Option<String>>>,
}

/// What `/api/backups` lists for each archive.
pub fn entry_json(name: &str, meta: &std::fs::Metadata) -> Value {
    let modified: chrono::DateTime<chrono::Utc> = meta
        .modified()
        .map(Into::into)
        .unwrap_or_else(|_| chrono::Utc::now());
    json!({
        "key": name,
        "size": meta.len(),
        "modified": crate::schema::ids::format_datetime(modified),
    })
}

impl Backups {
    pub fn new(data_dir: PathBuf) -> Backups {
        Backups {
            data_dir,
            busy: Arc::default(),
            current: Arc::default(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.data_dir.join(DIR)
    }

    /// The path of the backup `name` (checked; it need not exist).
    pub fn path(&self, name: &str) -> Result<PathBuf, BackupError> {
        if !valid_name(name) {
            return Err(BackupError::InvalidName);
        }
        Ok(self.dir().join(name))
    }

    /// The backups, by key (PocketBase's order).
    pub fn list(&self) -> Result<Vec<(String, std::fs::Metadata)>, BackupError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(self.dir()) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for entry in rd {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let meta = entry.metadata()?;
            if meta.is_file() && valid_name(&name) {
                out.push((name, meta));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Takes the operations lock, or [`BackupError::Busy`] if another operation holds it.
    pub fn try_lock(&self) -> Result<tokio::sync::OwnedMutexGuard<()>, BackupError> {
        self.busy
            .clone()
            .try_lock_owned()
            .map_err(|_| BackupError::Busy)
    }

    /// Whether no backup operation is running.
    pub fn is_idle(&self) -> bool {
        self.busy.try_lock().is_ok()
    }

    /// Deletes a backup; refused while it is being written.
    pub fn delete(&self, name: &str) -> Result<(), BackupError> {
        let path = self.path(name)?;
        if self.current_name().as_deref() == Some(name) {
            return Err(BackupError::Busy);
        }
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BackupError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    fn current_name(&self) -> Option<String> {
        match self.current.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_current(&self, name: Option<String>) {
        match self.current.lock() {
            Ok(mut g) => *g = name,
            Err(p) => *p.into_inner() = name,
        }
    }

    /// Writes the backup `name` (blocking: run it on a blocking thread). The caller holds
    /// the operations lock and the cleaner's hold.
    pub fn create_blocking(&self, name: &str) -> Result<u64, BackupError> {
        let target = self.path(name)?;
        if target.exists() {
            return Err(BackupError::Exists);
        }
        std::fs::create_dir_all(self.dir())?;
        self.set_current(Some(name.to_string()));
        let res = self.write_archive(name, &target);
        self.set_current(None);
        res
    }

    fn write_archive(&self, name: &str, target: &Path) -> Result<u64, BackupError> {
        let tmp = self.dir().join(format!(".tmp_{name}"));
        let snap_dir = self.dir().join(format!(".tmp_{name}.d"));
        let result = (|| {
            std::fs::create_dir_all(&snap_dir)?;
            let file = std::fs::File::create(&tmp)?;
            let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true);
            // The databases first (their snapshots), then everything else the data
            // directory holds but the backups, temporary files and SQLite's own side files.
            for db in ["data.db", "auxiliary.db"] {
                let src = self.data_dir.join(db);
                if !src.exists() {
                    continue;
                }
                let snap = snap_dir.join(db);
                snapshot_db(&src, &snap)?;
                zip.start_file(db, opts)?;
                std::io::copy(&mut std::fs::File::open(&snap)?, &mut zip)?;
                std::fs::remove_file(&snap)?;
            }
            let mut stack = vec![(self.data_dir.clone(), String::new())];
            while let Some((dir, prefix)) = stack.pop() {
                let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
                entries.sort_by_key(|e| e.file_name());
                for e in entries {
                    let Some(fname) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    let rel = format!("{prefix}{fname}");
                    if prefix.is_empty() && skipped_at_root(&fname) {
                        continue;
                    }
                    let ft = e.file_type()?;
                    if ft.is_dir() {
                        zip.add_directory(format!("{rel}/"), opts)?;
                        stack.push((e.path(), format!("{rel}/")));
                    } else if ft.is_file() {
                        // A file removed meanwhile (not one the snapshot references: the
                        // cleaner is held) is left out.
                        let mut f = match std::fs::File::open(e.path()) {
                            Ok(f) => f,
                            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(err) => return Err(err.into()),
                        };
                        zip.start_file(rel, opts)?;
                        std::io::copy(&mut f, &mut zip)?;
                    }
                }
            }
            let mut w = zip.finish()?;
            w.flush()?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            let size = file.metadata()?.len();
            std::fs::rename(&tmp, target)?;
            sync_dir(&self.dir());
            Ok(size)
        })();
        let _ = std::fs::remove_dir_all(&snap_dir);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Saves an uploaded archive as `name` after checking it (blocking). `src` is a temporary
    /// file in the backups folder; it is renamed, never copied.
    pub fn accept_upload_blocking(&self, name: &str, src: &Path) -> Result<(), BackupError> {
        let target = self.path(name)?;
        if target.exists() {
            return Err(BackupError::Exists);
        }
        let f = std::fs::File::open(src)?;
        check_archive(f)?;
        std::fs::File::open(src)?.sync_all()?;
        std::fs::rename(src, &target)?;
        sync_dir(&self.dir());
        Ok(())
    }

    /// A temporary path in the backups folder for an upload.
    pub fn upload_tmp(&self) -> Result<PathBuf, BackupError> {
        std::fs::create_dir_all(self.dir())?;
        Ok(self.dir().join(format!(
            ".upload_{}",
            crate::schema::ids::random_alphanumeric(12)
        )))
    }

    /// Step 1 of a restore (blocking): checks the archive `name` and stages its contents as
    /// the pending restore. The server must stop and start again for step 2.
    pub fn stage_restore_blocking(&self, name: &str) -> Result<(), BackupError> {
        let path = self.path(name)?;
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::NotFound);
            }
            Err(e) => return Err(e.into()),
        };
        let staging = self.data_dir.join(STAGING);
        let pending = self.data_dir.join(PENDING);
        let _ = std::fs::remove_dir_all(&staging);
        let _ = std::fs::remove_dir_all(&pending);
        std::fs::create_dir_all(&staging)?;
        let res = (|| {
            extract(file, &staging)?;
            check_database(&staging.join("data.db"))?;
            sync_tree(&staging)?;
            std::fs::rename(&staging, &pending)?;
            sync_dir(&self.data_dir);
            Ok(())
        })();
        if res.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        res
    }
}

/// Entries of the data directory's root that a backup leaves out.
fn skipped_at_root(name: &str) -> bool {
    matches!(
        name,
        DIR | PENDING | STAGING | OLD | "data.db" | "auxiliary.db"
    ) || name.ends_with("-wal")
        || name.ends_with("-shm")
        || name.ends_with("-journal")
        || name.starts_with(".tmp")
}

/// Copies the database at `src` into a new file `dst` from one read snapshot.
fn snapshot_db(src: &Path, dst: &Path) -> Result<(), BackupError> {
    crate::db::snapshot_file(src, dst)?;
    Ok(())
}

/// Checks that a file is a backup archive holding a `data.db` and no entry that would land
/// outside the data directory.
pub fn check_archive(r: impl Read + Seek) -> Result<(), BackupError> {
    let mut zip = zip::ZipArchive::new(r)
        .map_err(|_| BackupError::Invalid("the file is not a zip archive".into()))?;
    let mut has_db = false;
    for i in 0..zip.len() {
        let f = zip.by_index(i)?;
        if f.enclosed_name().is_none() {
            return Err(BackupError::Invalid(format!(
                "the archive holds an unsafe path {:?}",
                f.name().unwrap_or_default()
            )));
        }
        has_db |= f.name().is_ok_and(|n| n == "data.db");
    }
    if !has_db {
        return Err(BackupError::Invalid(
            "the archive holds no data.db at its root".into(),
        ));
    }
    Ok(())
}

/// Extracts an archive into `dir` (paths checked; nothing outside `dir` is written).
fn extract(r: impl Read + Seek, dir: &Path) -> Result<(), BackupError> {
    check_archive_and(r, |zip| {
        for i in 0..zip.len() {
            let mut f = zip.by_index(i)?;
            let Some(rel) = f.enclosed_name() else {
                continue;
            };
            // The archive's own backups folder is never restored over the live one.
            if rel
                .components()
                .next()
                .is_some_and(|c| c.as_os_str() == DIR)
            {
                continue;
            }
            let out = dir.join(rel);
            if f.is_dir() {
                std::fs::create_dir_all(&out)?;
                continue;
            }
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p)?;
            }
            let mut w = std::fs::File::create(&out)?;
            std::io::copy(&mut f, &mut w)?;
        }
        Ok(())
    })
}

fn check_archive_and<R: Read + Seek>(
    mut r: R,
    f: impl FnOnce(&mut zip::ZipArchive<R>) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    check_archive(&mut r)?;
    r.rewind()?;
    let mut zip = zip::ZipArchive::new(r)?;
    f(&mut zip)
}

/// Opens an extracted `data.db` and runs `PRAGMA integrity_check` on it.
fn check_database(path: &Path) -> Result<(), BackupError> {
    let conn = crate::db::Conn::open_standalone(path, true)
        .map_err(|_| BackupError::Invalid("the archive's data.db cannot be opened".into()))?;
    let verdict: String = crate::db::query_sql(&conn, "PRAGMA integrity_check", vec![], |r| {
        Ok(r.try_get_by_index::<String>(0)?)
    })
    .ok()
    .and_then(|v| v.into_iter().next())
    .ok_or_else(|| BackupError::Invalid("the archive's data.db is not a SQLite database".into()))?;
    if verdict != "ok" {
        return Err(BackupError::Invalid(format!(
            "the archive's data.db fails the integrity check: {verdict}"
        )));
    }
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Flushes every file and folder under `dir` to disk.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            sync_tree(&e.path())?;
        } else {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    sync_dir(dir);
    Ok(())
}

/// Step 2 of a restore, at start before the database opens: if a restore is pending, swaps
/// it in (resuming a swap a crash interrupted). Returns whether a restore was finished.
pub fn finish_pending_restore(data_dir: &Path) -> std::io::Result<bool> {
    let pending = data_dir.join(PENDING);
    let old = data_dir.join(OLD);
    if !pending.is_dir() {
        // A finished restore's leftovers, or an abandoned staging folder.
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        let staging = data_dir.join(STAGING);
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        return Ok(false);
    }
    let moved_out = old.join(MOVED_OUT);
    if !moved_out.exists() {
        std::fs::create_dir_all(&old)?;
        for e in std::fs::read_dir(data_dir)? {
            let e = e?;
            let name = e.file_name();
            let Some(n) = name.to_str() else { continue };
            if matches!(n, DIR | PENDING | OLD) {
                continue;
            }
            std::fs::rename(e.path(), old.join(&name))?;
        }
        sync_dir(&old);
        std::fs::File::create(&moved_out)?.sync_all()?;
        sync_dir(&old);
        sync_dir(data_dir);
    }
    for e in std::fs::read_dir(&pending)? {
        let e = e?;
        let target = data_dir.join(e.file_name());
        if target.exists() {
            // Moved in before a crash, then staged again? Never: the staged entry wins.
            if target.is_dir() {
                std::fs::remove_dir_all(&target)?;
            } else {
                std::fs::remove_file(&target)?;
            }
        }
        std::fs::rename(e.path(), &target)?;
    }
    sync_dir(data_dir);
    std::fs::remove_dir(&pending)?;
    sync_dir(data_dir);
    std::fs::remove_dir_all(&old)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("pb_backup_20250101.zip"));
        assert!(valid_name("@auto_pb_backup_acme_20250101.zip"));
        assert!(valid_name("a-b_C.zip"));
        for bad in [
            "../x.zip",
            "x.tar",
            ".zip",
            "a b.zip",
            "a/b.zip",
            ".tmp_x.zip",
            "@.zip",
            "a@b.zip",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name(&generated_name("pb_backup_", "Acme")));
        let n = generated_name(AUTO_PREFIX, "My Acme App");
        assert!(n.starts_with("@auto_pb_backup_my_acme_app_"), "{n}");
        assert!(valid_name(&n));
        assert!(valid_name(&generated_name(AUTO_PREFIX, "")));
    }

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    /// A swap interrupted after the old data moved out (marker written) and after one of the
    /// staged entries moved in resumes to the staged data only.
    #[test]
    fn an_interrupted_swap_resumes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        write(&dir.join(OLD).join("data.db"), "old");
        write(&dir.join(OLD).join("storage/c/r/old.txt"), "old");
        write(&dir.join(OLD).join(MOVED_OUT), "");
        write(&dir.join("data.db"), "new"); // moved in before the crash
        write(&dir.join(PENDING).join("storage/c/r/new.txt"), "new");
        write(&dir.join(DIR).join("b.zip"), "zip");
        assert!(finish_pending_restore(dir).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("data.db")).unwrap(), "new");
        assert!(dir.join("storage/c/r/new.txt").exists());
        assert!(!dir.join("storage/c/r/old.txt").exists());
        assert!(dir.join(DIR).join("b.zip").exists());
        assert!(!dir.join(OLD).exists() && !dir.join(PENDING).exists());
        // Nothing pending: nothing happens.
        assert!(!finish_pending_restore(dir).unwrap());
    }

    /// A swap interrupted while moving the old data out moves the rest out first.
    #[test]
    fn an_interrupted_move_out_resumes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        write(&dir.join(OLD).join("data.db"), "old");
        write(&dir.join("data.db-wal"), "old wal");
        write(&dir.join("auxiliary.db"), "old aux");
        write(&dir.join(PENDING).join("data.db"), "new");
        assert!(finish_pending_restore(dir).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("data.db")).unwrap(), "new");
        assert!(!dir.join("data.db-wal").exists());
        assert!(!dir.join("auxiliary.db").exists());
    }

    #[test]
    fn archives_without_data_db_or_with_unsafe_paths_are_refused() {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            z.start_file("../evil", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(b"x").unwrap();
            z.start_file("data.db", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.finish().unwrap();
        }
        buf.rewind().unwrap();
        assert!(
            matches!(check_archive(&mut buf), Err(BackupError::Invalid(m)) if m.contains("unsafe"))
        );
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut z = zip::ZipWriter::new(&mut buf);
            z.start_file("x.txt", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.finish().unwrap();
        }
        buf.rewind().unwrap();
        assert!(
            matches!(check_archive(&mut buf), Err(BackupError::Invalid(m)) if m.contains("data.db"))
        );
        assert!(check_archive(std::io::Cursor::new(b"not a zip".to_vec())).is_err());
    }
}
