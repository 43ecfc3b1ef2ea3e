//! The scheduler: cron jobs of the core and of plugins on one clock (UTC), listed and run on
//! demand through `/api/crons`. A job's runs never overlap (a run still going when the next
//! is due skips that one); failures and panics are logged and the job stays scheduled.

use std::str::FromStr as _;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Mutex;

/// A parsed cron expression: five fields (minute hour day-of-month month day-of-week) or a
/// macro (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`),
/// as PocketBase accepts them.
pub fn parse(expr: &str) -> Result<croner::Cron, String> {
    let e = expr.trim();
    let expanded = match e {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    if expanded.split_whitespace().count() != 5 {
        return Err(format!(
            "{expr:?} is not a cron expression of five fields (minute hour day month weekday) or a macro such as @daily"
        ));
    }
    croner::Cron::from_str(expanded).map_err(|e| format!("{expr:?}: {e}"))
}

/// The work of a job.
pub type Work =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A scheduled job.
#[derive(Clone)]
pub struct Job {
    pub id: String,
    pub expression: String,
    schedule: croner::Cron,
    work: Work,
    running: Arc<Mutex<()>>,
}

impl Job {
    pub fn new(id: &str, expression: &str, work: Work) -> Result<Job, String> {
        Ok(Job {
            id: id.to_string(),
            expression: expression.to_string(),
            schedule: parse(expression)?,
            work,
            running: Arc::default(),
        })
    }

    /// Runs the job now unless a run is going on (then `false`).
    pub async fn run_now(&self) -> bool {
        let Ok(_guard) = self.running.try_lock() else {
            tracing::info!(job = %self.id, "cron job still running; this run is skipped");
            return false;
        };
        let started = std::time::Instant::now();
        match std::panic::AssertUnwindSafe((self.work)())
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => {
                tracing::debug!(job = %self.id, ms = started.elapsed().as_millis() as u64, "cron job done")
            }
            Ok(Err(e)) => tracing::warn!(job = %self.id, error = %e, "cron job failed"),
            Err(_) => tracing::error!(job = %self.id, "cron job panicked"),
        }
        true
    }
}

/// The scheduler's jobs (cheap to clone).
#[derive(Clone, Default)]
pub struct Scheduler {
    jobs: Arc<std::sync::RwLock<Vec<Job>>>,
}

impl Scheduler {
    /// Adds a job (a job with the same id is replaced).
    pub fn add(&self, job: Job) {
        let mut g = match self.jobs.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.retain(|j| j.id != job.id);
        g.push(job);
    }

    /// Every job, in the order added.
    pub fn jobs(&self) -> Vec<Job> {
        match self.jobs.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.jobs().into_iter().find(|j| j.id == id)
    }

    /// Starts one task per job, each sleeping until its next occurrence.
    pub fn start(&self) {
        for job in self.jobs() {
            tokio::spawn(async move {
                loop {
                    let now = chrono::Utc::now();
                    let Ok(next) = job.schedule.find_next_occurrence(&now, false) else {
                        tracing::warn!(job = %job.id, "cron job has no next run; stopped");
                        return;
                    };
                    let wait = (next - now).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    let j = job.clone();
                    // A run of its own, so a long run never delays the next due time.
                    tokio::spawn(async move {
                        j.run_now().await;
                    });
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_and_macros() {
        assert!(parse("*/5 * * * *").is_ok());
        assert!(parse("@daily").is_ok());
        assert!(parse("0 */6 * * *").is_ok());
        assert!(parse("* * * *").is_err());
        assert!(parse("61 * * * *").is_err());
        assert!(parse("0 0 * * * *").is_err());
    }
}
