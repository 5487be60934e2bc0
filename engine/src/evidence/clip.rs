//! Clips: an export of exactly a time range. Each camera's frames captured
//! in the range are cut from its recordings at frame boundaries (every
//! MJPEG frame stands alone) into one new recording file per camera, with
//! each frame's bytes and capture time unchanged, then packed like any
//! export; the manifest names the recordings each clip was cut from.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use cctv_mkv::mux::{MkvMuxer, SegmentInfo, apply_frame};
use cctv_mkv::scan::{self, FrameRef};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::export::{
    ExportError, Item, Places, Progress, finish, io_err, manifest_over, off_thread, select,
    write_zip, zip_name,
};
use super::manifest::{ClipSource, FileEntry};
use crate::catalog::{Catalog, ExportRow, RecordingRow};
use crate::time::{now_us, utc_day_and_stamp};

/// The frames of one recording that fall in the range.
struct Cut {
    row: RecordingRow,
    path: PathBuf,
    /// Index of the first frame taken, and the frames with their capture times.
    first: usize,
    frames: Vec<(i64, FrameRef)>,
    /// The recording has sound, and its packets in the range.
    has_audio: bool,
    audio: Vec<(i64, FrameRef)>,
}

/// Exports `[from_us, to_us]` of `cameras` (every camera when empty) as one
/// clip per camera; finished recordings only.
pub async fn export_range(
    catalog: &Catalog,
    places: &Places,
    cameras: &[String],
    from_us: i64,
    to_us: i64,
    progress: Option<watch::Sender<Progress>>,
    cancel: CancellationToken,
) -> Result<ExportRow, ExportError> {
    if to_us < from_us {
        return Err(ExportError::BadRange);
    }
    let mut rows = Vec::new();
    if cameras.is_empty() {
        rows = select(catalog, None, Some(from_us), Some(to_us)).await?;
    } else {
        for c in cameras {
            rows.extend(select(catalog, Some(c), Some(from_us), Some(to_us)).await?);
        }
    }
    let mut camera_ids: Vec<String> = rows.iter().map(|r| r.camera_id.clone()).collect();
    camera_ids.sort();
    camera_ids.dedup();
    if camera_ids.is_empty() {
        return Err(ExportError::Nothing);
    }
    // An open end (the CLI's --from or --to alone) stops at the footage.
    let from_us = from_us.max(rows.iter().map(|r| r.start_us).min().unwrap_or(from_us));
    let to_us = to_us.min(rows.iter().map(|r| r.end_us).max().unwrap_or(to_us));
    let created_us = now_us();
    let manifest = manifest_over(
        catalog,
        places,
        camera_ids.clone(),
        from_us,
        to_us,
        created_us,
    )
    .await?;
    let dir = places.data_dir.join("exports");
    let base = format!("{}_clip", zip_name(&camera_ids, from_us, to_us));
    let recordings_dir = places.recordings_dir.clone();
    let ids = camera_ids.clone();
    let outcome = off_thread(cancel, move |cancelled| {
        // The clips are made beside the exports, packed, then removed.
        let work = dir.join(format!(".clip-{created_us}"));
        let made = cut_all(
            &recordings_dir,
            &work,
            &ids,
            &rows,
            from_us,
            to_us,
            cancelled,
        )
        .and_then(|items| write_zip(&dir, &base, items, manifest, progress, cancelled));
        let _ = std::fs::remove_dir_all(&work);
        made
    })
    .await;
    finish(catalog, places, created_us, &camera_ids, outcome).await
}

/// One clip file per camera with frames in the range, in `work`.
fn cut_all(
    recordings_dir: &Path,
    work: &Path,
    cameras: &[String],
    rows: &[RecordingRow],
    from_us: i64,
    to_us: i64,
    cancelled: &AtomicBool,
) -> Result<Vec<Item>, ExportError> {
    std::fs::create_dir_all(work).map_err(io_err(work))?;
    let mut items = Vec::new();
    for camera in cameras {
        let mut cuts = Vec::new();
        for r in rows.iter().filter(|r| &r.camera_id == camera) {
            let path = recordings_dir.join(&r.path);
            let index = scan::scan(&path).map_err(|e| ExportError::Recording {
                path: r.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            let times: Vec<(i64, FrameRef)> = index
                .frames
                .iter()
                .map(|f| (index.capture_us(f), *f))
                .collect();
            let first = times.partition_point(|(t, _)| *t < from_us);
            let frames: Vec<_> = times[first..]
                .iter()
                .take_while(|(t, _)| *t <= to_us)
                .copied()
                .collect();
            let audio = index
                .audio
                .iter()
                .map(|f| (index.capture_us(f), *f))
                .filter(|(t, _)| (from_us..=to_us).contains(t))
                .collect();
            if !frames.is_empty() {
                cuts.push(Cut {
                    row: r.clone(),
                    path,
                    first,
                    frames,
                    has_audio: index.has_audio,
                    audio,
                });
            }
        }
        if let Some(item) = write_clip(work, camera, from_us, to_us, cuts, cancelled)? {
            items.push(item);
        }
    }
    if items.is_empty() {
        return Err(ExportError::Nothing);
    }
    Ok(items)
}

/// Writes one camera's clip; its export item, or nothing without frames.
fn write_clip(
    work: &Path,
    camera: &str,
    from_us: i64,
    to_us: i64,
    mut cuts: Vec<Cut>,
    cancelled: &AtomicBool,
) -> Result<Option<Item>, ExportError> {
    cuts.sort_by_key(|c| c.frames[0].0);
    let (Some(first), Some(last)) = (
        cuts.first().map(|c| c.frames[0].0),
        cuts.last().and_then(|c| c.frames.last()).map(|f| f.0),
    ) else {
        return Ok(None);
    };
    let (day, a) = utc_day_and_stamp(from_us);
    let (_, b) = utc_day_and_stamp(to_us);
    let name = format!("{camera}_{a}_{b}_clip.mkv");
    let out_path = work.join(&name);
    let out = File::create(&out_path).map_err(io_err(&out_path))?;
    let mut out = BufWriter::new(out);
    let (width, height) = (cuts[0].row.width, cuts[0].row.height);
    let info = SegmentInfo {
        title: format!("{camera}: clip of {a} to {b}"),
        width: width.max(0) as u32,
        height: height.max(0) as u32,
        origin_us: first,
        audio: cuts.iter().any(|c| c.has_audio),
    };
    let (mut mux, head) = MkvMuxer::new(&info);
    out.write_all(&head).map_err(io_err(&out_path))?;
    let mut sources = Vec::new();
    for cut in &cuts {
        let mut src = File::open(&cut.path).map_err(|source| ExportError::Recording {
            path: cut.row.path.clone(),
            source,
        })?;
        let read = |src: &mut File, block: &FrameRef| {
            scan::read_frame(src, block).map_err(|source| ExportError::Recording {
                path: cut.row.path.clone(),
                source,
            })
        };
        // The sound goes in among the frames by capture time, up to the
        // last frame's.
        let mut sound = cut.audio.iter().peekable();
        for (capture_us, frame) in &cut.frames {
            if cancelled.load(Ordering::Acquire) {
                return Err(ExportError::Cancelled);
            }
            while let Some((a_us, block)) = sound.next_if(|(a_us, _)| a_us <= capture_us) {
                let opus = read(&mut src, block)?;
                let end = mux.bytes();
                if let Some(w) = mux.push_audio(*a_us, opus.len()) {
                    apply_frame(&mut out, &w, &opus, end).map_err(io_err(&out_path))?;
                }
            }
            let jpeg = read(&mut src, frame)?;
            let end = mux.bytes();
            let w = mux.push(*capture_us, jpeg.len());
            apply_frame(&mut out, &w, &jpeg, end).map_err(io_err(&out_path))?;
        }
        sources.push(ClipSource {
            recording: cut.row.path.clone(),
            start_us: cut.row.start_us,
            end_us: cut.row.end_us,
            first: cut.first as i64,
            frames: cut.frames.len() as i64,
        });
    }
    let summary = mux.finish().apply(&mut out).map_err(io_err(&out_path))?;
    let file = out
        .into_inner()
        .map_err(|e| io_err(&out_path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&out_path))?;
    Ok(Some(Item {
        source: out_path,
        entry: FileEntry {
            path: format!("recordings/{camera}/{day}/{name}"),
            camera_id: camera.to_string(),
            start_us: first,
            end_us: last,
            frames: summary.frames as i64,
            bytes: 0,
            sha256: String::new(),
            status: "complete".into(),
            width,
            height,
            clip_of: sources,
        },
    }))
}
