//! The engine's housekeeping, every few seconds: the liveness beat, the
//! disk guard over both disks, and on its interval retention of recordings
//! and pruning of old events and refusals.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::{error, info, warn};

use super::Shared;
use crate::catalog::{CameraState, CatalogError};
use crate::live::EngineEvent;
use crate::recorder::retention::{self, RetentionReport};
use crate::time::now_us;

const DAY_US: i64 = 86_400_000_000;
/// How long retention tries again while the catalog is busy (another
/// connection writing: SQLite's busy snapshot is not waited out for us).
const BUSY_FOR: Duration = Duration::from_secs(10);

/// Retention of recordings, then of events and refused connections.
pub(super) async fn run_retention(shared: &Shared) -> Result<RetentionReport, CatalogError> {
    let limit = |v: u64| (v > 0).then_some(v as i64);
    let global = retention::Limits {
        max_bytes: limit(shared.config.retain_bytes),
        max_days: limit(shared.config.retain_days),
    };
    // Retention is idempotent: a pass cut short by a busy catalog is run
    // again.
    let started = std::time::Instant::now();
    let report = loop {
        match retention::enforce(
            &shared.catalog,
            &shared.config.recordings_dir,
            global,
            now_us(),
        )
        .await
        {
            Err(e) if crate::writes::transient(&e) && started.elapsed() < BUSY_FOR => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            done => break done?,
        }
    };
    loop {
        match prune_events(shared).await {
            Err(e) if crate::writes::transient(&e) && started.elapsed() < BUSY_FOR => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                warn!("cannot prune old events: {e}");
                break;
            }
            Ok(()) => break,
        }
    }
    Ok(report)
}

/// Forgets events and refused connections older than `events_retain_days`.
async fn prune_events(shared: &Shared) -> Result<(), CatalogError> {
    let days = shared.config.events_retain_days;
    if days == 0 {
        return Ok(());
    }
    let before = now_us().saturating_sub((days as i64).saturating_mul(DAY_US));
    let events = shared.catalog.prune_events(before).await?;
    let refusals = shared.catalog.prune_refusals(before).await?;
    if events + refusals > 0 {
        info!(
            events,
            refusals, days, "pruned events and refused connections past their keep"
        );
    }
    Ok(())
}

/// Free bytes on the file system holding `path`, and which file system.
pub(super) fn free_bytes(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    let s = rustix::fs::statvfs(path)?;
    Ok((s.f_bavail.saturating_mul(s.f_frsize), s.f_fsid))
}

/// Every few seconds: the liveness beat and the disk guard; retention on its interval.
pub(super) async fn housekeeping(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let retention_every = Duration::from_secs(shared.config.retention_interval_secs.max(1));
    let mut last_retention = tokio::time::Instant::now();
    let mut data_low = false;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = shared.catalog.beat(now_us()).await {
            warn!("cannot write the liveness beat: {e}");
        }
        // A SQLite catalog is one panel's: no other servers to look at.
        if shared.catalog.backend() == "postgres"
            && let Err(e) = other_servers_cameras(&shared).await
        {
            warn!("cannot read the other servers' cameras: {e}");
        }
        if last_retention.elapsed() >= retention_every {
            last_retention = tokio::time::Instant::now();
            if let Err(e) = run_retention(&shared).await {
                error!("retention failed: {e}");
            }
        }
        check_disk(&shared).await;
        check_data_disk(&shared, &mut data_low);
    }
}

/// The recordings disk: recording stops below `min_free_bytes` (after
/// retention had its chance) and resumes 10% above it.
async fn check_disk(shared: &Shared) {
    let min = shared.config.min_free_bytes;
    let free = match free_bytes(&shared.config.recordings_dir) {
        Ok((f, _)) => f,
        Err(e) => {
            warn!("cannot read free disk space: {e}");
            return;
        }
    };
    let full = shared.disk_full.load(Ordering::Acquire);
    if !full && free < min {
        // Retention may make room before recording has to stop.
        let _ = run_retention(shared).await;
        let free = free_bytes(&shared.config.recordings_dir).map_or(0, |f| f.0);
        if free < min {
            shared.disk_full.store(true, Ordering::Release);
            error!(
                free_bytes = free,
                min_free_bytes = min,
                "recording stopped: the recordings disk is nearly full"
            );
            let _ = shared.events.send(EngineEvent::Warning {
                camera: None,
                message: format!(
                    "recording stopped: only {} MB free on the recordings disk",
                    free / 1_000_000
                ),
            });
        }
    } else if full && free > min + min / 10 {
        shared.disk_full.store(false, Ordering::Release);
        info!(
            free_bytes = free,
            "disk space available again: recording resumes"
        );
    }
}

/// The data disk (the catalog's), when it is not the recordings disk:
/// below `min_free_bytes` the panel warns, once, and goes on recording;
/// catalog writes that fail for space are held and retried
/// (`crate::writes`).
fn check_data_disk(shared: &Shared, low: &mut bool) {
    let (Ok((free, data_fs)), Ok((_, rec_fs))) = (
        free_bytes(&shared.config.data_dir),
        free_bytes(&shared.config.recordings_dir),
    ) else {
        return;
    };
    if data_fs == rec_fs {
        return;
    }
    let min = shared.config.min_free_bytes;
    if !*low && free < min {
        *low = true;
        let held = shared.writes.pending();
        error!(
            free_bytes = free,
            held, "the data disk is nearly full: recording goes on, catalog writes wait for space"
        );
        let _ = shared.events.send(EngineEvent::Warning {
            camera: None,
            message: format!(
                "only {} MB free on the data disk (the catalog): recording goes on, catalog writes wait for space",
                free / 1_000_000
            ),
        });
    } else if *low && free > min + min / 10 {
        *low = false;
        info!(free_bytes = free, "the data disk has room again");
    }
}

/// Cameras on other recording servers of a shared catalog: on the wall
/// too, with their server's word on them, or why that server cannot give
/// it ("server hall unreachable").
async fn other_servers_cameras(shared: &Shared) -> Result<(), CatalogError> {
    let me = shared.catalog.server();
    let now = now_us();
    let mut servers = None;
    for row in shared.catalog.cameras().await? {
        if row.server_id.is_empty() || row.server_id == me {
            continue;
        }
        let slot = shared.registry.slot(&row);
        if slot.link().is_some() {
            continue;
        }
        if servers.is_none() {
            servers = Some(shared.catalog.servers().await?);
        }
        let server = servers
            .as_ref()
            .and_then(|all| all.iter().find(|s| s.id == row.server_id));
        let (state, since, detail) = match server.and_then(|s| s.why_down(now)) {
            Some(why) => (CameraState::Offline, row.state_since_us, why),
            None if row.state_detail.is_empty() => (
                row.state,
                row.state_since_us,
                format!("on server {}", row.server_id),
            ),
            None => (
                row.state,
                row.state_since_us,
                format!("on server {}: {}", row.server_id, row.state_detail),
            ),
        };
        let before = slot.status();
        if (before.state, &before.detail, &before.server) != (state, &detail, &row.server_id) {
            slot.update(|s| {
                s.state = state;
                s.since_us = since;
                s.detail = detail;
                s.server.clone_from(&row.server_id);
            });
            let _ = shared.events.send(EngineEvent::Camera(row.id.clone()));
        }
    }
    Ok(())
}
