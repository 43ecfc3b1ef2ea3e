//! File storage: where uploaded files live, how they are named, and cleaning up after
//! records change. The API side (upload parsing, serving, thumbnails, file tokens) is in
//! `api/files.rs`.

pub mod names;
pub mod sweep;
pub mod thumbs;

use std::io;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

use crate::records::{Action, Change};
use crate::schema::FieldKind;

/// Where files are kept. Keys are `/`-separated relative paths built by Ferrobase
/// (`{collectionId}/{recordId}/{filename}`), never taken from a request unchecked.
///
/// Reads return the whole file for storage backends without local paths; the local backend
/// also exposes a path so responses can stream it with range support.
pub trait Storage: Send + Sync {
    fn put<'a>(&'a self, key: &'a str, data: Bytes) -> BoxFuture<'a, io::Result<()>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<Bytes>>>;
    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<()>>;
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// The local path of a key, for backends on the local file system.
    fn local_path(&self, key: &str) -> Option<PathBuf>;
    /// Removes the folder of `key` if it is empty (after discarding staged uploads).
    fn prune<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
}

/// Files under a local directory (`<data dir>/storage`).
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> LocalStorage {
        LocalStorage { root }
    }

    /// Maps a key to a path inside the root; keys with `..`, absolute parts or empty
    /// segments are refused.
    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let rel = Path::new(key);
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0'])
            })
            && rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid storage key",
            ));
        }
        Ok(self.root.join(rel))
    }
}

impl Storage for LocalStorage {
    fn put<'a>(&'a self, key: &'a str, data: Bytes) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let path = self.path(key)?;
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            // Write to a temporary name and rename, so readers never see half a file.
            let tmp = path.with_extension("fbtmp");
            tokio::fs::write(&tmp, &data).await?;
            tokio::fs::rename(&tmp, &path).await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<Bytes>>> {
        Box::pin(async move {
            match tokio::fs::read(self.path(key)?).await {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn delete_prefix<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_dir_all(self.path(prefix)?).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)?).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn prune<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Ok(path) = self.path(key)
                && let Some(dir) = path.parent()
            {
                // Fails (harmlessly) when the folder still holds files.
                let _ = tokio::fs::remove_dir(dir).await;
            }
        })
    }
}

/// The key of a stored file.
pub fn key(collection_id: &str, record_id: &str, name: &str) -> String {
    format!("{collection_id}/{record_id}/{name}")
}

/// The key of a file's thumbnail.
pub fn thumb_key(collection_id: &str, record_id: &str, name: &str, thumb: &str) -> String {
    format!("{collection_id}/{record_id}/thumbs_{name}/{thumb}_{name}")
}

/// File names a record holds in its file fields.
pub fn file_names(change: &Change) -> Vec<String> {
    names_of(&change.collection, &change.record.data)
}

fn names_of(
    c: &crate::schema::Collection,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    let mut out = Vec::new();
    for f in &c.fields {
        if !matches!(f.kind, FieldKind::File { .. }) {
            continue;
        }
        match data.get(&f.name) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => out.push(s.clone()),
            Some(serde_json::Value::Array(a)) => {
                out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string)))
            }
            _ => {}
        }
    }
    out
}

/// What to remove from storage after a commit.
#[derive(Debug, Clone)]
pub enum Cleanup {
    /// A deleted record: its whole folder.
    Record {
        collection_id: String,
        record_id: String,
    },
    /// Files a record no longer references (with their thumbnails).
    Files {
        collection_id: String,
        record_id: String,
        names: Vec<String>,
    },
}

/// Removes files after commits, off the writer thread.
#[derive(Clone)]
pub struct Cleaner {
    tx: mpsc::UnboundedSender<Vec<Cleanup>>,
    /// Held (written) while a backup runs: removals wait, so every file a backup's database
    /// snapshot references is still there when the backup copies the files.
    hold: std::sync::Arc<tokio::sync::RwLock<()>>,
}

impl Cleaner {
    pub fn start(storage: std::sync::Arc<dyn Storage>) -> Cleaner {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Cleanup>>();
        let hold = std::sync::Arc::new(tokio::sync::RwLock::new(()));
        let held = hold.clone();
        tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                let _guard = held.read().await;
                for c in batch {
                    let res = match &c {
                        Cleanup::Record {
                            collection_id,
                            record_id,
                        } => {
                            storage
                                .delete_prefix(&format!("{collection_id}/{record_id}"))
                                .await
                        }
                        Cleanup::Files {
                            collection_id,
                            record_id,
                            names,
                        } => {
                            let mut r = Ok(());
                            for n in names {
                                if let Err(e) =
                                    storage.delete(&key(collection_id, record_id, n)).await
                                {
                                    r = Err(e);
                                }
                                let _ = storage
                                    .delete_prefix(&format!(
                                        "{collection_id}/{record_id}/thumbs_{n}"
                                    ))
                                    .await;
                            }
                            r
                        }
                    };
                    if let Err(e) = res {
                        tracing::warn!(error = %e, cleanup = ?c, "could not remove stored files");
                    }
                }
            }
        });
        Cleaner { tx, hold }
    }

    /// Holds every removal until the guard is dropped (a removal under way finishes first).
    pub async fn hold(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.hold.clone().write_owned().await
    }

    pub fn send(&self, batch: Vec<Cleanup>) {
        if !batch.is_empty() {
            let _ = self.tx.send(batch);
        }
    }

    /// The cleanups that committed changes call for; `previous` holds the records as they
    /// were before updates.
    pub fn plan(changes: &[Change], previous: &[(String, Vec<String>)]) -> Vec<Cleanup> {
        let mut out = Vec::new();
        for ch in changes {
            let has_files = ch
                .collection
                .fields
                .iter()
                .any(|f| matches!(f.kind, FieldKind::File { .. }));
            if !has_files {
                continue;
            }
            match ch.action {
                Action::Delete => out.push(Cleanup::Record {
                    collection_id: ch.collection.id.clone(),
                    record_id: ch.record.id().to_string(),
                }),
                Action::Update => {
                    let now = file_names(ch);
                    if let Some((_, before)) = previous.iter().find(|(id, _)| id == ch.record.id())
                    {
                        let gone: Vec<String> = before
                            .iter()
                            .filter(|n| !now.contains(n))
                            .cloned()
                            .collect();
                        if !gone.is_empty() {
                            out.push(Cleanup::Files {
                                collection_id: ch.collection.id.clone(),
                                record_id: ch.record.id().to_string(),
                                names: gone,
                            });
                        }
                    }
                }
                Action::Create => {}
            }
        }
        out
    }
}

/// File names of a record, for [`Cleaner::plan`].
pub fn names_before(
    c: &crate::schema::Collection,
    r: &crate::records::Record,
) -> (String, Vec<String>) {
    (r.id().to_string(), names_of(c, &r.data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        let s = LocalStorage::new(PathBuf::from("/tmp/fb-root"));
        assert!(s.path("a/b/c.txt").is_ok());
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\..\\b",
        ] {
            assert!(s.path(bad).is_err(), "{bad}");
        }
    }
}
