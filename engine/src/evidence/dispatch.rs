//! Dispatch: sending exports to their targets (a directory such as a NAS
//! mount, or a `panel receive` over TCP). The queue lives in the catalog, so
//! it survives restarts; failed attempts retry with capped backoff; a
//! dropped transfer resumes from what the target already holds. Nothing is
//! ever deleted here: an export stays until a person removes it.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::export::sha256_off_thread;
use super::transfer::{Control, read_control, write_control};
use crate::catalog::{Catalog, CatalogError, DispatchRow};
use crate::time::now_us;

/// A place exports go, from the panel config (`[[dispatch_targets]]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub name: String,
    /// A directory (e.g. a mounted NAS path).
    pub dir: Option<PathBuf>,
    /// A `panel receive`, HOST:PORT.
    pub address: Option<String>,
    /// For `address`: the id and secret `panel sender add` printed on the
    /// receiving machine, and its certificate's fingerprint.
    #[serde(default)]
    pub sender_id: Option<String>,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// For `address`: no TLS (the receiver runs with --plain-tcp; trusted LAN only).
    #[serde(default)]
    pub plain_tcp: bool,
}

impl TargetConfig {
    pub fn check(&self) -> Result<(), String> {
        match (&self.dir, &self.address) {
            (Some(_), None) => Ok(()),
            (None, Some(_)) => self.credentials().map(|_| ()),
            _ => Err(format!(
                "dispatch target {:?} needs exactly one of dir or address",
                self.name
            )),
        }
    }

    /// For a remote target: who we are, our secret, and the receiver's
    /// certificate (`None` for plain TCP).
    pub fn credentials(
        &self,
    ) -> Result<
        (
            String,
            cctv_protocol::auth::Secret,
            Option<cctv_protocol::tls::Fingerprint>,
        ),
        String,
    > {
        let name = &self.name;
        let (Some(id), Some(secret)) = (&self.sender_id, &self.secret) else {
            return Err(format!(
                "dispatch target {name:?} needs sender_id and secret (run `panel sender add` on the receiving machine)"
            ));
        };
        let secret = cctv_protocol::auth::Secret::parse(secret)
            .map_err(|e| format!("dispatch target {name:?}: secret: {e}"))?;
        let pin = match (&self.fingerprint, self.plain_tcp) {
            (Some(f), false) => Some(
                cctv_protocol::tls::Fingerprint::parse(f)
                    .map_err(|e| format!("dispatch target {name:?}: {e}"))?,
            ),
            (None, true) => None,
            _ => {
                return Err(format!(
                    "dispatch target {name:?} needs the receiver's fingerprint, or plain_tcp = true (not both)"
                ));
            }
        };
        Ok((id.clone(), secret, pin))
    }
}

/// One attempt's outcome: bytes put on the wire (or disk), and the result.
pub struct Attempt {
    pub sent: u64,
    pub result: Result<(), String>,
}

/// Keeps a transfer under `rate` bytes per second (0: no limit).
struct Pace {
    rate: u64,
    start: Instant,
    sent: u64,
}

impl Pace {
    async fn account(&mut self, n: usize) {
        self.sent += n as u64;
        if self.rate == 0 {
            return;
        }
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

const CHUNK: usize = 256 * 1024;

/// Sends one export to one target.
pub async fn send(
    target: &TargetConfig,
    zip: &Path,
    sha256: &str,
    rate: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Attempt {
    let name = zip
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("export.zip")
        .to_string();
    match (&target.dir, &target.address) {
        (Some(dir), _) => to_dir(dir, zip, &name, sha256, rate, progress).await,
        (None, Some(addr)) => to_remote(target, addr, zip, &name, sha256, rate, progress).await,
        (None, None) => Attempt {
            sent: 0,
            result: Err("the target has no dir or address".into()),
        },
    }
}

async fn to_dir(
    dir: &Path,
    zip: &Path,
    name: &str,
    sha256: &str,
    rate: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Attempt {
    let final_path = dir.join(name);
    let partial = dir.join(format!(".{name}.partial"));
    let mut sent = 0u64;
    let result = async {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if final_path.exists() && sha256_off_thread(&final_path).await.as_deref() == Ok(sha256) {
            return Ok(());
        }
        let mut src = tokio::fs::File::open(zip)
            .await
            .map_err(|e| format!("cannot read {}: {e}", zip.display()))?;
        let size = src.metadata().await.map_err(|e| e.to_string())?.len();
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .await
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        let mut offset = out.metadata().await.map_err(|e| e.to_string())?.len();
        if offset > size {
            out.set_len(0).await.map_err(|e| e.to_string())?;
            offset = 0;
        }
        copy_paced(&mut src, &mut out, offset, size, rate, progress, &mut sent)
            .await
            .map_err(|e| format!("writing {}: {e}", partial.display()))?;
        out.sync_all().await.map_err(|e| e.to_string())?;
        drop(out);
        let actual = sha256_off_thread(&partial).await?;
        if actual != sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(format!(
                "the copy in {} does not match (SHA-256 {actual}); removed",
                dir.display()
            ));
        }
        tokio::fs::rename(&partial, &final_path)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
    .await;
    Attempt { sent, result }
}

async fn to_remote(
    target: &TargetConfig,
    addr: &str,
    zip: &Path,
    name: &str,
    sha256: &str,
    rate: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Attempt {
    let mut sent = 0u64;
    let result = async {
        let mut src = tokio::fs::File::open(zip)
            .await
            .map_err(|e| format!("cannot read {}: {e}", zip.display()))?;
        let size = src.metadata().await.map_err(|e| e.to_string())?.len();
        let (sender, secret, pin) = target.credentials()?;
        let mut stream =
            tokio::time::timeout(Duration::from_secs(10), crate::tls::connect(addr, pin))
                .await
                .map_err(|_| format!("cannot connect to {addr}: timed out"))?
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        // Prove who we are.
        let nonce = match read_control(&mut stream).await.map_err(|e| e.to_string())? {
            Control::Challenge { nonce } => nonce,
            Control::Refused { reason } => return Err(format!("{addr} refused: {reason}")),
            other => return Err(format!("{addr} answered {other:?}")),
        };
        let nonce: [u8; 32] = hex::decode(&nonce)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{addr} sent a challenge that is not 32 bytes of hex"))?;
        let proof = cctv_protocol::auth::sender_proof(&secret, &nonce, &sender);
        write_control(
            &mut stream,
            &Control::Hello {
                sender,
                proof: hex::encode(proof),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        match read_control(&mut stream).await.map_err(|e| e.to_string())? {
            Control::Welcome => {}
            Control::Refused { reason } => return Err(format!("{addr} refused: {reason}")),
            other => return Err(format!("{addr} answered {other:?}")),
        }
        write_control(
            &mut stream,
            &Control::Offer {
                name: name.to_string(),
                size,
                sha256: sha256.to_string(),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let offset = match read_control(&mut stream).await.map_err(|e| e.to_string())? {
            Control::Resume { offset } if offset <= size => offset,
            Control::Refused { reason } => return Err(format!("{addr} refused: {reason}")),
            other => return Err(format!("{addr} answered {other:?}")),
        };
        copy_paced(
            &mut src,
            &mut stream,
            offset,
            size,
            rate,
            progress,
            &mut sent,
        )
        .await
        .map_err(|e| format!("sending to {addr}: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(600), read_control(&mut stream)).await {
            Ok(Ok(Control::Ack { sha256: acked, .. })) if acked == sha256 => Ok(()),
            Ok(Ok(Control::Refused { reason })) => Err(format!("{addr} refused: {reason}")),
            Ok(Ok(other)) => Err(format!("{addr} answered {other:?}")),
            Ok(Err(e)) => Err(format!("no acknowledgement from {addr}: {e}")),
            Err(_) => Err(format!("no acknowledgement from {addr} within 10 minutes")),
        }
    }
    .await;
    Attempt { sent, result }
}

/// Copies `src[offset..size]` to `dst` in chunks, under `rate` bytes per
/// second (0: no limit), reporting (bytes at the target, total) and adding
/// what it wrote to `sent`. A write that stalls for 30 s fails.
async fn copy_paced<W: AsyncWriteExt + Unpin>(
    src: &mut tokio::fs::File,
    dst: &mut W,
    offset: u64,
    size: u64,
    rate: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
    sent: &mut u64,
) -> Result<(), String> {
    src.seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| e.to_string())?;
    let mut pace = Pace {
        rate,
        start: Instant::now(),
        sent: 0,
    };
    let mut buf = vec![0u8; CHUNK];
    let mut have = offset;
    while have < size {
        let n = src.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the export got shorter while sending".into());
        }
        tokio::time::timeout(Duration::from_secs(30), dst.write_all(&buf[..n]))
            .await
            .map_err(|_| format!("stalled at {have} of {size} bytes"))?
            .map_err(|e| format!("failed at {have} of {size} bytes: {e}"))?;
        *sent += n as u64;
        have += n as u64;
        progress(have, size);
        pace.account(n).await;
    }
    Ok(())
}

/// Capped exponential backoff for retries: 2, 4, 8 ... 300 s.
pub fn retry_delay(attempts: i64) -> Duration {
    Duration::from_secs(2u64.saturating_pow(attempts.clamp(1, 9) as u32).min(300))
}

/// Runs the queue: picks due transfers, sends, records the outcome.
pub struct Dispatcher {
    pub catalog: Catalog,
    pub data_dir: PathBuf,
    pub targets: Vec<TargetConfig>,
    pub rate: u64,
    pub wake: Notify,
    /// Transfers in flight: dispatch id -> (bytes the target holds, total).
    pub progress: Mutex<HashMap<i64, (u64, u64)>>,
    /// Where each attempt's outcome is announced.
    pub events: tokio::sync::broadcast::Sender<crate::live::EngineEvent>,
}

impl Dispatcher {
    /// A dispatcher for `config`'s targets that announces each attempt on `events`.
    pub fn new(
        catalog: Catalog,
        config: &crate::config::PanelConfig,
        events: tokio::sync::broadcast::Sender<crate::live::EngineEvent>,
    ) -> Self {
        Self {
            catalog,
            data_dir: config.data_dir.clone(),
            targets: config.dispatch_targets.clone(),
            rate: config.dispatch_rate_limit,
            wake: Notify::new(),
            progress: Default::default(),
            events,
        }
    }

    pub fn target(&self, name: &str) -> Option<&TargetConfig> {
        self.targets.iter().find(|t| t.name == name)
    }

    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.catalog.due_dispatches(now_us()).await {
                Ok(due) => {
                    for d in due {
                        if stop.is_cancelled() {
                            return;
                        }
                        tokio::select! {
                            _ = self.attempt(&d) => {}
                            _ = stop.cancelled() => return,
                        }
                    }
                }
                Err(e) => warn!("cannot read the dispatch queue: {e}"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One try at one transfer; the outcome goes into the catalog.
    pub async fn attempt(&self, d: &DispatchRow) -> Result<bool, CatalogError> {
        let give_up = |why: String| Err((why, now_us(), true));
        let outcome;
        let mut sent = 0;
        match (
            self.catalog.export(d.export_id).await?,
            self.target(&d.target),
        ) {
            (None, _) => outcome = give_up(format!("export {} no longer exists", d.export_id)),
            (_, None) => {
                outcome = give_up(format!(
                    "no dispatch target named {:?} in the panel config",
                    d.target
                ))
            }
            (Some(export), Some(target)) => {
                let zip = self.data_dir.join(&export.path);
                if !zip.exists() {
                    outcome = give_up(format!("{} is missing", zip.display()));
                } else {
                    let id = d.id;
                    crate::sync::lock(&self.progress).insert(id, (0, export.bytes as u64));
                    let _ = self.events.send(crate::live::EngineEvent::Dispatch {
                        id,
                        export: d.export_id,
                    });
                    let progress = |have: u64, total: u64| {
                        crate::sync::lock(&self.progress).insert(id, (have, total));
                    };
                    let a = send(target, &zip, &export.sha256, self.rate, &progress).await;
                    crate::sync::lock(&self.progress).remove(&id);
                    sent = a.sent as i64;
                    outcome = match a.result {
                        Ok(()) => {
                            info!(export = %export.path, target = %d.target, sent, "dispatched and acknowledged");
                            Ok(now_us())
                        }
                        Err(e) => {
                            let delay = retry_delay(d.attempts + 1);
                            warn!(export = %export.path, target = %d.target, "dispatch failed, retrying in {} s: {e}", delay.as_secs());
                            Err((e, now_us() + delay.as_micros() as i64, false))
                        }
                    };
                }
            }
        }
        let ok = outcome.is_ok();
        self.catalog.dispatch_attempt(d.id, sent, outcome).await?;
        let _ = self.events.send(crate::live::EngineEvent::Dispatch {
            id: d.id,
            export: d.export_id,
        });
        Ok(ok)
    }
}
