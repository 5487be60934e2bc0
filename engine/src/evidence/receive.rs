//! `panel receive`: the archive end of dispatch. Accepts offered exports,
//! resumes dropped transfers from what it already holds, writes under a
//! temporary name, checks every byte against the sender's SHA-256 and the
//! export against its manifest before acknowledging, then renames and
//! (optionally) imports it into its own catalog. Bad input is refused with
//! the reason; nothing is written outside its directories.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::fs::OpenOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::export::sha256_off_thread;
use super::transfer::{Control, read_control, valid_name, valid_sha256, write_control};
use super::verify;
use crate::catalog::{Catalog, RefusalCode, StoredKey};
use crate::tls::Io;

/// Largest export accepted.
pub const MAX_EXPORT_BYTES: u64 = 1 << 40;
/// A sender silent for this long is dropped (its partial file is kept).
const IDLE: Duration = Duration::from_secs(30);
/// Time a sender has for TLS and for proving who it is.
const HANDSHAKE: Duration = Duration::from_secs(10);

pub struct Receiver {
    pub dir: PathBuf,
    /// Senders' secrets, refused connections, and imported recordings.
    pub catalog: Catalog,
    /// Where to import received exports' recordings; `None`: keep the zips only.
    pub import: Option<PathBuf>,
    /// TLS; `None` with --plain-tcp.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub replays: std::sync::Mutex<cctv_protocol::auth::ReplayGuard>,
    /// Connections at once; one over it is closed unread.
    pub max_connections: usize,
}

/// Connections `panel receive` takes at once unless told otherwise: a site
/// has a handful of senders, each with one transfer at a time.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

pub async fn serve(receiver: Arc<Receiver>, listener: TcpListener, stop: CancellationToken) {
    let _ = std::fs::create_dir_all(receiver.dir.join(".incoming"));
    let permits = Arc::new(tokio::sync::Semaphore::new(receiver.max_connections));
    loop {
        let (stream, addr) = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    warn!("cannot accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%addr, limit = receiver.max_connections, "refused a sender: too many connections");
            drop(stream);
            continue;
        };
        let r = receiver.clone();
        // Partial files survive a stop and are resumed; nothing to await.
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match r.authenticate(stream).await {
                Ok(s) => s,
                Err((sender, code, why)) => {
                    warn!(%addr, sender = sender.as_deref().unwrap_or("-"), "refused a sender: {why}");
                    let _ = r
                        .catalog
                        .add_auth_failure(
                            crate::time::now_us(),
                            &addr.to_string(),
                            sender.as_deref(),
                            code,
                            &why,
                            None,
                        )
                        .await;
                    return;
                }
            };
            match r.handle(stream).await {
                Ok(msg) => info!(%addr, "{msg}"),
                Err(why) => warn!(%addr, "transfer refused or broken: {why}"),
            }
        });
    }
}

/// Why a sender was refused: the id it claimed, a code, the reason.
type Refusal = (Option<String>, RefusalCode, String);

impl Receiver {
    /// TLS (unless plain TCP), then the sender proves its secret.
    async fn authenticate(&self, tcp: TcpStream) -> Result<Box<dyn Io>, Refusal> {
        let mut stream: Box<dyn Io> = match &self.tls {
            Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => Box::new(s),
                Ok(Err(e)) => {
                    return Err((None, RefusalCode::Tls, format!("TLS handshake failed: {e}")));
                }
                Err(_) => {
                    return Err((
                        None,
                        RefusalCode::Timeout,
                        "no TLS handshake within 10 s".into(),
                    ));
                }
            },
            None => Box::new(tcp),
        };
        let mut nonce = [0u8; 32];
        rand::fill(&mut nonce);
        let hello = async {
            write_control(
                &mut stream,
                &Control::Challenge {
                    nonce: hex::encode(nonce),
                },
            )
            .await?;
            read_control(&mut stream).await
        };
        let (sender, proof) = match tokio::time::timeout(HANDSHAKE, hello).await {
            Ok(Ok(Control::Hello { sender, proof })) => (sender, proof),
            Ok(Ok(_)) => {
                return Err((
                    None,
                    RefusalCode::Protocol,
                    "the first answer must be hello".into(),
                ));
            }
            Ok(Err(e)) => return Err((None, RefusalCode::Protocol, e.to_string())),
            Err(_) => return Err((None, RefusalCode::Timeout, "no hello within 10 s".into())),
        };
        let proof = hex::decode(&proof).unwrap_or_default();
        let refuse = async |stream: &mut Box<dyn Io>, code: RefusalCode, reason: &str| {
            let _ = write_control(
                stream,
                &Control::Refused {
                    reason: reason.to_string(),
                },
            )
            .await;
            Err((Some(sender.clone()), code, reason.to_string()))
        };
        let replayed = crate::sync::lock(&self.replays).contains(&proof);
        if replayed {
            return refuse(&mut stream, RefusalCode::Replayed, "replayed handshake").await;
        }
        let secret = match self.catalog.sender_key(&sender).await {
            Ok(StoredKey::Valid(s)) => cctv_protocol::auth::Secret::from_bytes(s),
            Ok(StoredKey::Revoked) => {
                return refuse(&mut stream, RefusalCode::Revoked, "this sender was revoked").await;
            }
            Ok(StoredKey::None) => {
                return refuse(
                    &mut stream,
                    RefusalCode::UnknownSender,
                    "unknown sender (add it on the receiver with `panel sender add`)",
                )
                .await;
            }
            Err(e) => return refuse(&mut stream, RefusalCode::Database, &e.to_string()).await,
        };
        if !cctv_protocol::auth::check_sender_proof(&secret, &nonce, &sender, &proof) {
            return refuse(
                &mut stream,
                RefusalCode::WrongSecret,
                "wrong secret for this sender",
            )
            .await;
        }
        crate::sync::lock(&self.replays).remember(&proof);
        write_control(&mut stream, &Control::Welcome)
            .await
            .map_err(|e| (Some(sender.clone()), RefusalCode::Protocol, e.to_string()))?;
        info!(sender, "sender authenticated");
        Ok(stream)
    }

    async fn handle(&self, mut stream: Box<dyn Io>) -> Result<String, String> {
        let offer = tokio::time::timeout(IDLE, read_control(&mut stream))
            .await
            .map_err(|_| "no offer within 30 s".to_string())?
            .map_err(|e| e.to_string())?;
        let Control::Offer { name, size, sha256 } = offer else {
            return Err("the first message must be an offer".into());
        };
        let refuse = async |stream: &mut Box<dyn Io>, reason: String| {
            let _ = write_control(
                stream,
                &Control::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            Err::<String, String>(reason)
        };
        if !valid_name(&name) {
            return refuse(
                &mut stream,
                format!("refused name {name:?}: not a plain .zip file name"),
            )
            .await;
        }
        if !valid_sha256(&sha256) {
            return refuse(
                &mut stream,
                "refused: the offer's SHA-256 is not 64 hex digits".into(),
            )
            .await;
        }
        let sha256 = sha256.to_ascii_lowercase();
        if size > MAX_EXPORT_BYTES {
            return refuse(
                &mut stream,
                format!("refused: {size} bytes is over the limit"),
            )
            .await;
        }
        let final_path = self.dir.join(&name);
        // Already here (an ack that got lost): acknowledge again.
        if final_path.exists()
            && sha256_off_thread(&final_path).await.ok().as_deref() == Some(sha256.as_str())
        {
            write_control(&mut stream, &Control::Resume { offset: size })
                .await
                .map_err(|e| e.to_string())?;
            write_control(
                &mut stream,
                &Control::Ack {
                    sha256,
                    imported: 0,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            return Ok(format!("{name} was already here"));
        }
        let partial = self.dir.join(".incoming").join(format!("{sha256}.partial"));
        let mut offset = tokio::fs::metadata(&partial)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        if offset > size {
            offset = 0;
            let _ = tokio::fs::remove_file(&partial).await;
        }
        write_control(&mut stream, &Control::Resume { offset })
            .await
            .map_err(|e| e.to_string())?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&partial)
            .await
            .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        let mut have = offset;
        let mut buf = vec![0u8; 1 << 20];
        while have < size {
            let want = ((size - have) as usize).min(buf.len());
            let n = match tokio::time::timeout(IDLE, stream.read(&mut buf[..want])).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                    let _ = file.sync_data().await;
                    return Err(format!(
                        "truncated transfer of {name}: {have} of {size} bytes (kept to resume)"
                    ));
                }
                Ok(Ok(n)) => n,
            };
            file.write_all(&buf[..n])
                .await
                .map_err(|e| format!("cannot write: {e}"))?;
            have += n as u64;
        }
        file.sync_all()
            .await
            .map_err(|e| format!("cannot sync: {e}"))?;
        drop(file);
        let actual = sha256_off_thread(&partial).await?;
        if actual != sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return refuse(
                &mut stream,
                format!(
                    "refused {name}: its SHA-256 is {actual}, the offer said {sha256}; deleted"
                ),
            )
            .await;
        }
        // The bytes are what the sender meant; now the evidence itself.
        let p = partial.clone();
        let report = tokio::task::spawn_blocking(move || verify::verify(&p))
            .await
            .map_err(|e| e.to_string())?;
        let problem = match report {
            Ok(r) if r.intact() => None,
            Ok(r) => Some(
                r.findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = problem {
            let _ = tokio::fs::remove_file(&partial).await;
            return refuse(&mut stream, format!("refused {name}: {problem}")).await;
        }
        let dest = unique(&final_path);
        tokio::fs::rename(&partial, &dest)
            .await
            .map_err(|e| format!("cannot place {}: {e}", dest.display()))?;
        let mut imported = 0;
        if let Some(recordings) = &self.import {
            match super::import::import(&self.catalog, recordings, &dest).await {
                Ok(n) => imported = n,
                Err(e) => {
                    warn!(file = %dest.display(), "received and verified, but not imported: {e}")
                }
            }
        }
        write_control(&mut stream, &Control::Ack { sha256, imported })
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!(
            "received {} ({size} bytes, from offset {offset}), verified, {imported} recordings imported",
            dest.display()
        ))
    }
}

/// `path`, or `path-1.zip`, `path-2.zip`... if taken.
fn unique(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("export")
        .to_string();
    (1..)
        .map(|i| path.with_file_name(format!("{stem}-{i}.zip")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}
