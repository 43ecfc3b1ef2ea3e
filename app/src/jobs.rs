//! The core's cron jobs, on the same scheduler as the plugins' ([`crate::cron`]), with
//! PocketBase's ids and schedules:
//!
//! | id | schedule | work |
//! |---|---|---|
//! | `__pbLogsCleanup__` | `0 */6 * * *` | deletes request logs older than `logs.maxDays` |
//! | `__pbDBOptimize__` | `0 0 * * *` | `PRAGMA optimize` on both databases |
//! | `__pbMFACleanup__` | `0 * * * *` | deletes expired `_mfas` rows |
//! | `__pbOTPCleanup__` | `0 * * * *` | deletes expired `_otps` rows |
//! | `__pbAutoBackup__` | `backups.cron` | a backup named `@auto_pb_backup_<app>_<time>.zip`, then only the newest `backups.cronMaxKeep` of those are kept |
//!
//! The auto-backup job follows the settings: [`sync_auto_backup`] runs at start and after
//! every settings change.

use std::sync::Arc;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::App;
use crate::cron::{Job, Work};
use crate::db::{self, DbError};

pub const LOGS_CLEANUP: &str = "__pbLogsCleanup__";
pub const DB_OPTIMIZE: &str = "__pbDBOptimize__";
pub const MFA_CLEANUP: &str = "__pbMFACleanup__";
pub const OTP_CLEANUP: &str = "__pbOTPCleanup__";
pub const AUTO_BACKUP: &str = "__pbAutoBackup__";

fn work<F, Fut>(app: &App, f: F) -> Work
where
    F: Fn(App) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let app = app.clone();
    Arc::new(move || Box::pin(f(app.clone())))
}

fn add(app: &App, id: &str, expr: &str, w: Work) {
    match Job::new(id, expr, w) {
        Ok(job) => app.scheduler().add(job),
        Err(e) => tracing::error!(job = id, error = %e, "core cron job not scheduled"),
    }
}

/// Registers the core's jobs (before [`crate::cron::Scheduler::start`], or after: either works).
pub fn register(app: &App) {
    add(
        app,
        LOGS_CLEANUP,
        "0 */6 * * *",
        work(app, |app| async move {
            let days = app.settings().get()["logs"]["maxDays"]
                .as_i64()
                .unwrap_or(0);
            let n = app
                .logs()
                .cleanup(days, None)
                .await
                .map_err(|e| e.to_string())?;
            tracing::debug!(deleted = n, "old request logs deleted");
            Ok(())
        }),
    );
    add(
        app,
        DB_OPTIMIZE,
        "0 0 * * *",
        work(app, |app| async move {
            for db in [app.db(), app.logs().db()] {
                db.write(|conn| db::execute_ddl(conn, "PRAGMA optimize"))
                    .await
                    .map_err(|e: DbError| e.to_string())?;
            }
            Ok(())
        }),
    );
    add(
        app,
        MFA_CLEANUP,
        "0 * * * *",
        work(app, |app| async move {
            delete_expired(&app, Expiring::Mfas, |a| a.mfa.duration).await
        }),
    );
    add(
        app,
        OTP_CLEANUP,
        "0 * * * *",
        work(app, |app| async move {
            delete_expired(&app, Expiring::Otps, |a| a.otp.duration).await
        }),
    );
    sync_auto_backup(app);
}

/// Deletes the rows of `table` older than their auth collection's `duration` (seconds).
/// The system tables whose rows expire.
#[derive(Debug, Clone, Copy)]
enum Expiring {
    Mfas,
    Otps,
}

async fn delete_expired(
    app: &App,
    table: Expiring,
    duration: fn(&crate::schema::auth_options::AuthOptions) -> i64,
) -> Result<(), String> {
    let cutoffs: Vec<(String, String)> = app
        .collections()
        .snapshot()
        .all()
        .iter()
        .filter_map(|c| {
            let secs = Ord::max(duration(c.auth.as_ref()?), 1);
            let before = crate::schema::ids::format_datetime(
                chrono::Utc::now() - chrono::Duration::seconds(secs),
            );
            Some((c.id.clone(), before))
        })
        .collect();
    let n = app
        .db()
        .write(move |conn| {
            let mut n = 0;
            for (collection_id, before) in &cutoffs {
                n += match table {
                    Expiring::Mfas => {
                        use crate::db::entities::mfa::{Column, Entity};
                        Entity::delete_many()
                            .filter(Column::CollectionRef.eq(collection_id.as_str()))
                            .filter(Column::Created.lt(before.as_str()))
                            .exec(conn)?
                    }
                    Expiring::Otps => {
                        use crate::db::entities::otp::{Column, Entity};
                        Entity::delete_many()
                            .filter(Column::CollectionRef.eq(collection_id.as_str()))
                            .filter(Column::Created.lt(before.as_str()))
                            .exec(conn)?
                    }
                }
                .rows_affected;
            }
            Ok::<_, DbError>(n)
        })
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(?table, deleted = n, "expired rows deleted");
    Ok(())
}

/// After a settings change: the auto-backup schedule follows `backups.cron`, and, as
/// PocketBase does on every settings change, request logs older than `logs.maxDays` or below
/// `logs.minLevel` are deleted at once.
pub async fn settings_changed(app: &App) {
    sync_auto_backup(app);
    let s = app.settings().get();
    let days = s["logs"]["maxDays"].as_i64().unwrap_or(0);
    let min_level = s["logs"]["minLevel"].as_i64().unwrap_or(0);
    // What is still queued was logged under the old settings: in first, then judged.
    app.logs().flush().await;
    if let Err(e) = app.logs().cleanup(days, Some(min_level)).await {
        tracing::warn!(error = %e, "could not delete old request logs");
    }
}

/// Schedules `__pbAutoBackup__` from `backups.cron` (removes it when empty).
pub fn sync_auto_backup(app: &App) {
    let settings = app.settings().get();
    let expr = settings["backups"]["cron"].as_str().unwrap_or("").trim();
    if expr.is_empty() {
        app.scheduler().remove(AUTO_BACKUP);
        return;
    }
    if app
        .scheduler()
        .get(AUTO_BACKUP)
        .is_some_and(|j| j.expression == expr)
    {
        return;
    }
    add(
        app,
        AUTO_BACKUP,
        expr,
        work(app, |app| async move {
            let s = app.settings().get();
            let name = crate::backups::generated_name(
                crate::backups::AUTO_PREFIX,
                s["meta"]["appName"].as_str().unwrap_or(""),
            );
            crate::api::backups::create_backup(&app, Some(name))
                .await
                .map_err(|e| e.to_string())?;
            let keep = s["backups"]["cronMaxKeep"].as_u64().unwrap_or(0) as usize;
            if keep > 0 {
                let b = app.backups().clone();
                let mut list: Vec<_> = b
                    .list()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter(|(n, _)| n.starts_with(crate::backups::AUTO_PREFIX))
                    .collect();
                // newest first (the names end in their time): past `keep`, they go
                list.sort_by(|a, b| {
                    b.1.modified()
                        .ok()
                        .cmp(&a.1.modified().ok())
                        .then(b.0.cmp(&a.0))
                });
                for (name, _) in list.iter().skip(keep) {
                    if let Err(e) = b.delete(name) {
                        tracing::warn!(backup = %name, error = %e, "could not delete an old scheduled backup");
                    }
                }
            }
            Ok(())
        }),
    );
}
