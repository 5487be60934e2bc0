//! `panel export`, `verify`, `exports`, `dispatch` and `receive`: evidence
//! from the command line, for scripts and for the archive side.

use anyhow::Context;
use cctv_engine::catalog::Location;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cctv_engine::catalog::{Catalog, DispatchState, ExportRow};
use cctv_engine::config::PanelConfig;
use cctv_engine::evidence::clip;
use cctv_engine::evidence::dispatch::Dispatcher;
use cctv_engine::evidence::export::{self, Places};
use cctv_engine::evidence::receive::{self, Receiver};
use cctv_engine::evidence::verify;
use cctv_engine::time;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::args::ReceiveArgs;
use super::catalog::open_catalog;
use cctv_engine::catalog::BEAT_STALE_US;

/// `panel export`: a clip of the range, or whole recordings; prints the
/// zip's path.
pub async fn export(
    cfg: &PanelConfig,
    cameras: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    whole: bool,
) -> anyhow::Result<()> {
    let catalog = open_catalog(&cfg.catalog_location())
        .await?
        .with_server(&cfg.server_id());
    let from_us = from.as_deref().map(time::parse).transpose()?;
    let to_us = to.as_deref().map(time::parse).transpose()?;
    let clip = !whole && (from_us.is_some() || to_us.is_some());
    let mut rows = Vec::new();
    if !clip {
        let all = [None];
        let cams: Vec<Option<&str>> = match cameras.is_empty() {
            true => all.to_vec(),
            false => cameras.iter().map(|c| Some(c.as_str())).collect(),
        };
        for c in cams {
            rows.extend(export::select(&catalog, c, from_us, to_us).await?);
        }
    }
    let places = Places {
        panel_name: cfg.panel_name.clone(),
        data_dir: cfg.data_dir.clone(),
        recordings_dir: cfg.recordings_dir.clone(),
    };
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        c.cancel();
    });
    let (tx, mut rx) = tokio::sync::watch::channel(export::Progress::default());
    let reporter = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            if p.total_bytes > 0 {
                eprint!(
                    "\rexporting {:>5.1}%  {}",
                    100.0 * p.done_bytes as f64 / p.total_bytes as f64,
                    p.file
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let result = match clip {
        true => {
            clip::export_range(
                &catalog,
                &places,
                &cameras,
                from_us.unwrap_or(i64::MIN),
                to_us.unwrap_or(i64::MAX),
                Some(tx),
                cancel,
            )
            .await
        }
        false => export::export(&catalog, &places, rows, Some(tx), cancel).await,
    };
    let _ = reporter.await;
    eprintln!();
    let row = result?;
    say!("{}", cfg.data_dir.join(&row.path).display());
    catalog.close().await;
    Ok(())
}

/// `panel verify`: exit status 0 only when the evidence is intact.
pub fn verify(zip: &Path) -> anyhow::Result<bool> {
    let report = verify::verify(zip)?;
    let m = &report.manifest;
    say!(
        "export from panel {:?}, made {}, {} cameras, {} files, {} events",
        m.panel.name,
        m.created,
        m.cameras.len(),
        m.files.len(),
        m.events.len()
    );
    for f in &report.intact_files {
        say!("  ok       {f}");
    }
    for finding in &report.findings {
        say!("  PROBLEM  {finding}");
    }
    if report.intact() {
        say!("INTACT: every file matches its SHA-256 in the manifest.");
    } else {
        say!("NOT INTACT: {} problem(s) above.", report.findings.len());
    }
    Ok(report.intact())
}

/// `panel exports`: exports and where each has been dispatched.
pub async fn exports(at: &Location, json: bool) -> anyhow::Result<()> {
    let catalog = open_catalog(at).await?;
    let exports = catalog.exports(200).await?;
    let dispatches = catalog.dispatches(1000).await?;
    for e in exports {
        let ds: Vec<_> = dispatches.iter().filter(|d| d.export_id == e.id).collect();
        if json {
            let v = serde_json::json!({ "export": e, "dispatches": ds });
            say!("{v}");
            continue;
        }
        say!(
            "{:<4} {}  {:<8} {:>3} files {:>8.1} MB  {}  {}",
            e.id,
            time::local(e.created_us),
            e.status,
            e.files,
            e.bytes as f64 / 1e6,
            e.path,
            if e.detail.is_empty() {
                String::new()
            } else {
                format!("({})", e.detail)
            }
        );
        for d in ds {
            say!(
                "       -> {:<12} {:<8} attempts {}  sent {:.1} MB  {}",
                d.target,
                d.state,
                d.attempts,
                d.bytes_sent as f64 / 1e6,
                d.last_error
            );
        }
    }
    catalog.close().await;
    Ok(())
}

/// `panel dispatch`: queues the export; if no panel is running on this
/// catalog, sends it from here, retrying until it is acknowledged.
pub async fn dispatch(cfg: &PanelConfig, zip: &Path, target: Option<String>) -> anyhow::Result<()> {
    let catalog = open_catalog(&cfg.catalog_location())
        .await?
        .with_server(&cfg.server_id());
    let (full, export) = find_export(&catalog, cfg, zip).await?;
    let targets = targets_for(cfg, target)?;
    let mut ids = Vec::new();
    for t in &targets {
        ids.push(catalog.queue_dispatch(export.id, t, time::now_us()).await?);
    }
    let running = catalog
        .last_beat()
        .await?
        .is_some_and(|b| time::now_us() - b < BEAT_STALE_US);
    if running {
        eprintln!("a panel is running on this catalog: it will send the export; waiting");
    }
    // Without a running panel, this process sends.
    let sender = (!running)
        .then(|| Dispatcher::new(catalog.clone(), cfg, tokio::sync::broadcast::channel(16).0));
    loop {
        if all_acknowledged(&catalog, &ids, sender.as_ref(), &export.path).await? {
            say!(
                "{} dispatched to {} and acknowledged",
                full.display(),
                targets.join(", ")
            );
            catalog.close().await;
            return Ok(());
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => anyhow::bail!("stopped; the dispatch stays queued and the panel will finish it"),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// The export `zip` names, which must be one of this panel's; its full path.
async fn find_export(
    catalog: &Catalog,
    cfg: &PanelConfig,
    zip: &Path,
) -> anyhow::Result<(PathBuf, ExportRow)> {
    let full =
        std::fs::canonicalize(zip).with_context(|| format!("cannot find {}", zip.display()))?;
    let data = std::fs::canonicalize(&cfg.data_dir)?;
    let rel = full
        .strip_prefix(&data)
        .map_err(|_| {
            anyhow::anyhow!(
                "{} is not an export of this panel (not under {})",
                zip.display(),
                data.display()
            )
        })?
        .to_string_lossy()
        .into_owned();
    let export = catalog
        .export_by_path(&rel)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{rel} is not in the catalog's exports"))?;
    Ok((full, export))
}

/// The named target, or every configured one.
fn targets_for(cfg: &PanelConfig, target: Option<String>) -> anyhow::Result<Vec<String>> {
    match target {
        Some(t) if cfg.dispatch_targets.iter().any(|x| x.name == t) => Ok(vec![t]),
        Some(t) => anyhow::bail!("no dispatch target named {t:?} in the panel config"),
        None if cfg.dispatch_targets.is_empty() => anyhow::bail!(
            "no dispatch targets are configured ([[dispatch_targets]] in the panel config)"
        ),
        None => Ok(cfg
            .dispatch_targets
            .iter()
            .map(|t| t.name.clone())
            .collect()),
    }
}

/// Whether every transfer is acknowledged; `sender` (when this process
/// sends) tries those that are due. A transfer given up on is an error.
async fn all_acknowledged(
    catalog: &Catalog,
    ids: &[i64],
    sender: Option<&Dispatcher>,
    path: &str,
) -> anyhow::Result<bool> {
    let mut open = 0;
    for id in ids {
        let Some(d) = catalog.dispatch(*id).await? else {
            continue;
        };
        match d.state {
            DispatchState::Done => {}
            DispatchState::Failed => {
                anyhow::bail!("dispatch to {} failed: {}", d.target, d.last_error)
            }
            DispatchState::Pending => {
                open += 1;
                if let Some(sender) = sender
                    && d.next_attempt_us <= time::now_us()
                {
                    info!(target = %d.target, attempt = d.attempts + 1, "sending {path}");
                    sender.attempt(&d).await?;
                }
            }
        }
    }
    Ok(open == 0)
}

/// `panel receive`: the archive end.
pub async fn receive(args: ReceiveArgs) -> anyhow::Result<()> {
    let ReceiveArgs {
        listen,
        dir,
        data,
        recordings,
        no_import,
        plain_tcp,
        max_connections,
    } = args;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let data = data.unwrap_or_else(|| PathBuf::from("data"));
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let catalog = Catalog::open(&data.join("panel.db")).await?;
    let import = if no_import {
        None
    } else {
        let recordings = recordings.unwrap_or_else(|| PathBuf::from("recordings"));
        std::fs::create_dir_all(&recordings)?;
        Some(recordings)
    };
    let tls = if plain_tcp {
        warn!("PLAIN TCP: senders connect without TLS; exports cross the network unencrypted");
        None
    } else {
        let id = cctv_engine::tls::load_or_create(&data)?;
        info!(fingerprint = %id.fingerprint, "senders connect over TLS; give them this fingerprint");
        Some(tokio_rustls::TlsAcceptor::from(id.server_config))
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    info!(listen = %listener.local_addr()?, dir = %dir.display(), import = import.is_some(), "receiving exports");
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        super::wait_for_stop().await;
        s.cancel();
    });
    let receiver = Receiver {
        dir,
        catalog,
        import,
        tls,
        replays: Default::default(),
        max_connections,
    };
    receive::serve(Arc::new(receiver), listener, stop).await;
    Ok(())
}
