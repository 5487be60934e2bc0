//! `panel cameras`, `panel recordings` and `panel events`: what the catalog
//! holds, one line per row (or JSON), for scripts and people without a
//! display.

use std::path::Path;

use cctv_engine::catalog::{CameraState, Catalog, EventFilter, EventKind, RecordingFilter};
use cctv_engine::time;

pub async fn open_catalog(data: &Path) -> anyhow::Result<Catalog> {
    let path = data.join("panel.db");
    if !path.exists() {
        return Err(anyhow::anyhow!(
            "no catalog at {} (has `panel serve --data {}` run yet?)",
            path.display(),
            data.display()
        ));
    }
    Ok(Catalog::open(&path).await?)
}

/// A panel that has not said it is alive for this long is not running.
pub const BEAT_STALE_US: i64 = 15_000_000;

pub async fn cameras(data: &Path, json: bool) -> anyhow::Result<()> {
    let catalog = open_catalog(data).await?;
    let running = catalog
        .last_beat()
        .await?
        .is_some_and(|b| time::now_us() - b < BEAT_STALE_US);
    for c in catalog.cameras().await? {
        let (state, detail) = if running {
            (c.state, c.state_detail.clone())
        } else {
            (CameraState::Offline, "the panel is not running".to_string())
        };
        if json {
            let v = serde_json::json!({
                "id": c.id, "name": c.name, "state": state.as_str(), "since_us": c.state_since_us,
                "detail": detail, "record_mode": c.record_mode, "address": c.last_address,
                "width": c.width, "height": c.height, "fps": c.fps_milli as f64 / 1000.0,
            });
            say!("{v}");
        } else {
            say!(
                "{:<20} {:<8} since {}  {:<24} rec:{:<10} {}x{}  {}",
                c.id,
                state.as_str(),
                time::local(c.state_since_us),
                c.name,
                c.record_mode,
                c.width,
                c.height,
                detail
            );
        }
    }
    catalog.close().await;
    Ok(())
}

pub async fn recordings(
    data: &Path,
    camera: Option<String>,
    since: Option<String>,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    let catalog = open_catalog(data).await?;
    let from_us = since.as_deref().map(time::parse).transpose()?;
    let rows = catalog
        .recordings(&RecordingFilter {
            camera_id: camera,
            from_us,
            limit: Some(limit),
            ..Default::default()
        })
        .await?;
    for r in rows {
        if json {
            say!("{}", serde_json::to_string(&r)?);
        } else {
            say!(
                "{:<20} {}  {:>7.1} s  {:>6} frames  {:>8.1} MB  {:<11} {}",
                r.camera_id,
                time::local(r.start_us),
                (r.end_us - r.start_us) as f64 / 1e6,
                r.frames,
                r.bytes as f64 / 1e6,
                r.status,
                r.path
            );
            if r.backfilled {
                say!(
                    "{:<20} ^ backfilled from the agent's spool after an outage",
                    ""
                );
            }
        }
    }
    catalog.close().await;
    Ok(())
}

/// `panel events`' filters, as typed.
pub struct EventQuery {
    pub camera: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub limit: i64,
}

pub async fn events(data: &Path, q: EventQuery, json: bool) -> anyhow::Result<()> {
    let kind = match q.kind.as_deref() {
        Some(k) => Some(EventKind::parse(k).ok_or_else(|| {
            let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            anyhow::anyhow!("unknown event kind {k:?}: one of {}", kinds.join(", "))
        })?),
        None => None,
    };
    let from_us = q.since.as_deref().map(time::parse).transpose()?;
    let catalog = open_catalog(data).await?;
    let rows = catalog
        .find_events(&EventFilter {
            camera_id: q.camera,
            kind,
            from_us,
            limit: q.limit,
            ..Default::default()
        })
        .await?;
    for e in rows {
        if json {
            let v = serde_json::json!({
                "id": e.id, "camera_id": e.camera_id, "kind": e.kind,
                "start_us": e.at_us, "end_us": e.end_us, "peak_score": e.peak_score,
                "detail": e.detail,
            });
            say!("{v}");
        } else {
            let span = match (e.kind.is_span(), e.end_us) {
                (false, _) => String::new(),
                (true, Some(end)) => format!("{:>7.1} s", (end - e.at_us) as f64 / 1e6),
                (true, None) => "going on".to_string(),
            };
            let peak = e
                .peak_score
                .map(|p| format!("peak {:.1}%", p * 100.0))
                .unwrap_or_default();
            say!(
                "{:<20} {}  {:<18} {:>9}  {:<11} {}",
                e.camera_id,
                time::local(e.at_us),
                e.kind.as_str(),
                span,
                peak,
                e.detail
            );
        }
    }
    catalog.close().await;
    Ok(())
}
