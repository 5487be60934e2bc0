//! `panel cameras` and `panel recordings`: what the catalog holds, one line
//! per row (or JSON), for scripts and people without a display.

use std::path::Path;

use cctv_engine::catalog::{CameraState, Catalog, RecordingFilter};
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
        }
    }
    catalog.close().await;
    Ok(())
}
