//! Start-up steps of the engine: descriptors, the listener, and the
//! catalog put right after whatever the last run left.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tracing::{info, warn};

use super::EngineError;
use crate::catalog::Catalog;
use crate::config::PanelConfig;
use crate::recorder::repair::{Repaired, adopt_orphans, repair_open_segments};
use crate::time::now_us;

/// Takes every descriptor the process may have and caps agent connections
/// so that the reserve for recording and the catalog stays free.
pub(super) fn fit_connections(config: &mut PanelConfig, cameras: usize) {
    let limit = crate::fds::raise_limit();
    let budget = crate::fds::connection_budget(config.max_connections, limit, cameras);
    if budget < config.max_connections {
        warn!(
            max_connections = budget,
            configured = config.max_connections,
            descriptor_limit = limit,
            "fewer agent connections than configured: the rest of the descriptors are kept for recording and the catalog (raise `ulimit -n` for more)"
        );
        config.max_connections = budget;
    }
}

/// A listener on `addr`, and the address it got (the port, when 0 was asked).
pub(super) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), EngineError> {
    let bind_error = |source| EngineError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Makes the data and recordings directories, opens the catalog and puts
/// it right after whatever the last run left:
/// the saved listen address (unless `--listen` was given), segments a
/// crash left open repaired, panoramas that were running failed, cameras
/// left live marked offline.
pub(super) async fn open_catalog(
    config: &mut PanelConfig,
) -> Result<(Catalog, Vec<Repaired>), EngineError> {
    for dir in [&config.data_dir, &config.recordings_dir] {
        std::fs::create_dir_all(dir).map_err(|source| EngineError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let catalog = Catalog::connect(&config.catalog_location())
        .await?
        .with_server(&config.server_id());
    // The same panel restarting (after a crash, too) is this host and
    // data directory; another panel given this server id is not.
    let data = std::fs::canonicalize(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let instance = format!("{}:{}", crate::config::hostname(), data.display());
    // Other servers pin this certificate when they view its cameras.
    let fingerprint = match config.plain_tcp {
        true => String::new(),
        false => crate::tls::load_or_create(&config.data_dir)?
            .fingerprint
            .to_string(),
    };
    catalog
        .register_server(&config.server_address(), &instance, &fingerprint, now_us())
        .await?;
    // An address chosen in the window's settings wins over the config
    // file, not over `--listen`.
    if !config.listen_from_flag
        && let Some(saved) = catalog.setting("listen").await?
    {
        match saved.parse() {
            Ok(addr) => {
                info!(listen = %addr, "listening where the panel's settings say");
                config.listen = addr;
            }
            Err(_) => warn!(
                saved,
                "ignoring a saved listen address that is not an address"
            ),
        }
    }
    let mut repaired = repair_open_segments(&catalog, &config.recordings_dir).await?;
    repaired.extend(adopt_orphans(&catalog, &config.recordings_dir).await?);
    catalog.fail_running_panoramas().await?;
    let cut = catalog.close_open_spans().await?;
    if cut > 0 {
        info!(
            events = cut,
            "motion or tamper events left open by the last run end where they began"
        );
    }
    let left_live = catalog
        .mark_all_offline(now_us(), "the panel was not running")
        .await?;
    if !left_live.is_empty() {
        info!(
            cameras = left_live.len(),
            "cameras left live by the last run are offline until they reconnect"
        );
    }
    Ok((catalog, repaired))
}
