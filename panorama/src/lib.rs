//! Panoramas on demand: footage (a video file, a folder of images, or a
//! camera's recordings) -> the frames that matter (`select`) -> OpenCV's
//! Stitcher in a capped worker process (`worker`, `stitch`) -> an image and a
//! thumbnail, or a failure in words with the tried frames saved as samples.
//! Blocking work: callers run it off the UI and ingest threads.
//!
//! [`Stitcher`] is the engine's [`PanoramaMaker`]: the `panel` binary hands
//! it to the engine, which knows nothing of OpenCV.

pub mod frames;
pub mod select;
pub mod stitch;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opencv::core::{Mat, Vector};
use opencv::imgcodecs;

pub use self::frames::{FrameError, for_each_frame};
use self::select::{Params, Selector, Stats};
use self::stitch::{Failure, Mode};
use self::worker::{JOB_FILE, Job, WorkerResult};
use cctv_engine::{PanoramaJob, PanoramaMade, PanoramaMaker, PanoramaNotMade};

/// Where the footage comes from.
#[derive(Debug, Clone)]
pub enum Source {
    Video(PathBuf),
    /// A folder of photos, each used as it is (no selection).
    Images(PathBuf),
    /// Recording files, each with an optional capture-time range to keep.
    Recordings(Vec<(PathBuf, Option<(i64, i64)>)>),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub source: Source,
    pub mode: Mode,
    /// The panorama image to write (JPEG); its thumbnail goes beside it.
    pub out: PathBuf,
    /// The `panel` binary that runs `stitch-worker`.
    pub worker: PathBuf,
    pub params: Params,
    /// Take every n-th frame instead of choosing (for comparisons).
    pub every: Option<usize>,
    /// Stitch with OpenCV's default settings instead of ours (for comparisons).
    pub opencv_defaults: bool,
    /// The whole job (selection and stitching) stops after this long.
    pub time_limit: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub out: PathBuf,
    pub thumb: PathBuf,
    pub width: i32,
    pub height: i32,
    pub stats: Stats,
    /// Footage positions of the frames handed to the stitcher.
    pub chosen: Vec<usize>,
    /// How many of them the stitcher kept.
    pub used: usize,
    pub select_ms: u128,
    pub stitch_ms: u128,
}

#[derive(Debug, Clone)]
pub struct Failed {
    pub failure: Failure,
    /// The frames that were tried, saved for the user to look at.
    pub samples: PathBuf,
    pub stats: Stats,
    pub chosen: Vec<usize>,
    pub stitch_ms: u128,
}

impl Failed {
    pub fn message(&self) -> String {
        self.failure.message()
    }
}

pub fn thumb_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("panorama");
    out.with_file_name(format!("{stem}_thumb.jpg"))
}

pub fn samples_dir(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("panorama");
    out.with_file_name(format!("{stem}_samples"))
}

/// Runs a whole panorama: selection, the worker, the result. `progress`
/// hears each stage; `cancel` stops it (the worker is killed).
pub fn run(
    req: &Request,
    cancel: &Arc<AtomicBool>,
    progress: &mut dyn FnMut(&str),
) -> Result<Report, Box<Failed>> {
    let samples = samples_dir(&req.out);
    let fail = |failure: Failure, stats: Stats, chosen: Vec<usize>, stitch_ms: u128| {
        Box::new(Failed {
            failure,
            samples: samples.clone(),
            stats,
            chosen,
            stitch_ms,
        })
    };
    progress("selecting frames");
    let t0 = Instant::now();
    let deadline = req.time_limit.map(|l| t0 + l);
    let (chosen, stats) =
        choose(req, cancel, deadline).map_err(|f| fail(f, Stats::default(), Vec::new(), 0))?;
    let indices: Vec<usize> = chosen.iter().map(|(i, _)| *i).collect();
    let select_ms = t0.elapsed().as_millis();
    // The frames go to the worker as files; on failure they stay as samples.
    let names = match write_samples(&samples, &chosen) {
        Ok(names) => names,
        Err(f) => return Err(fail(f, stats, indices, 0)),
    };
    if chosen.len() < 2 {
        return Err(fail(Failure::TooFewFrames(chosen.len()), stats, indices, 0));
    }
    let job = Job {
        mode: req.mode,
        ordered: !matches!(req.source, Source::Images(_)),
        opencv_defaults: req.opencv_defaults,
        frames: names,
        out: req.out.clone(),
        thumb: thumb_path(&req.out),
    };
    let written = serde_json::to_vec(&job)
        .map_err(|e| e.to_string())
        .and_then(|j| std::fs::write(samples.join(JOB_FILE), j).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return Err(fail(Failure::Other(e), stats, indices, 0));
    }
    progress("stitching");
    let t1 = Instant::now();
    let outcome = worker::run_job(&req.worker, &samples, cancel, deadline, progress);
    let stitch_ms = t1.elapsed().as_millis();
    match outcome {
        Ok(WorkerResult::Ok {
            width,
            height,
            used,
        }) => {
            let _ = std::fs::remove_dir_all(&samples);
            Ok(Report {
                out: req.out.clone(),
                thumb: job.thumb,
                width,
                height,
                stats,
                chosen: indices,
                used,
                select_ms,
                stitch_ms,
            })
        }
        Ok(WorkerResult::Failed { failure }) | Err(failure) => {
            let _ = std::fs::remove_file(samples.join(JOB_FILE));
            Err(fail(failure, stats, indices, stitch_ms))
        }
    }
}

/// The frames to stitch, with their footage positions: a folder's images
/// or every n-th frame as they are, otherwise the selector's choice.
fn choose(
    req: &Request,
    cancel: &AtomicBool,
    deadline: Option<Instant>,
) -> Result<(Vec<(usize, Mat)>, Stats), Failure> {
    let mut selector = Selector::new(req.params);
    let mut all = Vec::new();
    let use_all = matches!(req.source, Source::Images(_)) || req.every.is_some();
    let every = req.every.unwrap_or(1).max(1);
    let mut err = None;
    let mut seen = 0;
    let mut late = false;
    let read = for_each_frame(&req.source, &mut |i, m| {
        if cancel.load(Ordering::Acquire) {
            return false;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            late = true;
            return false;
        }
        seen += 1;
        if use_all {
            if i % every == 0 {
                all.push((i, m.clone()));
            }
        } else if let Err(e) = selector.push(i, m) {
            err = Some(e.message);
            return false;
        }
        true
    });
    if cancel.load(Ordering::Acquire) {
        return Err(Failure::Cancelled);
    }
    if late {
        return Err(Failure::TimedOut);
    }
    read.map_err(|e| Failure::Other(e.to_string()))?;
    if let Some(e) = err {
        return Err(Failure::Other(e));
    }
    if !use_all {
        let (c, s) = selector.finish().map_err(|e| Failure::Other(e.message))?;
        return Ok((c.into_iter().map(|c| (c.index, c.image)).collect(), s));
    }
    let n = all.len();
    if req.every.is_none() {
        all.truncate(req.params.max_frames);
    }
    let stats = Stats {
        seen,
        capped: n - all.len(),
        ..Stats::default()
    };
    Ok((all, stats))
}

/// Writes the chosen frames into `samples` (emptied first); their names.
fn write_samples(samples: &Path, chosen: &[(usize, Mat)]) -> Result<Vec<String>, Failure> {
    let _ = std::fs::remove_dir_all(samples);
    if let Err(e) = std::fs::create_dir_all(samples) {
        return Err(Failure::Other(format!(
            "cannot create {}: {e}",
            samples.display()
        )));
    }
    let mut names = Vec::new();
    for (k, (i, m)) in chosen.iter().enumerate() {
        let name = format!("frame_{k:02}_at_{i:05}.jpg");
        let ok = imgcodecs::imwrite(
            samples.join(&name),
            m,
            &Vector::<i32>::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, 95]),
        )
        .unwrap_or(false);
        if !ok {
            return Err(Failure::Other(format!(
                "cannot write samples in {}",
                samples.display()
            )));
        }
        names.push(name);
    }
    Ok(names)
}

/// Makes the engine's panoramas with [`run`], the worker being `worker`
/// (the `panel` binary, which has the `stitch-worker` command).
pub struct Stitcher {
    pub worker: PathBuf,
}

impl PanoramaMaker for Stitcher {
    fn make(
        &self,
        job: &PanoramaJob,
        cancel: &Arc<AtomicBool>,
        stage: &mut dyn FnMut(&str),
    ) -> Result<PanoramaMade, PanoramaNotMade> {
        let req = Request {
            source: Source::Recordings(job.recordings.clone()),
            mode: job.mode,
            out: job.out.clone(),
            worker: self.worker.clone(),
            params: Params::default(),
            every: None,
            opencv_defaults: false,
            time_limit: Some(job.time_limit),
        };
        match run(&req, cancel, stage) {
            Ok(r) => Ok(PanoramaMade {
                out: r.out,
                thumb: r.thumb,
                width: r.width.max(0) as u32,
                height: r.height.max(0) as u32,
                frames_seen: r.stats.seen,
                frames_chosen: r.chosen.len(),
                blurred: r.stats.blurred,
                duplicates: r.stats.duplicates,
                frames_used: r.used,
                stitch_ms: r.stitch_ms as u64,
            }),
            Err(f) => Err(PanoramaNotMade {
                message: f.message(),
                samples: f.samples,
                frames_seen: f.stats.seen,
                frames_chosen: f.chosen.len(),
                stitch_ms: f.stitch_ms as u64,
            }),
        }
    }
}
