//! `panel cameras`, `panel recordings` and `panel events`: what the catalog
//! holds, one line per row (or JSON), for scripts and people without a
//! display.

use std::path::Path;

use std::collections::HashMap;

use anyhow::Context;
use cctv_engine::catalog::{
    CameraState, Catalog, EventFilter, EventKind, Location, RecordingFilter, ServerRow,
};
use cctv_engine::time;

/// Opens an existing catalog: a SQLite file must be there already (a
/// mistyped `--data` makes no new one); a PostgreSQL server is connected to.
pub async fn open_catalog(at: &Location) -> anyhow::Result<Catalog> {
    if let Location::Sqlite(path) = at
        && !path.exists()
    {
        let data = path.parent().unwrap_or(Path::new("."));
        return Err(anyhow::anyhow!(
            "no catalog at {} (has `panel serve --data {}` run yet?)",
            path.display(),
            data.display()
        ));
    }
    Catalog::connect(at)
        .await
        .with_context(|| format!("cannot open the catalog at {at}"))
}

/// The catalog's recording servers, and what each is doing now.
pub struct Servers {
    rows: HashMap<String, ServerRow>,
    now_us: i64,
}

impl Servers {
    pub async fn load(catalog: &Catalog) -> anyhow::Result<Self> {
        let rows = catalog.servers().await?;
        Ok(Self {
            rows: rows.into_iter().map(|s| (s.id.clone(), s)).collect(),
            now_us: time::now_us(),
        })
    }

    /// `running`, `stopped`, `unreachable`; `-` for no server.
    pub fn state(&self, id: &str) -> &'static str {
        self.rows
            .get(id)
            .map(|s| s.state(self.now_us).as_str())
            .unwrap_or("-")
    }

    /// Why the rows of server `id` are not live, when it does not run.
    pub fn why_down(&self, id: &str) -> Option<String> {
        self.rows.get(id)?.why_down(self.now_us)
    }

    /// The server column: its id, or `-`.
    pub fn name(id: &str) -> &str {
        if id.is_empty() { "-" } else { id }
    }
}

pub async fn cameras(at: &Location, json: bool) -> anyhow::Result<()> {
    let catalog = open_catalog(at).await?;
    let servers = Servers::load(&catalog).await?;
    for c in catalog.cameras().await? {
        let (state, detail) = match servers.why_down(&c.server_id) {
            None => (c.state, c.state_detail.clone()),
            Some(why) => (CameraState::Offline, why),
        };
        if json {
            let v = serde_json::json!({
                "id": c.id, "name": c.name, "state": state.as_str(), "since_us": c.state_since_us,
                "detail": detail, "record_mode": c.record_mode, "address": c.last_address,
                "width": c.width, "height": c.height, "fps": c.fps_milli as f64 / 1000.0,
                "server": c.server_id, "server_state": servers.state(&c.server_id),
            });
            say!("{v}");
        } else {
            say!(
                "{:<20} {:<8} since {}  {:<24} rec:{:<10} {}x{}  on {} ({})  {}",
                c.id,
                state.as_str(),
                time::local(c.state_since_us),
                c.name,
                c.record_mode,
                c.width,
                c.height,
                Servers::name(&c.server_id),
                servers.state(&c.server_id),
                detail
            );
        }
    }
    catalog.close().await;
    Ok(())
}

pub async fn recordings(
    at: &Location,
    camera: Option<String>,
    since: Option<String>,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    let catalog = open_catalog(at).await?;
    let servers = Servers::load(&catalog).await?;
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
            let mut v = serde_json::to_value(&r)?;
            v["server_state"] = servers.state(&r.server_id).into();
            say!("{v}");
        } else {
            say!(
                "{:<20} {}  {:>7.1} s  {:>6} frames  {:>8.1} MB  {:<11} on {} ({})  {}",
                r.camera_id,
                time::local(r.start_us),
                (r.end_us - r.start_us) as f64 / 1e6,
                r.frames,
                r.bytes as f64 / 1e6,
                r.status,
                Servers::name(&r.server_id),
                servers.state(&r.server_id),
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

pub async fn events(at: &Location, q: EventQuery, json: bool) -> anyhow::Result<()> {
    let kind = match q.kind.as_deref() {
        Some(k) => Some(EventKind::parse(k).ok_or_else(|| {
            let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            anyhow::anyhow!("unknown event kind {k:?}: one of {}", kinds.join(", "))
        })?),
        None => None,
    };
    let from_us = q.since.as_deref().map(time::parse).transpose()?;
    let catalog = open_catalog(at).await?;
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
                "detail": e.detail, "server": e.server_id,
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
                "{:<20} {}  {:<18} {:>9}  {:<11} on {}  {}",
                e.camera_id,
                time::local(e.at_us),
                e.kind.as_str(),
                span,
                peak,
                Servers::name(&e.server_id),
                e.detail
            );
        }
    }
    catalog.close().await;
    Ok(())
}
