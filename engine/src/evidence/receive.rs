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
use crate::catalog::{self, Catalog, RefusalCode, StoredKey};
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

/// Connections one address may hold at once: a sender sends one export at
/// a time, so a few are plenty, and one address cannot take every place.
pub const MAX_PER_ADDRESS: usize = 8;

/// Connections held per address; a place is given back when its guard goes.
#[derive(Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

struct AddressPlace(Arc<PerAddress>, std::net::IpAddr);

impl PerAddress {
    fn take(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<AddressPlace> {
        let mut held = crate::sync::lock(&self.0);
        let n = held.entry(ip).or_default();
        if *n >= MAX_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressPlace(self.clone(), ip))
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut held = crate::sync::lock(&(self.0).0);
        if let Some(n) = held.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.1);
            }
        }
    }
}

pub async fn serve(receiver: Arc<Receiver>, listener: TcpListener, stop: CancellationToken) {
    let _ = std::fs::create_dir_all(receiver.dir.join(".incoming"));
    let permits = Arc::new(tokio::sync::Semaphore::new(receiver.max_connections));
    let per_address = Arc::new(PerAddress::default());
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
        let Some(place) = per_address.take(addr.ip()) else {
            warn!(%addr, limit = MAX_PER_ADDRESS, "refused a sender: too many connections from its address");
            drop(stream);
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            warn!(%addr, limit = receiver.max_connections, "refused a sender: too many connections");
            drop(stream);
            continue;
        };
        let r = receiver.clone();
        // Partial files survive a stop and are resumed; nothing to await.
        tokio::spawn(async move {
            let _held = (permit, place);
            let stream = match r.authenticate(stream).await {
                Ok(s) => s,
                Err((sender, code, why)) => {
                    warn!(%addr, sender = sender.as_deref().unwrap_or("-"), "refused a sender: {why}");
                    let refusal = catalog::Refusal::new(
                        crate::time::now_us(),
                        addr,
                        sender.as_deref(),
                        code,
                        &why,
                    );
                    let _ = r.catalog.add_refusals(&[refusal]).await;
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
        let mut stream = self.tls(tcp).await?;
        let mut nonce = [0u8; 32];
        rand::fill(&mut nonce);
        let (sender, proof) = hello(&mut stream, &nonce).await?;
        if let Err((code, reason)) = self.check_sender(&sender, &nonce, &proof).await {
            let refusal = Control::Refused {
                reason: reason.clone(),
            };
            let _ = write_control(&mut stream, &refusal).await;
            return Err((Some(sender), code, reason));
        }
        crate::sync::lock(&self.replays).remember(&proof);
        write_control(&mut stream, &Control::Welcome)
            .await
            .map_err(|e| (Some(sender.clone()), RefusalCode::Protocol, e.to_string()))?;
        info!(sender, "sender authenticated");
        Ok(stream)
    }

    async fn tls(&self, tcp: TcpStream) -> Result<Box<dyn Io>, Refusal> {
        let Some(acceptor) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Ok(Box::new(s)),
            Ok(Err(e)) => Err((
                None,
                RefusalCode::Tls,
                crate::explain::tls_failure(&e.to_string()),
            )),
            Err(_) => Err((
                None,
                RefusalCode::Timeout,
                "no TLS handshake within 10 s".into(),
            )),
        }
    }

    /// The sender is known, not revoked, and its proof is fresh and right.
    async fn check_sender(
        &self,
        sender: &str,
        nonce: &[u8; 32],
        proof: &[u8],
    ) -> Result<(), (RefusalCode, String)> {
        let refuse = |code, reason: &str| Err((code, reason.to_string()));
        if crate::sync::lock(&self.replays).contains(proof) {
            return refuse(RefusalCode::Replayed, "replayed handshake");
        }
        let secret = match self.catalog.sender_key(sender).await {
            Ok(StoredKey::Valid(s)) => cctv_protocol::auth::Secret::from_bytes(s),
            Ok(StoredKey::Revoked) => {
                return refuse(RefusalCode::Revoked, "this sender was revoked");
            }
            Ok(StoredKey::None) => {
                return refuse(
                    RefusalCode::UnknownSender,
                    "unknown sender (add it on the receiver with `panel sender add`)",
                );
            }
            Err(e) => return refuse(RefusalCode::Database, &e.to_string()),
        };
        if !cctv_protocol::auth::check_sender_proof(&secret, nonce, sender, proof) {
            return refuse(RefusalCode::WrongSecret, "wrong secret for this sender");
        }
        Ok(())
    }

    /// One transfer: the offer, the bytes (resumed where a dropped transfer
    /// left off), the checks, then the file placed and imported.
    async fn handle(&self, mut stream: Box<dyn Io>) -> Result<String, ReceiveError> {
        match self.transfer(&mut stream).await {
            Err(ReceiveError::Refused(reason)) => {
                let refusal = Control::Refused {
                    reason: bounded(&reason),
                };
                let _ = write_control(&mut stream, &refusal).await;
                Err(ReceiveError::Refused(reason))
            }
            other => other,
        }
    }

    async fn transfer(&self, stream: &mut Box<dyn Io>) -> Result<String, ReceiveError> {
        let Offer { name, size, sha256 } = read_offer(stream).await?;
        let final_path = self.dir.join(&name);
        // Already here (an ack that got lost): acknowledge again.
        if final_path.exists()
            && sha256_off_thread(&final_path).await.ok().as_deref() == Some(sha256.as_str())
        {
            write_control(stream, &Control::Resume { offset: size }).await?;
            let ack = Control::Ack {
                sha256,
                imported: 0,
            };
            write_control(stream, &ack).await?;
            return Ok(format!("{name} was already here"));
        }
        let partial = self.dir.join(".incoming").join(format!("{sha256}.partial"));
        let offset = resume_offset(&partial, size).await;
        write_control(stream, &Control::Resume { offset }).await?;
        receive_bytes(stream, &partial, &name, offset, size).await?;
        if let Some(problem) = problem_with(&partial, &sha256).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ReceiveError::Refused(format!("refused {name}: {problem}")));
        }
        let dest = unique(&final_path);
        tokio::fs::rename(&partial, &dest)
            .await
            .map_err(|source| ReceiveError::File {
                path: dest.clone(),
                source,
            })?;
        let imported = self.import(&dest).await;
        write_control(stream, &Control::Ack { sha256, imported }).await?;
        Ok(format!(
            "received {} ({size} bytes, from offset {offset}), verified, {imported} recordings imported",
            dest.display()
        ))
    }

    /// Imports a received export's recordings, if this receiver imports;
    /// how many. A verified export that cannot be imported is still kept.
    async fn import(&self, zip: &Path) -> u64 {
        let Some(recordings) = &self.import else {
            return 0;
        };
        match super::import::import(&self.catalog, recordings, zip).await {
            Ok(n) => n,
            Err(e) => {
                warn!(file = %zip.display(), "received and verified, but not imported: {e}");
                0
            }
        }
    }
}

/// Sends the challenge; the sender's id and its proof (HMAC over `nonce`).
async fn hello(stream: &mut Box<dyn Io>, nonce: &[u8; 32]) -> Result<(String, Vec<u8>), Refusal> {
    let exchange = async {
        let challenge = Control::Challenge {
            nonce: hex::encode(nonce),
        };
        write_control(stream, &challenge).await?;
        read_control(stream).await
    };
    match tokio::time::timeout(HANDSHAKE, exchange).await {
        Ok(Ok(Control::Hello { sender, proof })) => Ok((
            cctv_protocol::printable(&sender).into_owned(),
            hex::decode(&proof).unwrap_or_default(),
        )),
        Ok(Ok(_)) => Err((
            None,
            RefusalCode::Protocol,
            "the first answer must be hello".into(),
        )),
        Ok(Err(e)) => Err((None, RefusalCode::Protocol, e.to_string())),
        Err(_) => Err((None, RefusalCode::Timeout, "no hello within 10 s".into())),
    }
}

/// Longest refusal reason sent: well within a control message, which a
/// sender reads up to 64 KiB.
const MAX_REASON: usize = 4096;

/// `reason`, cut to [`MAX_REASON`] bytes with a note of what was left out.
fn bounded(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_string();
    }
    let mut end = MAX_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &reason[..end], reason.len() - end)
}

/// Why a transfer ended without an acknowledgement.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// Bad input from the sender; the reason is sent to it.
    #[error("{0}")]
    Refused(String),
    #[error("no offer within 30 s")]
    NoOffer,
    #[error("truncated transfer of {name}: {have} of {size} bytes (kept to resume)")]
    Truncated { name: String, have: u64, size: u64 },
    #[error(transparent)]
    Connection(#[from] super::transfer::TransferError),
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An offer that names a plain .zip file, a SHA-256 and a size in bounds.
struct Offer {
    name: String,
    size: u64,
    /// Lower case.
    sha256: String,
}

async fn read_offer(stream: &mut Box<dyn Io>) -> Result<Offer, ReceiveError> {
    let offer = tokio::time::timeout(IDLE, read_control(stream))
        .await
        .map_err(|_| ReceiveError::NoOffer)??;
    let Control::Offer { name, size, sha256 } = offer else {
        return Err(ReceiveError::Refused(
            "the first message must be an offer".into(),
        ));
    };
    if !valid_name(&name) {
        return Err(ReceiveError::Refused(format!(
            "refused name {name:?}: not a plain .zip file name"
        )));
    }
    if !valid_sha256(&sha256) {
        return Err(ReceiveError::Refused(
            "refused: the offer's SHA-256 is not 64 hex digits".into(),
        ));
    }
    if size > MAX_EXPORT_BYTES {
        return Err(ReceiveError::Refused(format!(
            "refused: {size} bytes is over the limit"
        )));
    }
    Ok(Offer {
        name,
        size,
        sha256: sha256.to_ascii_lowercase(),
    })
}

/// Bytes of this file already held from a dropped transfer (0 when none,
/// or when what is held is longer than the offer: then it is deleted).
async fn resume_offset(partial: &Path, size: u64) -> u64 {
    let held = tokio::fs::metadata(partial)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if held > size {
        let _ = tokio::fs::remove_file(partial).await;
        return 0;
    }
    held
}

/// Appends the sender's bytes from `offset` to `size` to `partial`, synced.
async fn receive_bytes(
    stream: &mut Box<dyn Io>,
    partial: &Path,
    name: &str,
    offset: u64,
    size: u64,
) -> Result<(), ReceiveError> {
    let file_error = |source| ReceiveError::File {
        path: partial.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(partial)
        .await
        .map_err(file_error)?;
    let mut have = offset;
    let mut buf = vec![0u8; 1 << 20];
    while have < size {
        let want = ((size - have) as usize).min(buf.len());
        let n = match tokio::time::timeout(IDLE, stream.read(&mut buf[..want])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                let _ = file.sync_data().await;
                return Err(ReceiveError::Truncated {
                    name: name.to_string(),
                    have,
                    size,
                });
            }
            Ok(Ok(n)) => n,
        };
        file.write_all(&buf[..n]).await.map_err(file_error)?;
        have += n as u64;
    }
    file.sync_all().await.map_err(file_error)
}

/// What is wrong with the received file, if anything: its bytes are not
/// what the sender meant (its SHA-256), or the export is not whole (its
/// manifest).
async fn problem_with(partial: &Path, sha256: &str) -> Option<String> {
    let actual = match sha256_off_thread(partial).await {
        Ok(a) => a,
        Err(e) => return Some(e.to_string()),
    };
    if actual != sha256 {
        return Some(format!(
            "its SHA-256 is {actual}, the offer said {sha256}; deleted"
        ));
    }
    let p = partial.to_path_buf();
    match tokio::task::spawn_blocking(move || verify::verify(&p)).await {
        Ok(Ok(r)) if r.intact() => None,
        Ok(Ok(r)) => Some(
            r.findings
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_refusal_is_cut_to_what_a_sender_reads() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(100_000);
        let cut = bounded(&long);
        assert!(cut.len() < MAX_REASON + 64, "{}", cut.len());
        assert!(cut.ends_with("more bytes)"), "{}", &cut[cut.len() - 40..]);
    }
}
