//! The panel's TLS identity: a self-signed certificate made on first start
//! and kept under `data/tls/`. Agents pin its SHA-256 fingerprint, so no
//! certificate authority is involved.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cctv_protocol::tls::{Fingerprint, PANEL_NAME};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A connection's byte stream: TLS, or plain TCP where configured.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

/// Connects to `addr`: TLS trusting only `pin`, or plain TCP when `None`.
pub async fn connect(addr: &str, pin: Option<Fingerprint>) -> std::io::Result<Box<dyn Io>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    Ok(match pin {
        None => Box::new(tcp),
        Some(f) => {
            let connector = tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(
                cctv_protocol::tls::Pin::Fixed(f),
            ));
            Box::new(
                connector
                    .connect(cctv_protocol::tls::panel_server_name(), tcp)
                    .await?,
            )
        }
    })
}

pub struct Identity {
    pub fingerprint: Fingerprint,
    pub cert_path: PathBuf,
    /// True when this start made the certificate.
    pub created: bool,
    pub server_config: Arc<rustls::ServerConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a usable PEM {what}: {detail}")]
    Pem {
        path: String,
        what: &'static str,
        detail: String,
    },
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    #[error("the certificate and key do not go together: {0}")]
    Config(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IdentityError + '_ {
    move |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Loads `data_dir/tls/panel.crt` and `panel.key`, making them first if
/// neither exists. The key file is readable by its owner only.
pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("panel.crt");
    let key_path = dir.join("panel.key");
    let mut created = false;
    if !cert_path.exists() && !key_path.exists() {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let hostname = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let mut names = vec![PANEL_NAME.to_string()];
        if !hostname.is_empty() && hostname != PANEL_NAME {
            names.push(hostname);
        }
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| IdentityError::Generate(e.to_string()))?;
        write_private(&key_path, made.signing_key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, made.cert.pem()).map_err(io(&cert_path))?;
        created = true;
    }
    let cert = CertificateDer::from_pem_file(&cert_path).map_err(|e| IdentityError::Pem {
        path: cert_path.display().to_string(),
        what: "certificate",
        detail: e.to_string(),
    })?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| IdentityError::Pem {
        path: key_path.display().to_string(),
        what: "private key",
        detail: e.to_string(),
    })?;
    let fingerprint = Fingerprint::of(&cert);
    let server_config = rustls::ServerConfig::builder_with_provider(cctv_protocol::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| IdentityError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| IdentityError::Config(e.to_string()))?;
    Ok(Identity {
        fingerprint,
        cert_path,
        created,
        server_config: Arc::new(server_config),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert!(first.created);
        let second = load_or_create(dir.path()).unwrap();
        assert!(!second.created);
        assert_eq!(first.fingerprint, second.fingerprint);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/panel.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("tls/panel.crt"), "not a certificate").unwrap();
        let err = load_or_create(dir.path()).err().unwrap().to_string();
        assert!(err.contains("not a usable PEM certificate"), "{err}");
    }
}
