//! Evidence end to end: recordings from a real ingest run are exported and
//! verified; a flipped byte is caught and named; a dispatch to a real
//! `panel receive` survives the receiver being killed mid-transfer and the
//! sender restarting; the archive imports what it received; hostile input
//! to the receiver is refused and writes nothing outside its directory.

mod support;

use cctv_engine::catalog::DispatchState;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cctv_engine::Engine;
use cctv_engine::catalog::Catalog;
use cctv_engine::evidence::dispatch::TargetConfig;
use cctv_engine::evidence::transfer::{Control, read_control, write_control};
use support::*;
use tokio_util::sync::CancellationToken;

/// Registers a sender on the receiving side (`panel sender add`) and reads
/// back the dispatch target it prints.
fn add_sender(dir: &Path, port: u16, id: &str) -> TargetConfig {
    let out = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["sender", "add", "--id", id, "--address"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data")
        .arg(dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[derive(serde::Deserialize)]
    struct Printed {
        dispatch_targets: Vec<TargetConfig>,
    }
    let p: Printed = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    p.dispatch_targets.into_iter().next().unwrap()
}

/// A connection to the receiver, past TLS and the sender's proof.
async fn authenticated(t: &TargetConfig) -> Result<Box<dyn cctv_engine::tls::Io>, String> {
    let (sender, secret, pin) = t.credentials().map_err(|e| e.to_string())?;
    let mut s = cctv_engine::tls::connect(t.address.as_deref().unwrap(), pin)
        .await
        .map_err(|e| e.to_string())?;
    let Control::Challenge { nonce } = read_control(&mut s).await.map_err(|e| e.to_string())?
    else {
        return Err("no challenge".into());
    };
    let nonce: [u8; 32] = hex::decode(nonce).unwrap().try_into().unwrap();
    let proof = hex::encode(cctv_protocol::auth::sender_proof(&secret, &nonce, &sender));
    write_control(&mut s, &Control::Hello { sender, proof })
        .await
        .map_err(|e| e.to_string())?;
    match read_control(&mut s).await.map_err(|e| e.to_string())? {
        Control::Welcome => Ok(s),
        Control::Refused { reason } => Err(reason),
        other => Err(format!("{other:?}")),
    }
}

fn start_receiver(dir: &Path, port: u16) -> Proc {
    let log = std::fs::File::create(dir.join("receive.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_panel"))
        .args(["receive", "--listen", &format!("127.0.0.1:{port}"), "--dir"])
        .arg(dir.join("inbox"))
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--recordings")
        .arg(dir.join("recordings"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start panel receive");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Proc(child)
}

/// Records two cameras for a few seconds in 1 s segments.
async fn record(dir: &Path) -> cctv_engine::config::PanelConfig {
    let mut cfg = config(dir);
    cfg.segment_secs = 1;
    let engine = Engine::start(cfg.clone()).await.unwrap();
    let door = FakeCamera::start(&enroll(&engine, "door", "Front door").await, 10).await;
    let yard = FakeCamera::start(&enroll(&engine, "yard", "Yard").await, 10).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    drop(door);
    drop(yard);
    tokio::time::sleep(Duration::from_millis(300)).await;
    engine.shutdown().await;
    cfg
}

/// Where a zip entry's data starts in the file.
fn entry_data_offset(zip: &Path, name: &str) -> u64 {
    let mut z = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let e = z.by_name(name).unwrap();
    e.data_start().expect("data offset known")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_verify_and_a_flipped_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = record(dir.path()).await;
    let data = cfg.data_dir.to_str().unwrap().to_string();
    let recs = cfg.recordings_dir.to_str().unwrap().to_string();
    let out = panel_cmd(&[
        "export",
        "--data",
        &data,
        "--recordings",
        &recs,
        "--camera",
        "door",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zip = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(
        zip.starts_with(cfg.data_dir.join("exports")),
        "{}",
        zip.display()
    );
    let name = zip.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("door_") && name.ends_with(".zip"),
        "{name}"
    );

    let out = panel_cmd(&["verify", zip.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("INTACT"), "{text}");

    // The manifest says what the catalog says, and files are unchanged.
    let report = cctv_engine::evidence::verify::verify(&zip).unwrap();
    let m = &report.manifest;
    assert_eq!(m.cameras.len(), 1);
    assert_eq!(m.cameras[0].name, "Front door");
    let catalog = Catalog::open(&cfg.db_path()).await.unwrap();
    let rows = cctv_engine::evidence::export::select(&catalog, Some("door"), None, None)
        .await
        .unwrap();
    assert_eq!(m.files.len(), rows.len());
    assert!(rows.len() >= 3);
    for (f, r) in m.files.iter().zip(&rows) {
        assert_eq!(f.path, format!("recordings/{}", r.path));
        assert_eq!(
            (f.start_us, f.end_us, f.frames, f.bytes),
            (r.start_us, r.end_us, r.frames, r.bytes)
        );
        let on_disk =
            cctv_engine::evidence::export::sha256_file(&cfg.recordings_dir.join(&r.path)).unwrap();
        assert_eq!(f.sha256, on_disk);
    }
    assert!(
        m.events.iter().any(|e| e.kind == "offline"),
        "the camera's drop is in the manifest"
    );
    let exports = catalog.exports(10).await.unwrap();
    assert_eq!(exports.len(), 1);
    assert_eq!(
        exports[0].sha256,
        cctv_engine::evidence::export::sha256_file(&zip).unwrap()
    );

    // Flip one byte of the second file, in a copy.
    let victim = m.files[1].path.clone();
    let copy = dir.path().join("tampered.zip");
    std::fs::copy(&zip, &copy).unwrap();
    let at = entry_data_offset(&copy, &victim) + 100;
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[at as usize] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();
    let out = panel_cmd(&["verify", copy.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NOT INTACT"), "{text}");
    let problem_lines: Vec<&str> = text.lines().filter(|l| l.contains("PROBLEM")).collect();
    assert_eq!(problem_lines.len(), 1, "{text}");
    assert!(problem_lines[0].contains(&victim), "{text}");
    // The original is untouched and still verifies.
    assert!(
        panel_cmd(&["verify", zip.to_str().unwrap()])
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_resumes_after_the_receiver_dies_and_survives_a_sender_restart() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let mut cfg = record(dir.path()).await;
    let port = free_port();
    cfg.dispatch_targets = vec![add_sender(&archive, port, "hq")];

    // Export both cameras; slow the upload so the receiver can die mid-way.
    let engine = Engine::start(cfg.clone()).await.unwrap();
    let rows = engine.select_recordings(None, None, None).await.unwrap();
    let export = engine
        .export(rows, None, CancellationToken::new())
        .await
        .unwrap();
    let size = export.bytes as u64;
    engine.shutdown().await;
    drop(engine);
    cfg.dispatch_rate_limit = size / 3;
    let engine = Engine::start(cfg.clone()).await.unwrap();

    let mut receiver = start_receiver(&archive, port);
    let ids = engine.dispatch(export.id, None).await.unwrap();
    assert_eq!(ids.len(), 1);
    let id = ids[0];
    wait_for(Duration::from_secs(20), "a third sent", async || {
        engine
            .dispatch_progress()
            .get(&id)
            .filter(|(have, total)| *have > total / 3)
            .map(|_| ())
    })
    .await;
    receiver.signal("KILL");
    let _ = receiver.0.wait();
    let partial_dir = archive.join("inbox/.incoming");
    let kept: u64 = std::fs::read_dir(&partial_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        kept > size / 4,
        "the receiver kept {kept} of {size} bytes to resume from"
    );

    // The sender is restarted while the dispatch is pending.
    let catalog = engine.catalog().clone();
    wait_for(Duration::from_secs(20), "a failed attempt", async || {
        let d = catalog.dispatch(id).await.unwrap().unwrap();
        (d.attempts >= 1 && d.state == DispatchState::Pending).then_some(())
    })
    .await;
    engine.shutdown().await;
    drop(engine);
    let _receiver = start_receiver(&archive, port);
    let engine = Engine::start(cfg.clone()).await.unwrap();
    let done = wait_for(Duration::from_secs(60), "dispatch done", async || {
        let d = engine.catalog().dispatch(id).await.unwrap().unwrap();
        (d.state == DispatchState::Done).then_some(d)
    })
    .await;
    assert!(
        (done.bytes_sent as u64) < size * 3 / 2,
        "resumed, not restarted: {} bytes sent for a {size} byte export",
        done.bytes_sent
    );
    engine.shutdown().await;

    // The received copy verifies, and the archive lists the recordings.
    let received = archive
        .join("inbox")
        .join(Path::new(&export.path).file_name().unwrap());
    let report = cctv_engine::evidence::verify::verify(&received).unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    let archive_catalog = Catalog::open(&archive.join("data/panel.db")).await.unwrap();
    let imported = archive_catalog
        .recordings(&Default::default())
        .await
        .unwrap();
    assert_eq!(imported.len() as i64, export.files);
    for r in &imported {
        assert!(r.detail.contains("imported from"), "{r:?}");
        assert!(archive.join("recordings").join(&r.path).exists());
    }
    let cams = archive_catalog.cameras().await.unwrap();
    assert!(cams.iter().any(|c| c.name == "Front door"));
}

/// Offers `data` under `name` with `sha` and returns the receiver's last word.
async fn offer(t: &TargetConfig, name: &str, sha: &str, size: u64, data: &[u8]) -> Control {
    let mut s = authenticated(t).await.unwrap();
    write_control(
        &mut s,
        &Control::Offer {
            name: name.into(),
            size,
            sha256: sha.into(),
        },
    )
    .await
    .unwrap();
    match read_control(&mut s).await {
        Ok(Control::Resume { .. }) => {}
        Ok(other) => return other,
        Err(e) => panic!("{e}"),
    }
    use tokio::io::AsyncWriteExt;
    let _ = s.write_all(data).await;
    if (data.len() as u64) < size {
        drop(s);
        return Control::Refused {
            reason: "(closed early by the test)".into(),
        };
    }
    read_control(&mut s).await.unwrap_or(Control::Refused {
        reason: "(no answer)".into(),
    })
}

fn sha_of(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Every file under `root`, relative.
fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_refuses_bad_input_and_writes_nothing_outside_its_directory() {
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("a/b/archive");
    std::fs::create_dir_all(&archive).unwrap();
    let port = free_port();
    let before = all_files(root.path());
    let hq = add_sender(&archive, port, "hq");
    let _receiver = start_receiver(&archive, port);
    let addr = &hq;

    // A wrong hash.
    let data = b"PK not really a zip, but the hash is the point".repeat(100);
    let reply = offer(addr, "x.zip", &"0".repeat(64), data.len() as u64, &data).await;
    assert!(
        matches!(&reply, Control::Refused { reason } if reason.contains("SHA-256")),
        "{reply:?}"
    );

    // A path in the name.
    let reply = offer(
        addr,
        "../../evil.zip",
        &sha_of(&data),
        data.len() as u64,
        &data,
    )
    .await;
    assert!(
        matches!(&reply, Control::Refused { reason } if reason.contains("name")),
        "{reply:?}"
    );

    // A truncated transfer: nothing final is written.
    let _ = offer(
        addr,
        "cut.zip",
        &sha_of(&data),
        data.len() as u64,
        &data[..data.len() / 2],
    )
    .await;

    // A zip whose manifest points out of the directory.
    let mut evil = Vec::new();
    {
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(&mut evil));
        let payload = b"root:x:0:0::/root:/bin/sh\n";
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("../../etc/passwd", opts).unwrap();
        z.write_all(payload).unwrap();
        let manifest = serde_json::json!({
            "format": "cctv-evidence/1",
            "panel": {"name": "evil", "version": "0"},
            "created_us": 0, "created": "", "from_us": 0, "to_us": 0,
            "cameras": [{"id": "door", "name": "x"}],
            "files": [{"path": "../../etc/passwd", "camera_id": "door", "start_us": 0, "end_us": 0,
                       "frames": 1, "bytes": payload.len(), "sha256": sha_of(payload),
                       "status": "complete", "width": 1, "height": 1}],
            "events": []
        });
        z.start_file("manifest.json", opts).unwrap();
        z.write_all(manifest.to_string().as_bytes()).unwrap();
        z.finish().unwrap();
    }
    let reply = offer(addr, "evil.zip", &sha_of(&evil), evil.len() as u64, &evil).await;
    assert!(
        matches!(&reply, Control::Refused { reason } if reason.contains("unsafe path")),
        "{reply:?}"
    );

    // Oversize control message: the connection is dropped.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = authenticated(&hq).await.unwrap();
        s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }

    // Senders that cannot prove who they are get nowhere.
    let wrong = TargetConfig {
        secret: Some("11".repeat(32)),
        ..hq.clone()
    };
    assert_eq!(
        authenticated(&wrong).await.err().as_deref(),
        Some("wrong secret for this sender")
    );
    let stranger = TargetConfig {
        sender_id: Some("stranger".into()),
        ..hq.clone()
    };
    let refused = authenticated(&stranger).await.err().unwrap();
    assert!(refused.contains("unknown sender"), "{refused}");
    // Plain TCP to the TLS port: not even a challenge.
    let plain = TargetConfig {
        fingerprint: None,
        plain_tcp: true,
        ..hq.clone()
    };
    assert!(authenticated(&plain).await.is_err());
    // A certificate other than the pinned one: the sender stops itself.
    let elsewhere = TargetConfig {
        fingerprint: Some(format!("sha256:{}", "00".repeat(32))),
        ..hq.clone()
    };
    let err = authenticated(&elsewhere).await.err().unwrap();
    assert!(err.contains("not the pinned"), "{err}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Nothing was written outside the archive directory, no export was kept,
    // and nothing was imported.
    let after = all_files(root.path());
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    for p in &new {
        assert!(
            p.starts_with("a/b/archive"),
            "wrote {} outside the archive",
            p.display()
        );
        let s = p.to_string_lossy();
        assert!(
            s.contains(".incoming") || s.contains("/data/") || s.ends_with("receive.log"),
            "unexpected file {s}"
        );
    }
    assert!(
        !new.iter().any(|p| p.to_string_lossy().ends_with(".zip")),
        "{new:?}"
    );
    let log = std::fs::read_to_string(archive.join("receive.log")).unwrap();
    for reason in [
        "SHA-256",
        "not a plain .zip file name",
        "truncated transfer",
        "unsafe path",
        "over the limit",
        "wrong secret for this sender",
        "unknown sender",
        "TLS handshake failed",
    ] {
        assert!(log.contains(reason), "no log line with {reason:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_dispatch_sends_each_finished_segment_to_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let nas = dir.path().join("nas");
    let mut cfg = config(dir.path());
    cfg.segment_secs = 1;
    cfg.dispatch_targets = vec![TargetConfig {
        name: "nas".into(),
        dir: Some(nas.clone()),
        ..Default::default()
    }];
    let engine = Engine::start(cfg).await.unwrap();
    engine.set_auto_dispatch(true).await.unwrap();
    let cam = FakeCamera::start(&enroll(&engine, "gate", "Gate").await, 10).await;
    let done = wait_for(
        Duration::from_secs(30),
        "three segments dispatched",
        async || {
            let d = engine.catalog().dispatches(100).await.unwrap();
            let done: Vec<_> = d
                .into_iter()
                .filter(|d| d.state == DispatchState::Done)
                .collect();
            (done.len() >= 3).then_some(done)
        },
    )
    .await;
    drop(cam);
    for d in &done {
        let e = engine.catalog().export(d.export_id).await.unwrap().unwrap();
        assert_eq!(e.files, 1, "one segment per export");
        let copy = nas.join(Path::new(&e.path).file_name().unwrap());
        assert_eq!(
            cctv_engine::evidence::export::sha256_file(&copy).unwrap(),
            e.sha256
        );
        assert!(
            cctv_engine::evidence::verify::verify(&copy)
                .unwrap()
                .intact()
        );
    }
    // Off: no more.
    engine.set_auto_dispatch(false).await.unwrap();
    assert!(!engine.auto_dispatch());
    engine.shutdown().await;
}

/// A receiver that refuses the sender (a wrong secret) will refuse it again:
/// the dispatch is given up at once, with the receiver's reason, instead of
/// retried for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_the_receiver_refuses_is_given_up_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let mut cfg = record(dir.path()).await;
    let port = free_port();
    let hq = add_sender(&archive, port, "hq");
    cfg.dispatch_targets = vec![TargetConfig {
        secret: Some("11".repeat(32)),
        ..hq
    }];
    let _receiver = start_receiver(&archive, port);
    let engine = Engine::start(cfg).await.unwrap();
    let rows = engine.select_recordings(None, None, None).await.unwrap();
    let export = engine
        .export(rows, None, CancellationToken::new())
        .await
        .unwrap();
    let id = engine.dispatch(export.id, None).await.unwrap()[0];
    let catalog = engine.catalog().clone();
    let row = wait_for(Duration::from_secs(20), "the dispatch to end", async || {
        catalog
            .dispatch(id)
            .await
            .ok()
            .flatten()
            .filter(|d| d.state != DispatchState::Pending)
    })
    .await;
    assert_eq!(row.state, DispatchState::Failed, "{row:?}");
    assert_eq!(row.attempts, 1, "{row:?}");
    assert!(
        row.last_error
            .contains("refused: wrong secret for this sender"),
        "{}",
        row.last_error
    );
    engine.shutdown().await;
}
