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
    pub fn check(&self) -> Result<(), TargetError> {
        match (&self.dir, &self.address) {
            (Some(_), None) => Ok(()),
            (None, Some(_)) => self.credentials().map(|_| ()),
            _ => Err(TargetError::OnePlace(self.name.clone())),
        }
    }

    /// For a remote target: who we are, our secret, and the receiver's
    /// certificate (`None` for plain TCP).
    pub fn credentials(&self) -> Result<Credentials, TargetError> {
        let name = &self.name;
        let (Some(id), Some(secret)) = (&self.sender_id, &self.secret) else {
            return Err(TargetError::NoSender(name.clone()));
        };
        let secret = cctv_protocol::auth::Secret::parse(secret)
            .map_err(|why| TargetError::Secret(name.clone(), why))?;
        let pin = match (&self.fingerprint, self.plain_tcp) {
            (Some(f), false) => Some(
                cctv_protocol::tls::Fingerprint::parse(f)
                    .map_err(|e| TargetError::Fingerprint(name.clone(), e))?,
            ),
            (None, true) => None,
            _ => return Err(TargetError::PinOrPlain(name.clone())),
        };
        Ok((id.clone(), secret, pin))
    }
}

/// A remote target's sender id, secret and the receiver's certificate.
pub type Credentials = (
    String,
    cctv_protocol::auth::Secret,
    Option<cctv_protocol::tls::Fingerprint>,
);

/// A dispatch target the config describes wrongly.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("dispatch target {0:?} needs exactly one of dir or address")]
    OnePlace(String),
    #[error(
        "dispatch target {0:?} needs sender_id and secret (run `panel sender add` on the receiving machine)"
    )]
    NoSender(String),
    #[error("dispatch target {0:?}: secret: {1}")]
    Secret(String, &'static str),
    #[error("dispatch target {0:?}: {1}")]
    Fingerprint(String, cctv_protocol::tls::NotAFingerprint),
    #[error(
        "dispatch target {0:?} needs the receiver's fingerprint, or plain_tcp = true (not both)"
    )]
    PinOrPlain(String),
}

/// Why one attempt at a transfer failed (it is retried later).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("the target has no dir or address")]
    NoPlace,
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("cannot {doing} {path}: {source}")]
    File {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the copy in {dir} does not match (SHA-256 {actual}); removed")]
    Mismatch { dir: PathBuf, actual: String },
    #[error(transparent)]
    Hash(#[from] super::export::ExportError),
    #[error("the export got shorter while sending")]
    Shrunk,
    #[error("stalled at {have} of {size} bytes")]
    Stalled { have: u64, size: u64 },
    #[error("failed at {have} of {size} bytes: {source}")]
    Write {
        have: u64,
        size: u64,
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}: {why}")]
    Connect { addr: String, why: String },
    #[error("{addr}: {source}")]
    Connection {
        addr: String,
        source: super::transfer::TransferError,
    },
    #[error("{addr} refused: {reason}")]
    Refused { addr: String, reason: String },
    #[error("{addr} answered {answer}")]
    Unexpected { addr: String, answer: String },
    #[error("{0} sent a challenge that is not 32 bytes of hex")]
    BadChallenge(String),
    #[error("no acknowledgement from {addr} within 10 minutes")]
    NoAck { addr: String },
}

/// One attempt's outcome: bytes put on the wire (or disk), and the result.
pub struct Attempt {
    pub sent: u64,
    pub result: Result<(), DispatchError>,
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

/// What is sent, how fast, and who hears how far it got.
struct Job<'a> {
    zip: &'a Path,
    /// The file name at the target.
    name: String,
    sha256: &'a str,
    rate: u64,
    progress: &'a (dyn Fn(u64, u64) + Sync),
    /// Bytes put on the wire (or disk) so far.
    sent: u64,
}

/// Sends one export to one target.
pub async fn send(
    target: &TargetConfig,
    zip: &Path,
    sha256: &str,
    rate: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Attempt {
    let mut job = Job {
        zip,
        name: zip
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export.zip")
            .to_string(),
        sha256,
        rate,
        progress,
        sent: 0,
    };
    let result = match (&target.dir, &target.address) {
        (Some(dir), _) => job.copy_to_dir(dir).await,
        (None, Some(addr)) => job.send_to_receiver(target, addr).await,
        (None, None) => Err(DispatchError::NoPlace),
    };
    Attempt {
        sent: job.sent,
        result,
    }
}

fn file_error(doing: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DispatchError {
    let path = path.to_path_buf();
    move |source| DispatchError::File {
        doing,
        path,
        source,
    }
}

impl Job<'_> {
    /// Opens the export; its size.
    async fn open(&self) -> Result<(tokio::fs::File, u64), DispatchError> {
        let src = tokio::fs::File::open(self.zip)
            .await
            .map_err(file_error("read", self.zip))?;
        let size = src
            .metadata()
            .await
            .map_err(file_error("read", self.zip))?
            .len();
        Ok((src, size))
    }

    /// Copies into `dir` under a hidden name (resuming what is there),
    /// checks the copy's SHA-256, then renames it.
    async fn copy_to_dir(&mut self, dir: &Path) -> Result<(), DispatchError> {
        let final_path = dir.join(&self.name);
        let partial = dir.join(format!(".{}.partial", self.name));
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(file_error("create", dir))?;
        if final_path.exists()
            && sha256_off_thread(&final_path).await.ok().as_deref() == Some(self.sha256)
        {
            return Ok(());
        }
        let (mut src, size) = self.open().await?;
        let mut out = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .await
            .map_err(file_error("write", &partial))?;
        let held = out
            .metadata()
            .await
            .map_err(file_error("write", &partial))?;
        let mut offset = held.len();
        if offset > size {
            out.set_len(0)
                .await
                .map_err(file_error("write", &partial))?;
            offset = 0;
        }
        self.copy(&mut src, &mut out, offset, size).await?;
        out.sync_all()
            .await
            .map_err(file_error("write", &partial))?;
        drop(out);
        let actual = sha256_off_thread(&partial).await?;
        if actual != self.sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(DispatchError::Mismatch {
                dir: dir.to_path_buf(),
                actual,
            });
        }
        tokio::fs::rename(&partial, &final_path)
            .await
            .map_err(file_error("rename", &partial))
    }

    /// Proves who we are to a `panel receive`, offers the export, sends what
    /// it does not hold yet, and waits for its acknowledgement.
    async fn send_to_receiver(
        &mut self,
        target: &TargetConfig,
        addr: &str,
    ) -> Result<(), DispatchError> {
        let (mut src, size) = self.open().await?;
        let (sender, secret, pin) = target.credentials()?;
        let connect = tokio::time::timeout(Duration::from_secs(10), crate::tls::connect(addr, pin));
        let mut stream = connect
            .await
            .map_err(|_| connect_error(addr, "timed out".into()))?
            .map_err(|e| connect_error(addr, e.to_string()))?;
        let mut talk = Talk {
            addr,
            stream: &mut stream,
        };
        let nonce = match talk.read().await? {
            Control::Challenge { nonce } => nonce,
            other => return Err(talk.unexpected(other)),
        };
        let nonce: [u8; 32] = hex::decode(&nonce)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| DispatchError::BadChallenge(addr.to_string()))?;
        let proof = cctv_protocol::auth::sender_proof(&secret, &nonce, &sender);
        let proof = hex::encode(proof);
        talk.write(&Control::Hello { sender, proof }).await?;
        match talk.read().await? {
            Control::Welcome => {}
            other => return Err(talk.unexpected(other)),
        }
        let offer = Control::Offer {
            name: self.name.clone(),
            size,
            sha256: self.sha256.to_string(),
        };
        talk.write(&offer).await?;
        let offset = match talk.read().await? {
            Control::Resume { offset } if offset <= size => offset,
            other => return Err(talk.unexpected(other)),
        };
        self.copy(&mut src, talk.stream, offset, size).await?;
        match tokio::time::timeout(Duration::from_secs(600), talk.read()).await {
            Ok(Ok(Control::Ack { sha256: acked, .. })) if acked == self.sha256 => Ok(()),
            Ok(Ok(other)) => Err(talk.unexpected(other)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(DispatchError::NoAck {
                addr: addr.to_string(),
            }),
        }
    }

    /// Copies `src[offset..size]` to `dst` in chunks, under the rate limit,
    /// reporting (bytes at the target, total). A write that stalls for 30 s
    /// fails.
    async fn copy<W: AsyncWriteExt + Unpin>(
        &mut self,
        src: &mut tokio::fs::File,
        dst: &mut W,
        offset: u64,
        size: u64,
    ) -> Result<(), DispatchError> {
        src.seek(SeekFrom::Start(offset))
            .await
            .map_err(file_error("read", self.zip))?;
        let mut pace = Pace {
            rate: self.rate,
            start: Instant::now(),
            sent: 0,
        };
        let mut buf = vec![0u8; CHUNK];
        let mut have = offset;
        while have < size {
            let n = src
                .read(&mut buf)
                .await
                .map_err(file_error("read", self.zip))?;
            if n == 0 {
                return Err(DispatchError::Shrunk);
            }
            tokio::time::timeout(Duration::from_secs(30), dst.write_all(&buf[..n]))
                .await
                .map_err(|_| DispatchError::Stalled { have, size })?
                .map_err(|source| DispatchError::Write { have, size, source })?;
            self.sent += n as u64;
            have += n as u64;
            (self.progress)(have, size);
            pace.account(n).await;
        }
        Ok(())
    }
}

fn connect_error(addr: &str, why: String) -> DispatchError {
    DispatchError::Connect {
        addr: addr.to_string(),
        why,
    }
}

/// Control messages with a receiver at `addr`.
struct Talk<'a> {
    addr: &'a str,
    stream: &'a mut Box<dyn crate::tls::Io>,
}

impl Talk<'_> {
    async fn read(&mut self) -> Result<Control, DispatchError> {
        read_control(self.stream)
            .await
            .map_err(|source| self.lost(source))
    }

    async fn write(&mut self, c: &Control) -> Result<(), DispatchError> {
        write_control(self.stream, c)
            .await
            .map_err(|source| self.lost(source))
    }

    fn lost(&self, source: super::transfer::TransferError) -> DispatchError {
        DispatchError::Connection {
            addr: self.addr.to_string(),
            source,
        }
    }

    /// A refusal, with its reason, or an answer out of turn.
    fn unexpected(&self, answer: Control) -> DispatchError {
        let addr = self.addr.to_string();
        match answer {
            Control::Refused { reason } => DispatchError::Refused {
                addr,
                reason: cctv_protocol::printable(&reason).into_owned(),
            },
            other => DispatchError::Unexpected {
                addr,
                answer: format!("{other:?}"),
            },
        }
    }
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
                        // The receiver looked and said no (not our secret,
                        // not an intact export): asking again changes nothing.
                        Err(e @ DispatchError::Refused { .. }) => {
                            warn!(export = %export.path, target = %d.target, "dispatch refused; not retrying: {e}");
                            Err((e.to_string(), now_us(), true))
                        }
                        Err(e) => {
                            let delay = retry_delay(d.attempts + 1);
                            warn!(export = %export.path, target = %d.target, "dispatch failed, retrying in {} s: {e}", delay.as_secs());
                            Err((e.to_string(), now_us() + delay.as_micros() as i64, false))
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
