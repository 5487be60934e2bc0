//! Viewing: one panel shows another's live cameras. Recording servers on
//! one catalog reach each other on the agents' port; the viewer proves the
//! secret its server has in the shared catalog, then receives the newest
//! frame of each camera live there (`View`), never a backlog. See
//! `protocol/README.md`, "Viewing another server's cameras".

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::auth::{NONCE_LEN, PROOF_LEN, Secret};

/// What a viewer's proof is keyed over, before the nonce and its server id.
const VIEW_DOMAIN: &[u8] = b"CCTV view v1";

/// A panel asks to view: sent twice, first with no proof (answered with
/// `Challenge`), then with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewHello {
    /// The viewer's server id (as `validate_camera_id` allows).
    pub server_id: String,
    /// Empty, or [`viewer_proof`] over the `Challenge` nonce: 32 bytes.
    pub proof: Bytes,
}

/// The newest frame of a camera live on the viewed server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewFrame {
    pub camera_id: String,
    pub capture_us: u64,
    pub jpeg: Bytes,
}

/// Longest recording path a viewer may ask for, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// A piece of a fetched recording file, at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileData {
    pub offset: u64,
    pub bytes: Bytes,
}

/// HMAC-SHA256 of the viewer server's secret over "CCTV view v1", the
/// viewed panel's nonce and the viewer's server id.
pub fn viewer_proof(secret: &Secret, nonce: &[u8; NONCE_LEN], server_id: &str) -> [u8; PROOF_LEN] {
    keyed(secret, nonce, server_id)
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a viewer's proof in constant time.
pub fn check_viewer_proof(
    secret: &Secret,
    nonce: &[u8; NONCE_LEN],
    server_id: &str,
    proof: &[u8],
) -> bool {
    keyed(secret, nonce, server_id).verify_slice(proof).is_ok()
}

fn keyed(secret: &Secret, nonce: &[u8; NONCE_LEN], server_id: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    m.update(VIEW_DOMAIN);
    m.update(nonce);
    m.update(server_id.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_checks_only_with_its_secret_nonce_and_id() {
        let secret = Secret::from_bytes([7; 32]);
        let proof = viewer_proof(&secret, &[1; 32], "hall");
        assert!(check_viewer_proof(&secret, &[1; 32], "hall", &proof));
        assert!(!check_viewer_proof(&secret, &[2; 32], "hall", &proof));
        assert!(!check_viewer_proof(&secret, &[1; 32], "yard", &proof));
        let other = Secret::from_bytes([8; 32]);
        assert!(!check_viewer_proof(&other, &[1; 32], "hall", &proof));
        assert!(!check_viewer_proof(&secret, &[1; 32], "hall", &proof[..31]));
    }
}
