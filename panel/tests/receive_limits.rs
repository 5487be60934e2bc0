//! `panel receive` under silent peers: it holds at most `--max-connections`
//! at once and frees a place when one leaves, and one address cannot take
//! every place.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cctv_engine::evidence::receive::MAX_PER_ADDRESS;
use support::*;
use tokio::io::AsyncReadExt;

/// A `panel receive` on `listen` keeping state under `dir`, importing nothing.
fn receiver(dir: &Path, listen: &str, args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_panel"))
            .args(["receive", "--listen", listen, "--dir"])
            .arg(dir.join("inbox"))
            .arg("--data")
            .arg(dir.join("data"))
            .arg("--no-import")
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start panel receive"),
    )
}

/// A connection from `src` to the receiver on `port`, if it is held open
/// (waiting for its sender's proof) rather than closed at once.
async fn held(src: [u8; 4], port: u16) -> Option<tokio::net::TcpStream> {
    let sock = tokio::net::TcpSocket::new_v4().ok()?;
    sock.bind(SocketAddr::from((src, 0))).ok()?;
    let mut s = sock
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .ok()?;
    let mut b = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(700), s.read(&mut b)).await {
        Err(_) => Some(s),
        Ok(_) => None,
    }
}

const HERE: [u8; 4] = [127, 0, 0, 1];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_caps_connections_and_frees_a_place_when_one_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _receiver = receiver(
        dir.path(),
        &format!("127.0.0.1:{port}"),
        &["--max-connections", "2"],
    );
    let first = wait_for(Duration::from_secs(10), "the receiver up", async || {
        held(HERE, port).await
    })
    .await;
    let second = held(HERE, port).await.expect("a second connection is held");
    // Silent peers hold both places: a third is closed unread, at once.
    for _ in 0..3 {
        assert!(held(HERE, port).await.is_none(), "over the cap of 2");
    }
    // One leaves: its place is free again.
    drop(first);
    let third = wait_for(Duration::from_secs(5), "a place freed", async || {
        held(HERE, port).await
    })
    .await;
    drop((second, third));
}

/// One address holds at most `MAX_PER_ADDRESS` places; another address
/// still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_place_at_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _receiver = receiver(dir.path(), &format!("0.0.0.0:{port}"), &[]);
    let first = wait_for(Duration::from_secs(10), "the receiver up", async || {
        held(HERE, port).await
    })
    .await;
    let mut kept = vec![first];
    for _ in 1..MAX_PER_ADDRESS {
        kept.push(held(HERE, port).await.expect("a place"));
    }
    assert!(
        held(HERE, port).await.is_none(),
        "over the limit for one address"
    );
    assert!(
        held([127, 0, 0, 2], port).await.is_some(),
        "another address still gets in"
    );
    drop(kept);
}
