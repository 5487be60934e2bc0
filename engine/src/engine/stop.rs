//! The engine's stop: connections first, then the recorders, then the
//! catalog. Each step is bounded, so a step that hangs cannot keep the
//! panel from exiting (and starting again); the next start repairs
//! whatever a step left open, as after a crash.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::timeout;
use tracing::{error, info};

use super::Engine;

/// How long a stopping engine waits for the catalog to take queued writes.
const SHUTDOWN_WRITES: Duration = Duration::from_secs(20);
/// How long a stopping engine waits for each other step of its stop.
const SHUTDOWN_STEP: Duration = Duration::from_secs(15);

/// Runs `step` for at most [`SHUTDOWN_STEP`]; says so if it did not end.
async fn bounded(what: &str, step: impl Future) {
    if timeout(SHUTDOWN_STEP, step).await.is_err() {
        error!(
            "{what} did not end within {} s; stopping without it (the next start repairs what it left open)",
            SHUTDOWN_STEP.as_secs()
        );
    }
}

impl Engine {
    /// Stops everything: connections close, open segments are finished as
    /// complete, the catalog is closed.
    pub async fn shutdown(&self) {
        info!("panel engine stopping");
        let shared = &self.shared;
        shared.shutdown.cancel();
        // Panoramas being made stop now (their worker is killed) and say so.
        for (cancel, _) in crate::sync::lock(&shared.panorama_jobs).values() {
            cancel.store(true, Ordering::Release);
        }
        shared.tasks.close();
        // Connections end first, so no frame arrives after the recorders
        // stop; then the recorders' last catalog writes finish before the
        // catalog closes.
        let running = shared.tasks.len();
        bounded(
            &format!("the connections and background tasks ({running} running)"),
            shared.tasks.wait(),
        )
        .await;
        bounded(
            "finishing the recorders' segments",
            shared.recorders.stop_all(),
        )
        .await;
        bounded("the recorders' last tasks", shared.tasks.wait()).await;
        if !shared.writes.flush(SHUTDOWN_WRITES).await {
            error!(
                waiting = shared.writes.pending(),
                "the catalog did not take the last writes in time; the next start repairs the recordings"
            );
        }
        bounded(
            "marking this server stopped",
            shared.catalog.stop_server(crate::time::now_us()),
        )
        .await;
        bounded("closing the catalog", shared.catalog.close()).await;
        info!("panel engine stopped");
    }
}
