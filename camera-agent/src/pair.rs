//! `camera-agent pair HOST:PORT CODE`: fetches this camera's id, name and
//! secret from the panel with the one-time code `panel camera add --pair`
//! showed, pins the panel's certificate, and writes them into the config
//! file (mode 600), keeping whatever else it holds. The exchange is in
//! `cctv_protocol::pair` and `protocol/README.md`.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use cctv_protocol::pair::{PairingCode, agent_proof, panel_proof, proofs_equal};
use cctv_protocol::tls::{Fingerprint, Pin};
use cctv_protocol::{Codec, Message, PairGrant, PairHello, PairProof};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(10);

/// A config file pairing starts when there is none: the camera host's
/// first webcam, the rest filled in by pairing.
const NEW_CONFIG: &str = "\
# camera-agent settings, written by `camera-agent pair`. Keep this file
# private (chmod 600). See deploy/agent.toml in the sources for every setting.
source = \"webcam:0\"   # or webcam:/dev/video2, test-pattern:640x360
";

/// What pairing learnt.
pub struct Paired {
    pub grant: PairGrant,
    pub fingerprint: Fingerprint,
}

/// Runs the exchange with the panel at `panel`.
pub async fn fetch(panel: &str, code: &PairingCode) -> anyhow::Result<Paired> {
    let stream = timeout(WAIT, TcpStream::connect(panel))
        .await
        .with_context(|| format!("no answer from {panel} within {WAIT:?}"))?
        .with_context(|| format!("cannot connect to {panel}"))?;
    // No pin yet: the certificate seen is what both sides' proofs cover.
    let pin = Pin::FirstUse(Default::default());
    let connector =
        tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(pin.clone()));
    let tls = timeout(
        WAIT,
        connector.connect(cctv_protocol::tls::panel_server_name(), stream),
    )
    .await
    .context("the TLS handshake timed out")?
    .with_context(|| format!("TLS with {panel} failed (is it a panel's agent port?)"))?;
    let fingerprint = pin.current().context("the panel showed no certificate")?;
    let mut conn = Framed::new(tls, Codec::default());
    let mut nonce = [0u8; cctv_protocol::auth::NONCE_LEN];
    rand::fill(&mut nonce);
    conn.send(Message::PairHello(PairHello { nonce })).await?;
    let challenge = match answer(&mut conn).await? {
        Message::Challenge(c) => c,
        other => bail!("the panel answered {} to a pairing", other.message_type()),
    };
    let key = code.key();
    let proof = agent_proof(&key, &nonce, &challenge.nonce, &fingerprint.0);
    conn.send(Message::PairProof(PairProof { proof })).await?;
    let grant = match answer(&mut conn).await? {
        Message::PairGrant(g) => g,
        other => bail!("the panel answered {} to the code", other.message_type()),
    };
    let expected = panel_proof(
        &key,
        &nonce,
        &challenge.nonce,
        &fingerprint.0,
        &grant.camera_id,
        &grant.secret,
    );
    if !proofs_equal(&expected, &grant.proof) {
        bail!(
            "the machine at {panel} could not prove it made the code: it is not the panel \
             that showed it (another machine may be answering); nothing was written"
        );
    }
    Ok(Paired { grant, fingerprint })
}

/// The panel's next message; a `Reject` or a close is an error in words.
async fn answer<T>(conn: &mut Framed<T, Codec>) -> anyhow::Result<Message>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match timeout(WAIT, conn.next()).await {
        Err(_) => bail!("the panel did not answer within {WAIT:?}"),
        Ok(Some(Ok(Message::Reject { reason }))) => {
            bail!("the panel refused: {}", cctv_protocol::printable(&reason))
        }
        Ok(Some(Ok(m))) => Ok(m),
        Ok(Some(Err(e))) => Err(e.into()),
        Ok(None) => bail!(
            "the panel closed the connection: a panel older than pairing does \
             (use `panel camera add` without --pair and paste its settings)"
        ),
    }
}

/// Writes what pairing learnt into the config file at `path`: `panel`,
/// `camera_id`, `name`, `secret` and `panel_fingerprint` set, `plain_tcp`
/// removed, every other setting and comment kept. Written whole to a new
/// file (mode 600, the old file's owner) that then takes the old one's place.
pub fn write_config(path: &Path, panel: &str, paired: &Paired) -> anyhow::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => NEW_CONFIG.to_string(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML; nothing was written", path.display()))?;
    let g = &paired.grant;
    doc["panel"] = toml_edit::value(panel);
    doc["camera_id"] = toml_edit::value(g.camera_id.as_str());
    if !g.name.is_empty() {
        doc["name"] = toml_edit::value(cctv_protocol::printable(&g.name).as_ref());
    }
    let secret = cctv_protocol::auth::Secret::from_bytes(g.secret);
    doc["secret"] = toml_edit::value(secret.to_hex());
    doc["panel_fingerprint"] = toml_edit::value(paired.fingerprint.to_string());
    doc.remove("plain_tcp");
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let owner = std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
    let tmp = path.with_extension("toml.pairing");
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(doc.to_string().as_bytes())?;
        f.sync_all()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// `camera-agent pair`: fetch, write, say what to do next.
pub fn run(panel: &str, code: &str, config: &Path) -> anyhow::Result<()> {
    if !panel.contains(':') {
        bail!("panel address {panel:?} has no port (HOST:PORT, e.g. 192.168.1.10:7700)");
    }
    let code = PairingCode::parse(code).map_err(|why| anyhow::anyhow!("{why}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let paired = runtime.block_on(fetch(panel, &code))?;
    write_config(config, panel, &paired)?;
    let g = &paired.grant;
    println!(
        "paired: this host is camera {} ({}) on the panel at {panel}",
        g.camera_id,
        cctv_protocol::printable(&g.name)
    );
    println!(
        "panel fingerprint {} (pinned): it must be the one `panel camera add --pair` showed",
        paired.fingerprint
    );
    println!("wrote {} (mode 600)", config.display());
    println!("start it: sudo systemctl enable --now camera-agent");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paired() -> Paired {
        Paired {
            grant: PairGrant {
                camera_id: "door".into(),
                name: "Front door".into(),
                secret: [0xab; 32],
                proof: [0; 32],
            },
            fingerprint: Fingerprint([0xcd; 32]),
        }
    }

    #[test]
    fn a_new_config_gets_a_webcam_and_the_pairing_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/agent.toml");
        write_config(&path, "10.0.0.2:7700", &paired()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let cfg: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(cfg["source"].as_str(), Some("webcam:0"));
        assert_eq!(cfg["panel"].as_str(), Some("10.0.0.2:7700"));
        assert_eq!(cfg["name"].as_str(), Some("Front door"));
        assert_eq!(cfg["secret"].as_str().unwrap(), "ab".repeat(32));
        assert_eq!(
            cfg["panel_fingerprint"].as_str().unwrap(),
            format!("sha256:{}", "cd".repeat(32))
        );
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_old_config_keeps_its_settings_and_loses_plain_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "plain_tcp = true\n# mine\nquality = 70\n").unwrap();
        write_config(&path, "h:1", &paired()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("# mine") && text.contains("quality = 70"),
            "{text}"
        );
        assert!(!text.contains("plain_tcp"), "{text}");
        // Not TOML: refused, the file left as it was.
        std::fs::write(&path, "this is [not toml").unwrap();
        let err = write_config(&path, "h:1", &paired()).unwrap_err();
        assert!(format!("{err:#}").contains("nothing was written"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "this is [not toml");
    }
}
