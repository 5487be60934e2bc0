//! Proving a camera's identity without sending its secret.
//!
//! Every camera has its own 32-byte secret, made by the panel. On each
//! connection the panel sends a fresh random nonce (`Challenge`); the agent's
//! `Hello` carries HMAC-SHA256(secret, "CCTV hello v1" || nonce || Hello
//! payload with empty credentials). The secret never crosses the wire, a
//! recorded Hello is worthless on any other connection, and the MAC covers
//! every field of the Hello, so none can be changed on the way.
//!
//! [`ServerHandshake`] is the panel's side as a pure function of the bytes
//! received, so it can be tested and fuzzed without sockets.

use std::collections::{HashSet, VecDeque};

use bytes::{Bytes, BytesMut};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::message::{Challenge, Hello, Message, MessageType};

pub const NONCE_LEN: usize = 32;
pub const SECRET_LEN: usize = 32;
pub const PROOF_LEN: usize = 32;
const DOMAIN: &[u8] = b"CCTV hello v1";
const SENDER_DOMAIN: &[u8] = b"CCTV dispatch v1";

/// A camera's shared secret. Shown to people as 64 hex digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl Secret {
    pub const fn from_bytes(b: [u8; SECRET_LEN]) -> Self {
        Self(b)
    }

    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// Parses 64 hex digits (spaces and a `cctv-secret:` prefix are allowed).
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        let text = text.strip_prefix("cctv-secret:").unwrap_or(text);
        let digits: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        parse_hex32(&digits).map(Self)
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Exactly 64 hex digits (either case) as 32 bytes.
pub fn parse_hex32(digits: &str) -> Result<[u8; 32], &'static str> {
    let digits = digits.as_bytes();
    if digits.len() != 64 {
        return Err("a camera secret is 64 hex digits");
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let hi = hex_value(pair[0]).ok_or("a camera secret has only hex digits 0-9 a-f")?;
        let lo = hex_value(pair[1]).ok_or("a camera secret has only hex digits 0-9 a-f")?;
        out[i] = hi << 4 | lo;
    }
    Ok(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// HMAC-SHA256 keyed with `secret` over `parts`, in order.
fn keyed(secret: &Secret, parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    for p in parts {
        m.update(p);
    }
    m
}

fn mac(secret: &Secret, nonce: &[u8; NONCE_LEN], hello: &Hello) -> Hmac<Sha256> {
    let mut unsigned = hello.clone();
    unsigned.credentials = Bytes::new();
    let mut payload = BytesMut::new();
    // A Hello that cannot be encoded cannot be proven either; its bytes
    // (whatever was written) still go into the MAC, which then fails.
    let _ = crate::wire::encode_payload(&Message::Hello(unsigned), &mut payload);
    keyed(secret, &[DOMAIN, nonce, &payload])
}

/// The agent's side: fills in `hello.credentials` for this challenge.
pub fn prove(secret: &Secret, challenge: &Challenge, mut hello: Hello) -> Hello {
    let proof = mac(secret, &challenge.nonce, &hello)
        .finalize()
        .into_bytes();
    hello.credentials = Bytes::copy_from_slice(&proof);
    hello
}

/// The proof a panel sending evidence gives `panel receive`: HMAC-SHA256
/// of its secret over "CCTV dispatch v1", the receiver's nonce and the
/// sender's id.
pub fn sender_proof(secret: &Secret, nonce: &[u8; NONCE_LEN], sender: &str) -> [u8; PROOF_LEN] {
    keyed(secret, &[SENDER_DOMAIN, nonce, sender.as_bytes()])
        .finalize()
        .into_bytes()
        .into()
}

/// Checks a sender's proof in constant time.
pub fn check_sender_proof(
    secret: &Secret,
    nonce: &[u8; NONCE_LEN],
    sender: &str,
    proof: &[u8],
) -> bool {
    keyed(secret, &[SENDER_DOMAIN, nonce, sender.as_bytes()])
        .verify_slice(proof)
        .is_ok()
}

/// What the panel knows of a claimed camera id.
#[derive(Debug, Clone)]
pub enum CameraKey {
    Known(Secret),
    Revoked,
    Unknown,
}

/// Why a handshake was refused. The text is what the agent and the log see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the first message must be Hello, not {0}")]
    NotHello(MessageType),
    #[error("unknown camera id (add it on the panel with `panel camera add`)")]
    UnknownCamera,
    #[error("the camera's credentials were revoked")]
    Revoked,
    #[error("no proof of the camera's secret (set the agent's secret)")]
    NoProof,
    #[error("wrong secret for this camera id")]
    WrongSecret,
    #[error("replayed handshake (a proof already used on another connection)")]
    Replayed,
}

impl Refusal {
    /// A short stable word for counting and filtering.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotHello(_) => "protocol",
            Refusal::UnknownCamera => "unknown_camera",
            Refusal::Revoked => "revoked",
            Refusal::NoProof => "no_proof",
            Refusal::WrongSecret => "wrong_secret",
            Refusal::Replayed => "replayed",
        }
    }
}

/// Proofs seen recently, so a Hello replayed on a new connection is named
/// as such (it would fail anyway: its nonce is not the new one).
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<[u8; PROOF_LEN]>,
    order: VecDeque<[u8; PROOF_LEN]>,
    capacity: usize,
}

impl ReplayGuard {
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn contains(&self, proof: &[u8]) -> bool {
        <[u8; PROOF_LEN]>::try_from(proof).is_ok_and(|p| self.seen.contains(&p))
    }

    pub fn remember(&mut self, proof: &[u8]) {
        let Ok(p) = <[u8; PROOF_LEN]>::try_from(proof) else {
            return;
        };
        if self.seen.insert(p) {
            self.order.push_back(p);
            if self.order.len() > self.capacity
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
        }
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::new(4096)
    }
}

/// The panel's side of one connection's handshake.
#[derive(Debug, Clone, Copy)]
pub struct ServerHandshake {
    challenge: Challenge,
}

impl ServerHandshake {
    /// `nonce` must be fresh random bytes for every connection.
    pub fn new(nonce: [u8; NONCE_LEN]) -> Self {
        Self {
            challenge: Challenge { nonce },
        }
    }

    /// The first message to send.
    pub fn challenge(&self) -> Message {
        Message::Challenge(self.challenge)
    }

    /// Checks the agent's first message. On refusal, also returns the
    /// camera id it claimed, if it got that far.
    pub fn check(
        &self,
        message: Message,
        key: impl FnOnce(&str) -> CameraKey,
        replays: &mut ReplayGuard,
    ) -> Result<Hello, (Option<String>, Refusal)> {
        let hello = match message {
            Message::Hello(h) => h,
            other => return Err((None, Refusal::NotHello(other.message_type()))),
        };
        let id = Some(hello.camera_id.clone());
        if hello.credentials.is_empty() {
            return Err((id, Refusal::NoProof));
        }
        if replays.contains(&hello.credentials) {
            return Err((id, Refusal::Replayed));
        }
        let secret = match key(&hello.camera_id) {
            CameraKey::Known(s) => s,
            CameraKey::Revoked => return Err((id, Refusal::Revoked)),
            CameraKey::Unknown => return Err((id, Refusal::UnknownCamera)),
        };
        if mac(&secret, &self.challenge.nonce, &hello)
            .verify_slice(&hello.credentials)
            .is_err()
        {
            return Err((id, Refusal::WrongSecret));
        }
        replays.remember(&hello.credentials);
        Ok(hello)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(id: &str) -> Hello {
        Hello {
            camera_id: id.into(),
            name: "Door".into(),
            agent_version: "test".into(),
            width: 640,
            height: 480,
            fps_milli: 10_000,
            credentials: Bytes::new(),
        }
    }

    fn table(secret: &Secret) -> impl Fn(&str) -> CameraKey + '_ {
        move |id| match id {
            "door" => CameraKey::Known(secret.clone()),
            "old" => CameraKey::Revoked,
            _ => CameraKey::Unknown,
        }
    }

    #[test]
    fn the_right_secret_is_accepted_once_and_its_replay_named() {
        let secret = Secret::from_bytes([7; 32]);
        let mut guard = ReplayGuard::default();
        let first = ServerHandshake::new([1; 32]);
        let Message::Challenge(c) = first.challenge() else {
            panic!()
        };
        let proven = prove(&secret, &c, hello("door"));
        assert_eq!(proven.credentials.len(), PROOF_LEN);
        let ok = first.check(Message::Hello(proven.clone()), table(&secret), &mut guard);
        assert_eq!(ok.unwrap().camera_id, "door");
        // The same bytes on a new connection (new nonce).
        let second = ServerHandshake::new([2; 32]);
        let again = second.check(Message::Hello(proven.clone()), table(&secret), &mut guard);
        assert_eq!(again.unwrap_err().1, Refusal::Replayed);
        // Even with the guard forgotten, the old proof does not fit the new nonce.
        let again = second.check(
            Message::Hello(proven),
            table(&secret),
            &mut ReplayGuard::default(),
        );
        assert_eq!(again.unwrap_err().1, Refusal::WrongSecret);
    }

    #[test]
    fn wrong_secret_unknown_revoked_and_tampered_hellos_are_refused() {
        let secret = Secret::from_bytes([7; 32]);
        let wrong = Secret::from_bytes([8; 32]);
        let hs = ServerHandshake::new([3; 32]);
        let c = Challenge { nonce: [3; 32] };
        let mut guard = ReplayGuard::default();
        let mut check = |h: Hello| hs.check(Message::Hello(h), table(&secret), &mut guard);
        let refused = |r: Result<Hello, (Option<String>, Refusal)>| r.unwrap_err().1;
        assert_eq!(
            refused(check(prove(&wrong, &c, hello("door")))),
            Refusal::WrongSecret
        );
        assert_eq!(
            refused(check(prove(&secret, &c, hello("stranger")))),
            Refusal::UnknownCamera
        );
        assert_eq!(
            refused(check(prove(&secret, &c, hello("old")))),
            Refusal::Revoked
        );
        assert_eq!(refused(check(hello("door"))), Refusal::NoProof);
        let mut tampered = prove(&secret, &c, hello("door"));
        tampered.name = "Back door".into();
        assert_eq!(refused(check(tampered)), Refusal::WrongSecret);
        let mut short = prove(&secret, &c, hello("door"));
        short.credentials = short.credentials.slice(..16);
        assert_eq!(refused(check(short)), Refusal::WrongSecret);
        let (id, why) = hs
            .check(Message::Ping { nonce: 1 }, table(&secret), &mut guard)
            .unwrap_err();
        assert_eq!((id, why), (None, Refusal::NotHello(MessageType::Ping)));
    }

    #[test]
    fn secrets_round_trip_through_hex_and_bad_text_is_refused() {
        let s = Secret::from_bytes(std::array::from_fn(|i| i as u8 * 7));
        assert_eq!(Secret::parse(&s.to_hex()).unwrap(), s);
        assert_eq!(
            Secret::parse(&format!("cctv-secret:{}", s.to_hex().to_uppercase())).unwrap(),
            s
        );
        assert!(Secret::parse("abc").is_err());
        assert!(Secret::parse(&"g".repeat(64)).is_err());
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn a_sender_proof_checks_only_with_its_secret_nonce_and_id() {
        let s = Secret::from_bytes([4; 32]);
        let p = sender_proof(&s, &[1; 32], "hq");
        assert!(check_sender_proof(&s, &[1; 32], "hq", &p));
        assert!(!check_sender_proof(&s, &[2; 32], "hq", &p));
        assert!(!check_sender_proof(&s, &[1; 32], "hq2", &p));
        assert!(!check_sender_proof(
            &Secret::from_bytes([5; 32]),
            &[1; 32],
            "hq",
            &p
        ));
        assert!(!check_sender_proof(&s, &[1; 32], "hq", &p[..31]));
    }

    #[test]
    fn replay_guard_forgets_the_oldest_beyond_its_capacity() {
        let mut g = ReplayGuard::new(2);
        for p in [[1u8; 32], [2; 32], [3; 32]] {
            g.remember(&p);
        }
        assert!(!g.contains(&[1; 32]));
        assert!(g.contains(&[2; 32]) && g.contains(&[3; 32]));
    }
}
