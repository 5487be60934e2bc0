//! The connecting side of TLS (an agent, or a panel sending evidence):
//! the panel's certificate is self-signed, so it is trusted by its SHA-256
//! fingerprint, pinned in the agent's config or taken on first use.
//!
//! The verifier checks the certificate's fingerprint and that the peer
//! holds its key (the handshake signature); names and dates do not matter
//! for a pinned certificate.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The name every panel certificate carries; clients ask for it.
pub const PANEL_NAME: &str = "cctv-panel";

/// SHA-256 of a certificate (DER). Written `sha256:` and 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    /// Accepts `sha256:` then 64 hex digits; colons, spaces and case are ignored.
    pub fn parse(text: &str) -> Result<Self, NotAFingerprint> {
        let t = text.trim();
        let t = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .unwrap_or(t);
        let digits: String = t.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        crate::auth::parse_hex32(&digits)
            .map(Self)
            .map_err(|_| NotAFingerprint(text.to_string()))
    }
}

/// Text that [`Fingerprint::parse`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a certificate fingerprint (sha256: and 64 hex digits)")]
pub struct NotAFingerprint(pub String);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sha256:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Which certificate to trust.
#[derive(Debug, Clone)]
pub enum Pin {
    /// Only this one.
    Fixed(Fingerprint),
    /// The first one seen; it is stored here and then required.
    FirstUse(Arc<Mutex<Option<Fingerprint>>>),
}

impl Pin {
    /// The fingerprint in force, if any.
    pub fn current(&self) -> Option<Fingerprint> {
        match self {
            Pin::Fixed(f) => Some(*f),
            Pin::FirstUse(seen) => *seen.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

#[derive(Debug)]
struct PinnedVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity);
        let expected = match &self.pin {
            Pin::Fixed(f) => *f,
            Pin::FirstUse(slot) => {
                let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
                *slot.get_or_insert(seen)
            }
        };
        if seen == expected {
            Ok(ServerCertVerified::assertion())
        } else {
            // A certificate error (not a general one), so the panel hears
            // a certificate alert and can say why it was turned away.
            let why = format!(
                "the panel's certificate is {seen}, not the pinned {expected}: \
                 another machine is answering, or the panel's certificate was replaced"
            );
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(std::sync::Arc::new(
                    std::io::Error::other(why),
                ))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The ring provider, the one every side of this project uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that trusts only the pinned panel certificate.
pub fn client_config(pin: Pin) -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pin,
        algorithms: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Arc::new(config)
}

/// The server name to ask for.
pub fn panel_server_name() -> ServerName<'static> {
    ServerName::try_from(PANEL_NAME).expect("a valid DNS name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_print_and_parse_in_the_usual_spellings() {
        let f = Fingerprint::of(b"certificate");
        let text = f.to_string();
        assert!(
            text.starts_with("sha256:") && text.len() == 7 + 64,
            "{text}"
        );
        assert_eq!(Fingerprint::parse(&text).unwrap(), f);
        let colons: Vec<String> = f.0.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            Fingerprint::parse(&format!("SHA256:{}", colons.join(":"))).unwrap(),
            f
        );
        assert!(Fingerprint::parse("sha256:1234").is_err());
    }
}
