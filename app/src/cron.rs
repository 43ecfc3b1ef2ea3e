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

/// The scheduler's jobs (cheap to clone). Jobs added or replaced after [`Scheduler::start`]
/// are scheduled at once; a replaced or removed job's timer stops (a run in progress
/// finishes).
#[derive(Clone, Default)]
pub struct Scheduler {
    inner: Arc<std::sync::RwLock<State>>,
}

#[derive(Default)]
struct State {
    jobs: Vec<(Job, Option<tokio::task::AbortHandle>)>,
    started: bool,
}

impl Scheduler {
    fn state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        match self.inner.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Adds a job (a job with the same id is replaced).
    pub fn add(&self, job: Job) {
        let mut st = self.state();
        Self::remove_locked(&mut st, &job.id);
        let timer = st.started.then(|| Self::spawn_timer(job.clone()));
        st.jobs.push((job, timer));
    }

    /// Removes the job `id` (nothing if there is none).
    pub fn remove(&self, id: &str) {
        Self::remove_locked(&mut self.state(), id);
    }

    fn remove_locked(st: &mut State, id: &str) {
        st.jobs.retain(|(j, timer)| {
            if j.id != id {
                return true;
            }
            if let Some(t) = timer {
                t.abort();
            }
            false
        });
    }

    /// Every job, in the order added.
    pub fn jobs(&self) -> Vec<Job> {
        let g = match self.inner.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.jobs.iter().map(|(j, _)| j.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.jobs().into_iter().find(|j| j.id == id)
    }

    /// Starts one timer task per job, each sleeping until its job's next occurrence.
    pub fn start(&self) {
        let mut st = self.state();
        if st.started {
            return;
        }
        st.started = true;
        for (job, timer) in &mut st.jobs {
            *timer = Some(Self::spawn_timer(job.clone()));
        }
    }

    fn spawn_timer(job: Job) -> tokio::task::AbortHandle {
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
                // A run of its own, so a long run never delays the next due time (and
                // removing the job does not cut a run short).
                tokio::spawn(async move {
                    j.run_now().await;
                });
            }
        })
        .abort_handle()
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
