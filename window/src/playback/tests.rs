use super::*;
use cctv_engine::FrameRef;
use cctv_engine::catalog::{EventKind, RecordingStatus};

const S: i64 = 1_000_000;
/// A start time far enough from now that no recording looks "being written".
const T0: i64 = 1_700_000_000 * S;

fn row(id: i64, start: i64, frames: i64, every_ms: i64) -> (RecordingRow, Arc<Scan>) {
    let scan = Scan {
        frames: (0..frames)
            .map(|i| FrameRef {
                time_ms: i * every_ms,
                pos: 0,
                len: 1,
            })
            .collect(),
        origin_us: start,
        ..Default::default()
    };
    let r = RecordingRow {
        server_id: String::new(),
        id,
        camera_id: "c".into(),
        path: format!("c/{id}.mkv"),
        start_us: start,
        end_us: start + (frames - 1) * every_ms * 1000,
        frames,
        bytes: 1,
        width: 1,
        height: 1,
        status: RecordingStatus::Complete,
        detail: String::new(),
        backfilled: false,
    };
    (r, Arc::new(scan))
}

/// A camera with two 10 s recordings at 10 fps, 5 s apart (offline in
/// between), a motion event in the second; playing from the first's start.
fn setup(now: Instant) -> (Playback, Vec<(RecordingRow, Arc<Scan>)>) {
    let recs = vec![row(1, T0, 100, 100), row(2, T0 + 15 * S, 100, 100)];
    let mut p = Playback::new("c".into(), T0, now);
    let cmds = p.wanted(now, 320);
    let Some(Command::Timeline(_, from, to)) = cmds.first().cloned() else {
        panic!("reads the footage first: {cmds:?}")
    };
    let offline = EventRow {
        server_id: String::new(),
        id: 1,
        camera_id: "c".into(),
        kind: EventKind::Offline,
        at_us: recs[0].0.end_us,
        detail: "lost".into(),
        end_us: None,
        peak_score: None,
    };
    let motion = EventRow {
        server_id: String::new(),
        id: 2,
        kind: EventKind::Motion,
        at_us: T0 + 20 * S,
        end_us: Some(T0 + 21 * S),
        ..offline.clone()
    };
    p.on_timeline(
        "c",
        from,
        to,
        cctv_engine::History {
            recordings: recs.iter().map(|(r, _)| r.clone()).collect(),
            events: vec![offline],
            spans: vec![motion],
        },
    );
    (p, recs)
}

/// Answers the opens and frames asked for, as the backend would.
fn serve(p: &mut Playback, recs: &[(RecordingRow, Arc<Scan>)], now: Instant) -> Vec<i64> {
    let mut opened = Vec::new();
    for _ in 0..4 {
        for cmd in p.wanted(now, 320) {
            match cmd {
                Command::Open(r) => {
                    let (row, scan) = recs.iter().find(|(x, _)| x.id == r.id).unwrap();
                    opened.push(r.id);
                    p.on_opened(row.clone(), scan.clone(), now);
                }
                Command::Frame { request, .. } => {
                    p.on_frame(request, Handle::from_rgba(1, 1, vec![0; 4]));
                }
                _ => {}
            }
        }
    }
    opened
}

fn shown(p: &Playback) -> (i64, usize) {
    let (rec, i, _) = p.tracks[0].shown.unwrap();
    (rec, i)
}

#[test]
fn plays_across_recordings_and_skips_the_gap_between() {
    let t0 = Instant::now();
    let (mut p, recs) = setup(t0);
    assert_eq!(serve(&mut p, &recs, t0), [1]);
    assert_eq!(shown(&p), (1, 0));
    // 8 s in: the next recording is read ahead of its start.
    let t = t0 + Duration::from_secs(8);
    p.update(Msg::Tick, t);
    serve(&mut p, &recs, t);
    assert_eq!(shown(&p), (1, 80));
    // In the gap the clock jumps to the next footage, which is ready.
    let t = t0 + Duration::from_millis(10_500);
    p.update(Msg::Tick, t);
    assert_eq!(p.at(t), T0 + 15 * S, "skipped to the second recording");
    assert_eq!(
        serve(&mut p, &recs, t),
        Vec::<i64>::new(),
        "read ahead already"
    );
    assert_eq!(shown(&p), (2, 0));
    // Past the last frame: the end.
    let t = t + Duration::from_secs(20);
    p.update(Msg::Tick, t);
    assert!(!p.clock.playing);
}

#[test]
fn a_gap_says_why_when_stopped_in_it() {
    let t0 = Instant::now();
    let (mut p, _) = setup(t0);
    p.update(Msg::PlayPause, t0);
    p.update(Msg::Seek((T0 + 12 * S) as f64), t0);
    let gap = p.tracks[0].gap_at(p.at(t0)).expect("a gap");
    assert_eq!(gap.why, strip::Why::Offline);
}

#[test]
fn step_both_ways_and_across_a_boundary() {
    let t0 = Instant::now();
    let (mut p, recs) = setup(t0);
    serve(&mut p, &recs, t0);
    p.update(Msg::Step(true), t0);
    assert!(!p.clock.playing);
    serve(&mut p, &recs, t0);
    assert_eq!(shown(&p), (1, 1));
    p.update(Msg::Step(false), t0);
    serve(&mut p, &recs, t0);
    assert_eq!(shown(&p), (1, 0));
    // From the last frame of the first recording, on to the next's first.
    p.update(Msg::Seek(recs[0].0.end_us as f64), t0);
    serve(&mut p, &recs, t0);
    p.update(Msg::Step(true), t0);
    assert_eq!(p.at(t0), T0 + 15 * S);
    serve(&mut p, &recs, t0);
    assert_eq!(shown(&p), (2, 0));
    // And back again.
    p.update(Msg::Step(false), t0);
    assert_eq!(p.at(t0), recs[0].0.end_us);
}

#[test]
fn jumps_go_to_gaps_and_events_in_order() {
    let t0 = Instant::now();
    let (mut p, _) = setup(t0);
    p.update(Msg::PlayPause, t0);
    let gap_start = T0 + 99 * 100_000;
    p.update(Msg::Jump(true), t0);
    assert_eq!(p.at(t0), gap_start - S, "a second before the gap");
    p.update(Msg::Jump(true), t0);
    assert_eq!(p.at(t0), T0 + 19 * S, "a second before the motion");
    p.update(Msg::Jump(false), t0);
    assert_eq!(p.at(t0), gap_start - S);
    // Before the first recording there is nothing to jump back to.
    p.update(Msg::Jump(false), t0);
    assert_eq!(p.at(t0), gap_start - S);
}

#[test]
fn cameras_share_one_clock_and_marks_export_a_clip_of_all() {
    let t0 = Instant::now();
    let (mut p, _) = setup(t0);
    p.update(Msg::Camera("d".into(), true), t0);
    p.update(Msg::Camera("d".into(), true), t0);
    assert_eq!(p.cameras(), ["c", "d"]);
    let asked: Vec<_> = p
        .wanted(t0, 320)
        .into_iter()
        .filter_map(|c| match c {
            Command::Timeline(cam, ..) => Some(cam),
            _ => None,
        })
        .collect();
    assert_eq!(asked, ["d"], "the new camera's footage is read");
    p.update(Msg::Speed(Speed(4.0)), t0);
    let t = t0 + Duration::from_secs(1);
    assert_eq!(p.at(t), T0 + 4 * S, "4x");
    p.update(Msg::MarkIn, t);
    let t = t0 + Duration::from_secs(2);
    p.update(Msg::MarkOut, t);
    let cmds = p.update(Msg::ExportMarks, t);
    let [Command::ExportRange(cams, a, b, _)] = cmds.as_slice() else {
        panic!("{cmds:?}")
    };
    assert_eq!(cams, &["c", "d"]);
    assert_eq!((*a, *b), (T0 + 4 * S, T0 + 8 * S));
    p.update(Msg::Camera("c".into(), false), t);
    assert_eq!(p.cameras(), ["d"]);
    p.update(Msg::Camera("d".into(), false), t);
    assert_eq!(p.cameras(), ["d"], "one camera stays");
}
