//! Store-and-forward checks shared by its tests and benchmark: an agent's
//! frame log (`--frame-log`: what it captured, what each panel
//! acknowledged), and the frames recordings hold, read with ffprobe.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cctv_engine::catalog::{Catalog, RecordingFilter, RecordingRow};

use super::ffprobe;

/// What an agent's frame log says: frames captured (seq -> capture time)
/// and ranges acknowledged, by panel.
#[derive(Debug, Default)]
pub struct AgentLog {
    pub captured: BTreeMap<u64, i64>,
    pub acked: Vec<(String, u64, u64)>,
}

pub fn read_log(path: &Path) -> AgentLog {
    let mut log = AgentLog::default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["captured", seq, us] => {
                log.captured
                    .insert(seq.parse().unwrap(), us.parse().unwrap());
            }
            ["acked", panel, first, last] => log.acked.push((
                panel.to_string(),
                first.parse().unwrap(),
                last.parse().unwrap(),
            )),
            _ => {}
        }
    }
    log
}

impl AgentLog {
    pub fn acked_by(&self, panel: Option<&str>) -> BTreeSet<u64> {
        self.acked
            .iter()
            .filter(|(p, _, _)| panel.is_none_or(|want| p == want))
            .flat_map(|(_, a, b)| *a..=*b)
            .collect()
    }

    /// Frames captured up to `cutoff_us`.
    pub fn captured_until(&self, cutoff_us: i64) -> Vec<(u64, i64)> {
        self.captured
            .iter()
            .filter(|(_, t)| **t <= cutoff_us)
            .map(|(s, t)| (*s, *t))
            .collect()
    }
}

/// Waits until every frame captured up to `cutoff_us` is acknowledged.
pub async fn until_acked(log: &Path, cutoff_us: i64, limit: Duration) -> AgentLog {
    until_acked_from(log, 0, cutoff_us, limit).await
}

/// Waits until every frame captured in `from_us..=cutoff_us` is acknowledged.
pub async fn until_acked_from(
    log: &Path,
    from_us: i64,
    cutoff_us: i64,
    limit: Duration,
) -> AgentLog {
    let start = Instant::now();
    loop {
        let l = read_log(log);
        let acked = l.acked_by(None);
        let due: Vec<_> = l
            .captured_until(cutoff_us)
            .into_iter()
            .filter(|(_, t)| *t >= from_us)
            .collect();
        let missing: Vec<_> = due.iter().filter(|(s, _)| !acked.contains(s)).collect();
        if !due.is_empty() && missing.is_empty() {
            return l;
        }
        assert!(
            start.elapsed() < limit,
            "{} of {} frames captured before the cutoff not acknowledged after {limit:?}: {:?}",
            missing.len(),
            due.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every frame's capture time in `rows`, from ffprobe: the file's start
/// plus each frame's time in it (whole milliseconds). Checks ffprobe's
/// count against the catalog's, and that the files do not overlap.
pub fn probed_times(recordings: &Path, rows: &[RecordingRow]) -> Vec<i64> {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.start_us);
    let mut times = Vec::new();
    let mut prev_end = i64::MIN;
    for r in &rows {
        let probe = ffprobe(&recordings.join(&r.path));
        assert_eq!(
            probe.frames as i64, r.frames,
            "ffprobe and the catalog: {r:?}"
        );
        assert!(
            r.start_us > prev_end,
            "recordings overlap: {r:?} starts before the one before it ends, in {rows:#?}"
        );
        prev_end = r.end_us;
        let t: Vec<i64> = probe
            .pts
            .iter()
            .map(|s| r.start_us + (s * 1e6).round() as i64)
            .collect();
        assert!(
            t.windows(2).all(|w| w[0] < w[1]),
            "frames out of order in {}",
            r.path
        );
        times.extend(t);
    }
    times
}

/// Rows whose span holds `t`, for a failure's message.
pub fn rows_at(rows: &[RecordingRow], t: i64) -> Vec<&RecordingRow> {
    rows.iter()
        .filter(|r| (r.start_us - 1_000..=r.end_us + 1_000).contains(&t))
        .collect()
}

/// No frame is in `rows` twice (`recorded`: their frames' times).
pub fn assert_once(recorded: &[i64], rows: &[RecordingRow]) {
    let mut sorted = recorded.to_vec();
    sorted.sort_unstable();
    let twice: Vec<_> = sorted.windows(2).filter(|w| w[1] - w[0] <= 2_000).collect();
    assert!(
        twice.is_empty(),
        "frames recorded twice: {twice:?} in {:#?}",
        twice.first().map(|w| rows_at(rows, w[0]))
    );
}

/// Every frame in `due` is in `recorded` (within the millisecond files
/// keep).
pub fn assert_all_recorded(due: &[(u64, i64)], recorded: &[i64]) {
    let mut sorted = recorded.to_vec();
    sorted.sort_unstable();
    let missing: Vec<_> = due
        .iter()
        .filter(|(_, t)| {
            let i = sorted.partition_point(|r| *r < t - 1_000);
            sorted.get(i).is_none_or(|r| (r - t).abs() > 1_000)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} captured frames are not in the recordings, e.g. {:?}",
        missing.len(),
        due.len(),
        &missing[..missing.len().min(5)]
    );
}

pub fn frame_log(dir: &Path) -> PathBuf {
    dir.join("frames.log")
}

pub fn agent_flags<'a>(log: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--source",
        "test-pattern:320x240",
        "--fps",
        "10",
        "--no-analysis",
        "--frame-log",
        log.to_str().unwrap(),
    ];
    v.extend_from_slice(extra);
    v
}

pub async fn all_recordings(catalog: &Catalog, camera: &str) -> Vec<RecordingRow> {
    catalog
        .recordings(&RecordingFilter {
            camera_id: Some(camera.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Waits until `camera` has delivered at least `frames` frames.
pub async fn until_frames(engine: &cctv_engine::Engine, camera: &str, frames: u64) {
    super::wait_for(
        Duration::from_secs(30),
        "frames from the camera",
        async || {
            engine
                .camera(camera)
                .filter(|c| c.frames_received >= frames)
                .map(|_| ())
        },
    )
    .await
}

/// How many of `due` were captured in `range`.
pub fn captured_in(due: &[(u64, i64)], range: std::ops::Range<i64>) -> usize {
    due.iter().filter(|(_, t)| range.contains(t)).count()
}
