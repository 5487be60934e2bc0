//! Pairing: an agent fetches its camera's secret with a short one-time code
//! instead of having it pasted in.
//!
//! `panel camera add --pair` shows a code of 10 characters (50 bits, shown
//! as `ABCDE-FGHJK`) valid for a few minutes. The agent opens TLS to the
//! panel without a pin, then:
//!
//! 1. agent -> `PairHello` (a fresh 32-byte nonce);
//! 2. panel -> `Challenge` (its own nonce);
//! 3. agent -> `PairProof`: [`agent_proof`], an HMAC keyed by the code over
//!    both nonces and the fingerprint of the certificate the agent saw;
//! 4. panel -> `PairGrant`: the camera id, name and secret, with
//!    [`panel_proof`] over the same and over them; or `Reject`.
//!
//! The code never crosses the wire. A panel that did not make the code
//! cannot answer step 4, and a machine in the middle (its own certificate,
//! so another fingerprint) cannot pass step 3 to the real panel: each side
//! proves the code and the certificate together. The agent then pins the
//! fingerprint it saw, which both sides also show for people to compare.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::auth::{NONCE_LEN, PROOF_LEN, SECRET_LEN};

/// Characters of a code: Crockford's base32 (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code (50 bits).
pub const CODE_LEN: usize = 10;
const KEY_DOMAIN: &[u8] = b"CCTV pairing code v1";
const AGENT_DOMAIN: &[u8] = b"CCTV pair agent v1";
const PANEL_DOMAIN: &[u8] = b"CCTV pair panel v1";

/// A one-time pairing code, in its canonical form (10 characters of
/// Crockford base32, upper case, no separator).
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode(String);

impl std::fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairingCode(..)")
    }
}

impl PairingCode {
    /// A code from 50 random bits (the low 50 bits of `random`).
    pub fn from_random(random: u64) -> Self {
        let code = (0..CODE_LEN)
            .map(|i| ALPHABET[((random >> (5 * i)) & 31) as usize] as char)
            .collect();
        Self(code)
    }

    /// Reads a code as a person types it: either case, with hyphens or
    /// spaces anywhere, `O` read as 0 and `I`/`L` as 1.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let mut code = String::with_capacity(CODE_LEN);
        for c in text.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
                return Err(
                    "a pairing code has only the letters and digits `panel camera add --pair` shows",
                );
            }
            code.push(c);
        }
        if code.len() != CODE_LEN {
            return Err("a pairing code is 10 characters (e.g. ABCDE-FGHJK)");
        }
        Ok(Self(code))
    }

    /// As shown to people: `ABCDE-FGHJK`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..5], &self.0[5..])
    }

    /// The key both sides derive from the code; the panel keeps only this.
    pub fn key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(KEY_DOMAIN);
        h.update(self.0.as_bytes());
        h.finalize().into()
    }
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; PROOF_LEN] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// What the agent sends in `PairProof`.
pub fn agent_proof(
    key: &[u8; 32],
    agent_nonce: &[u8; NONCE_LEN],
    panel_nonce: &[u8; NONCE_LEN],
    fingerprint: &[u8; 32],
) -> [u8; PROOF_LEN] {
    mac(key, &[AGENT_DOMAIN, agent_nonce, panel_nonce, fingerprint])
}

/// What the panel sends in `PairGrant`, over the grant's own fields too.
pub fn panel_proof(
    key: &[u8; 32],
    agent_nonce: &[u8; NONCE_LEN],
    panel_nonce: &[u8; NONCE_LEN],
    fingerprint: &[u8; 32],
    camera_id: &str,
    secret: &[u8; SECRET_LEN],
) -> [u8; PROOF_LEN] {
    let id_len = (camera_id.len() as u16).to_be_bytes();
    mac(
        key,
        &[
            PANEL_DOMAIN,
            agent_nonce,
            panel_nonce,
            fingerprint,
            &id_len,
            camera_id.as_bytes(),
            secret,
        ],
    )
}

/// Compares two proofs in constant time.
pub fn proofs_equal(a: &[u8; PROOF_LEN], b: &[u8; PROOF_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_however_they_are_typed() {
        let code = PairingCode::from_random(0x3_1234_5678_9abc);
        let shown = code.display();
        assert_eq!(shown.len(), 11);
        assert_eq!(PairingCode::parse(&shown).unwrap(), code);
        assert_eq!(PairingCode::parse(&shown.to_lowercase()).unwrap(), code);
        let spaced: String = shown.replace('-', " ");
        assert_eq!(PairingCode::parse(&spaced).unwrap(), code);
        assert_eq!(
            PairingCode::parse("oooo0-IIll1").unwrap(),
            PairingCode::parse("00000-11111").unwrap()
        );
        assert!(PairingCode::parse("ABCDE-FGHJ").is_err());
        assert!(PairingCode::parse("ABCDE-FGHJU").is_err());
        assert!(PairingCode::parse("ÀBCDE-FGHJK").is_err());
        assert_ne!(
            PairingCode::from_random(1).key(),
            PairingCode::from_random(2).key()
        );
    }

    /// The worked example in `protocol/README.md`.
    #[test]
    fn the_documented_example_holds() {
        let key = PairingCode::parse("ABCDE-FGHJK").unwrap().key();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(&key),
            "63b320a9ba3ab9791eab9763b0384a52c5da3fa1b5b99f4b2c14e11794c909f0"
        );
        assert_eq!(
            hex(&agent_proof(&key, &[1; 32], &[2; 32], &[3; 32])),
            "ce52edf6b102ebbd19a2a104ad5a4b8c97349d2d9d4dc017dcb0407d50b5dd83"
        );
        assert_eq!(
            hex(&panel_proof(
                &key, &[1; 32], &[2; 32], &[3; 32], "door", &[4; 32]
            )),
            "ba47cd3e1e469b134ece158259bd11937b72d048130a5465c019cf3e594d1a19"
        );
    }

    #[test]
    fn each_proof_depends_on_the_code_the_nonces_and_the_certificate() {
        let key = PairingCode::from_random(7).key();
        let other = PairingCode::from_random(8).key();
        let (a, p, fp) = ([1; 32], [2; 32], [3; 32]);
        let proof = agent_proof(&key, &a, &p, &fp);
        assert!(proofs_equal(&proof, &agent_proof(&key, &a, &p, &fp)));
        for changed in [
            agent_proof(&other, &a, &p, &fp),
            agent_proof(&key, &[9; 32], &p, &fp),
            agent_proof(&key, &a, &[9; 32], &fp),
            agent_proof(&key, &a, &p, &[9; 32]),
        ] {
            assert!(!proofs_equal(&proof, &changed));
        }
        let grant = panel_proof(&key, &a, &p, &fp, "door", &[4; 32]);
        assert!(
            !proofs_equal(&grant, &proof),
            "the two sides' proofs differ"
        );
        assert!(!proofs_equal(
            &grant,
            &panel_proof(&key, &a, &p, &fp, "door", &[5; 32])
        ));
        assert!(!proofs_equal(
            &grant,
            &panel_proof(&key, &a, &p, &fp, "doo", &[4; 32])
        ));
    }
}
