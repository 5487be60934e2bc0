//! Real agents stream 1280x720 frames into an engine on loopback. For a
//! panel with a window, each live frame comes with the agent's 320 px copy
//! of the same picture, which the wall decodes for a small tile instead of
//! the whole frame; the recording holds the frames alone. An agent told
//! `--preview-width 0` sends none, and a headless server is sent none.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cctv_engine::live::LiveFrame;
use tokio::sync::watch;

use cctv_engine::Engine;
use cctv_engine::catalog::RecordingFilter;
use cctv_engine::config::PanelConfig;
use cctv_window::decode::decode_to_width;
use cctv_window::feeds::source_for;
use support::*;

/// Mean difference per channel (0 to 255) of two pictures of one size.
fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

/// The camera's next frame (a minute at most).
async fn next_frame(rx: &mut watch::Receiver<Option<Arc<LiveFrame>>>) -> Arc<LiveFrame> {
    wait_for(Duration::from_secs(60), "a frame", async || {
        rx.has_changed()
            .unwrap_or(false)
            .then(|| rx.borrow_and_update().clone())
            .flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_live_frame_brings_a_small_copy_the_wall_decodes_instead() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(PanelConfig {
        previews: true,
        ..config(dir.path())
    })
    .await
    .unwrap();
    let args = |extra: &[&'static str]| {
        let mut a = vec!["--source", "test-pattern:1280x720", "--fps", "10"];
        a.extend_from_slice(extra);
        a
    };
    let _with = start_agent(&enroll(&engine, "wide", "").await, &args(&[]));
    let _without = start_agent(
        &enroll(&engine, "plain", "").await,
        &args(&["--preview-width", "0"]),
    );

    let mut frames = engine.watch_frames("wide").unwrap();
    let frame = wait_for(
        Duration::from_secs(60),
        "a frame with its preview",
        async || {
            let f = frames.borrow_and_update().clone()?;
            f.preview.is_some().then_some(f)
        },
    )
    .await;
    let preview = frame.preview.clone().unwrap();
    assert_eq!((frame.width, frame.height), (1280, 720));
    assert_eq!((preview.width, preview.height), (320, 180));
    assert!(
        preview.jpeg.len() * 4 < frame.jpeg.len(),
        "a preview of {} bytes for a frame of {}",
        preview.jpeg.len(),
        frame.jpeg.len()
    );

    // The same picture: the frame decoded at a quarter of its size looks
    // like the preview, and unlike the frame before it.
    let mut dec = turbojpeg::Decompressor::new().unwrap();
    let small = decode_to_width(&mut dec, &preview.jpeg, 320).unwrap();
    let whole = decode_to_width(&mut dec, &frame.jpeg, 320).unwrap();
    assert_eq!((whole.width, whole.height), (small.width, small.height));
    let same = mean_difference(&small.pixels, &whole.pixels);
    assert!(
        same < 6.0,
        "the preview differs from its frame by {same:.1} a channel"
    );

    // A 4x4 wall's tile (292 px) decodes the preview; a larger one, the frame.
    assert_eq!(source_for(&frame, 292).as_ptr(), preview.jpeg.as_ptr());
    assert_eq!(source_for(&frame, 640).as_ptr(), frame.jpeg.as_ptr());

    // An agent told to send none sends frames alone.
    let mut plain = engine.watch_frames("plain").unwrap();
    let mut seen = 0;
    while seen < 5 {
        let f = next_frame(&mut plain).await;
        assert!(f.preview.is_none(), "frame {} came with a preview", f.seq);
        seen += 1;
    }

    // What is recorded is the frames: 1280x720 pictures, never the previews.
    let recording = wait_for(
        Duration::from_secs(60),
        "a recording of the wide camera",
        async || {
            let rows = engine
                .catalog()
                .recordings(&RecordingFilter {
                    camera_id: Some("wide".into()),
                    ..Default::default()
                })
                .await
                .ok()?;
            rows.into_iter().find(|r| r.frames >= 5)
        },
    )
    .await;
    assert_eq!((recording.width, recording.height), (1280, 720));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_server_is_sent_frames_alone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(config(dir.path())).await.unwrap();
    let _agent = start_agent(
        &enroll(&engine, "wide", "").await,
        &["--source", "test-pattern:1280x720", "--fps", "10"],
    );
    let mut frames = engine.watch_frames("wide").unwrap();
    for _ in 0..5 {
        let f = next_frame(&mut frames).await;
        assert_eq!((f.width, f.height), (1280, 720));
        assert!(f.preview.is_none(), "frame {} came with a preview", f.seq);
    }
}
