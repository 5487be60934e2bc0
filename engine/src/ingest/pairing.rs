//! The panel's side of pairing (`cctv_protocol::pair`): an agent that
//! proves a one-time code `panel camera add --pair` made gets its camera's
//! id, name and secret. A wrong, used or expired code is refused and
//! counted like any other refusal (and the per-address rate limit holds
//! guessing to a crawl against a 50-bit code that lives minutes).

use std::net::SocketAddr;

use cctv_protocol::pair::{agent_proof, panel_proof, proofs_equal};
use cctv_protocol::{Challenge, Message, PairGrant, PairHello};
use futures::{SinkExt, StreamExt};
use tracing::info;

use super::IngestCtx;
use super::conn::{Conn, Refused, reject};
use crate::catalog::{EventKind, OpenPairing, RefusalCode, StoredKey};
use crate::time::now_us;
use crate::writes::Write;

const WRONG_CODE: &str = "wrong, used or expired pairing code";

/// The agent's `PairProof`.
async fn read_proof(conn: &mut Conn) -> Result<[u8; cctv_protocol::auth::PROOF_LEN], Refused> {
    let lost = |e: String| Refused::new(None, RefusalCode::Protocol, super::lost_words(&e));
    match conn.next().await {
        Some(Ok(Message::PairProof(p))) => Ok(p.proof),
        Some(Ok(other)) => {
            reject(conn, "expected PairProof").await;
            let why = format!("it sent {} instead of PairProof", other.message_type());
            Err(Refused::new(None, RefusalCode::Protocol, why))
        }
        Some(Err(e)) => Err(lost(e.to_string())),
        None => Err(lost("closed instead of proving a code".into())),
    }
}

/// Uses the code (once, if still open) and reads the camera's secret and
/// name; a code used meanwhile or a revoked camera is refused.
async fn claim(
    ctx: &IngestCtx,
    conn: &mut Conn,
    found: &OpenPairing,
    now: i64,
    addr: SocketAddr,
) -> Result<([u8; 32], String), Refused> {
    let used = ctx
        .catalog
        .use_pairing(found.id, now, &addr.to_string())
        .await
        .unwrap_or(false);
    let secret = match ctx.catalog.camera_key(&found.camera_id).await {
        Ok(StoredKey::Valid(s)) if used => s,
        _ => {
            reject(conn, WRONG_CODE).await;
            let why = format!("{WRONG_CODE} (used meanwhile, or the camera revoked)");
            let claimed = Some(found.camera_id.as_str());
            return Err(Refused::new(claimed, RefusalCode::WrongCode, why));
        }
    };
    let name = match ctx.catalog.camera(&found.camera_id).await {
        Ok(Some(row)) => row.name,
        _ => String::new(),
    };
    Ok((secret, name))
}

/// Answers a `PairHello`: challenge, check the proof against every open
/// code, grant the camera whose code it is.
pub(super) async fn pair(
    ctx: &IngestCtx,
    conn: &mut Conn,
    addr: SocketAddr,
    hello: PairHello,
) -> Result<(), Refused> {
    let refuse = |code, why: &str| Refused::new(None, code, why.to_string());
    let Some(fingerprint) = ctx.fingerprint else {
        reject(conn, "pairing needs TLS; this panel takes plain TCP").await;
        return Err(refuse(
            RefusalCode::Protocol,
            "pairing asked on a plain-TCP panel",
        ));
    };
    let mut nonce = [0u8; cctv_protocol::auth::NONCE_LEN];
    rand::fill(&mut nonce);
    let lost = |e: String| refuse(RefusalCode::Protocol, &super::lost_words(&e));
    conn.send(Message::Challenge(Challenge { nonce }))
        .await
        .map_err(|e| lost(e.to_string()))?;
    let proof = read_proof(conn).await?;
    let now = now_us();
    let open = ctx.catalog.open_pairings(now).await.map_err(|e| {
        refuse(
            RefusalCode::Database,
            &format!("cannot read pairing codes: {e}"),
        )
    })?;
    let fp = fingerprint.0;
    let Some(found) = open
        .into_iter()
        .find(|p| proofs_equal(&proof, &agent_proof(&p.key, &hello.nonce, &nonce, &fp)))
    else {
        reject(conn, WRONG_CODE).await;
        return Err(refuse(RefusalCode::WrongCode, WRONG_CODE));
    };
    let (secret, name) = claim(ctx, conn, &found, now, addr).await?;
    let grant = PairGrant {
        proof: panel_proof(
            &found.key,
            &hello.nonce,
            &nonce,
            &fp,
            &found.camera_id,
            &secret,
        ),
        camera_id: found.camera_id.clone(),
        name,
        secret,
    };
    conn.send(Message::PairGrant(grant))
        .await
        .map_err(|e| lost(e.to_string()))?;
    info!(camera = %found.camera_id, %addr, "an agent paired with a one-time code");
    ctx.writes.send(Write::Event {
        camera: found.camera_id,
        kind: EventKind::Paired,
        at_us: now,
        detail: format!("an agent at {addr} fetched the camera's secret with a pairing code"),
    });
    Ok(())
}
