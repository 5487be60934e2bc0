//! Live pictures for the wall: one decoder task per camera (on the engine's
//! runtime, off the UI thread) waits on the engine's latest-frame channel,
//! decodes only the newest frame at the size its tile is shown, and leaves
//! the picture in a shared slot, and rings [`Feeds::fresh`]. The UI, woken by
//! [`crate::listen::pictures`], picks up whatever is newest, so 16 cameras at
//! 15 fps cost at most one redraw per frame pace, and a slow decode or a slow
//! screen only skips frames.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use iced::widget::image::Handle;
use tokio::sync::Notify;
use turbojpeg::Decompressor;

use super::app::Tile;
use super::decode::decode_to_width;
use cctv_engine::Engine;

/// How wide each camera's picture is shown, set by the UI on layout.
#[derive(Debug, Default)]
pub struct TileWidths {
    grid: AtomicU32,
    focus: Mutex<Option<(String, u32)>>,
}

impl TileWidths {
    pub fn set_layout(&self, grid: u32, focused: Option<String>, focus_width: u32) {
        self.grid.store(grid, Ordering::Relaxed);
        if let Ok(mut f) = self.focus.lock() {
            *f = focused.map(|id| (id, focus_width));
        }
    }

    pub fn width_for(&self, id: &str) -> u32 {
        if let Ok(f) = self.focus.lock()
            && let Some((fid, w)) = f.as_ref()
            && fid == id
        {
            return *w;
        }
        self.grid.load(Ordering::Relaxed).max(64)
    }
}

/// The decoders and the pictures they leave for the UI.
#[derive(Default)]
pub struct Feeds {
    pub widths: Arc<TileWidths>,
    latest: Arc<Mutex<HashMap<String, Tile>>>,
    /// Bumped on every new picture, so the UI copies only when something changed.
    generation: Arc<AtomicU64>,
    /// Rung on every new picture.
    pub fresh: Arc<Notify>,
    seen_generation: u64,
    running: HashSet<String>,
    /// Frames decoded in all, for the benchmark.
    pub decoded: Arc<AtomicU64>,
}

impl Feeds {
    /// Starts a decoder for each camera that has none.
    pub fn ensure(
        &mut self,
        engine: &Arc<Engine>,
        cameras: &[String],
        runtime: &tokio::runtime::Handle,
    ) {
        for id in cameras {
            if self.running.contains(id) {
                continue;
            }
            let Some(rx) = engine.watch_frames(id) else {
                continue;
            };
            self.running.insert(id.clone());
            runtime.spawn(decode_loop(
                id.clone(),
                rx,
                self.widths.clone(),
                self.latest.clone(),
                self.generation.clone(),
                self.fresh.clone(),
                self.decoded.clone(),
            ));
        }
    }

    /// The pictures that changed since the last call, if any did.
    pub fn take_new(&mut self) -> Option<HashMap<String, Tile>> {
        let g = self.generation.load(Ordering::Acquire);
        if g == self.seen_generation {
            return None;
        }
        self.seen_generation = g;
        self.latest.lock().ok().map(|m| m.clone())
    }
}

/// What to decode for a picture shown `width` wide: the agent's preview
/// when it is at least that wide (a wall of many cameras), else the frame.
pub fn source_for(frame: &cctv_engine::live::LiveFrame, width: u32) -> &[u8] {
    preview_for(frame, width).unwrap_or(&frame.jpeg)
}

/// The agent's preview, when it is at least `width` wide.
fn preview_for(frame: &cctv_engine::live::LiveFrame, width: u32) -> Option<&[u8]> {
    frame
        .preview
        .as_ref()
        .filter(|p| width > 0 && u32::from(p.width) >= width)
        .map(|p| &p.jpeg[..])
}

async fn decode_loop(
    camera: String,
    mut rx: tokio::sync::watch::Receiver<Option<Arc<cctv_engine::live::LiveFrame>>>,
    widths: Arc<TileWidths>,
    latest: Arc<Mutex<HashMap<String, Tile>>>,
    generation: Arc<AtomicU64>,
    fresh: Arc<Notify>,
    decoded: Arc<AtomicU64>,
) {
    let Ok(mut dec) = Decompressor::new() else {
        return;
    };
    // Tiles are small: the faster chroma upsampling is not visible there.
    let _ = dec.set_fast_upsample(true);
    loop {
        // The frame already there first, then each newer one; frames that
        // arrive during a decode are skipped, never queued.
        let frame = rx.borrow_and_update().clone();
        if let Some(frame) = frame {
            let width = widths.width_for(&camera);
            let Ok((result, back)) = tokio::task::spawn_blocking(move || {
                let r = match preview_for(&frame, width) {
                    // A preview that does not decode: the frame itself.
                    Some(preview) => decode_to_width(&mut dec, preview, width)
                        .or_else(|_| decode_to_width(&mut dec, &frame.jpeg, width)),
                    None => decode_to_width(&mut dec, &frame.jpeg, width),
                };
                (r.map(|img| (frame.seq, img)), dec)
            })
            .await
            else {
                return;
            };
            dec = back;
            if let Ok((seq, img)) = result {
                let tile = Tile {
                    seq,
                    image: Handle::from_rgba(img.width, img.height, img.pixels),
                };
                if let Ok(mut m) = latest.lock() {
                    m.insert(camera.clone(), tile);
                }
                decoded.fetch_add(1, Ordering::Relaxed);
                generation.fetch_add(1, Ordering::Release);
                fresh.notify_one();
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use cctv_engine::live::{LiveFrame, Preview};

    #[test]
    fn a_tile_no_wider_than_the_preview_decodes_the_preview() {
        let frame = LiveFrame {
            seq: 1,
            capture_us: 0,
            received_us: 0,
            width: 1280,
            height: 720,
            jpeg: Bytes::from_static(b"whole"),
            analysis: None,
            preview: Some(Preview {
                jpeg: Bytes::from_static(b"small"),
                width: 320,
                height: 180,
            }),
        };
        assert_eq!(source_for(&frame, 292), b"small");
        assert_eq!(source_for(&frame, 320), b"small");
        assert_eq!(
            source_for(&frame, 321),
            b"whole",
            "a larger tile: the frame"
        );
        assert_eq!(source_for(&frame, 0), b"whole", "full size: the frame");
        let plain = LiveFrame {
            preview: None,
            ..frame
        };
        assert_eq!(source_for(&plain, 292), b"whole");
    }
}
