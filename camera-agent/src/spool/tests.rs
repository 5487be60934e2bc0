use super::*;
use bytes::Bytes;

fn limits(max_bytes: u64) -> Limits {
    Limits {
        max_bytes,
        max_age: None,
    }
}

fn jpeg(seq: u64, len: usize) -> Vec<u8> {
    let mut v = vec![(seq % 251) as u8; len];
    v[0] = 0xFF;
    v
}

#[test]
fn frames_survive_a_restart_and_numbers_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
        for seq in 0..30 {
            s.append(seq, 1_000 + seq, &jpeg(seq, 1000)).unwrap();
        }
        s.ack(0, 9);
        assert_eq!(s.status().frames, 20);
    }
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    assert_eq!(s.next_seq(), 30, "numbering carries on after a restart");
    s.connected(u64::MAX, Duration::ZERO, 0);
    // The acknowledged frames were in the newest file, kept whole; they come
    // again (the panel skips frames it holds), then the rest, in order.
    let mut after = None;
    let mut seen = Vec::new();
    while let Some(p) = s.next_backfill(after) {
        assert_eq!(p.read().unwrap(), jpeg(p.seq, 1000));
        assert_eq!(p.capture_us, 1_000 + p.seq);
        seen.push(p.seq);
        after = Some(p.seq);
    }
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    assert_eq!(s.backlog(Some(14)), 15);
}

#[test]
fn a_frame_cut_short_by_a_crash_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
        for seq in 0..5 {
            s.append(seq, seq, &jpeg(seq, 500)).unwrap();
        }
    }
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "spool"))
        .unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 100).unwrap();
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    assert_eq!(s.status().frames, 4);
    assert_eq!(s.next_seq(), 4);
    // Appending goes on after the cut.
    s.append(4, 4, &jpeg(4, 500)).unwrap();
    s.connected(u64::MAX, Duration::ZERO, 0);
    let p = s.next_backfill(Some(3)).unwrap();
    assert_eq!((p.seq, p.read().unwrap()), (4, Bytes::from(jpeg(4, 500))));
}

#[test]
fn acknowledged_files_go_and_the_newest_stays() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    // Three files' worth.
    let big = (FILE_BYTES / 4) as usize;
    for seq in 0..12 {
        s.append(seq, seq, &jpeg(seq, big)).unwrap();
    }
    let files = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "spool")
            })
            .count()
    };
    assert!(files() >= 3, "{}", files());
    s.ack(0, 11);
    assert_eq!(files(), 1, "only the newest file stays");
    assert_eq!(s.status().frames, 0);
    assert!(s.status().bytes <= FILE_BYTES + big as u64 + 100);
}

#[test]
fn over_its_limit_the_oldest_frames_go_first_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), limits(MIN_BYTES)).unwrap();
    let frame = 100_000;
    for seq in 0..400 {
        s.append(seq, 1_000_000 + seq * 100_000, &jpeg(seq, frame))
            .unwrap();
    }
    let st = s.status();
    assert!(st.bytes <= MIN_BYTES + FILE_BYTES, "{st:?}");
    assert!(st.dropped.frames > 200, "{st:?}");
    assert_eq!(st.dropped.from_us, 1_000_000, "the oldest went first");
    assert_eq!(
        st.frames as u64 + st.dropped.frames,
        400,
        "every frame is either held or counted as dropped"
    );
    s.connected(u64::MAX, Duration::ZERO, 0);
    let first = s.next_backfill(None).unwrap();
    assert_eq!(first.seq, st.dropped.frames, "what is left is the newest");
    assert_eq!(
        st.dropped.to_us,
        1_000_000 + (first.seq - 1) * 100_000,
        "{st:?}"
    );
}

#[test]
fn frames_past_the_age_limit_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(
        dir.path(),
        Limits {
            max_bytes: 1 << 30,
            max_age: Some(Duration::from_secs(3600)),
        },
    )
    .unwrap();
    let now = cctv_protocol::now_us();
    let big = (FILE_BYTES / 2) as usize;
    // Two hours old, then now.
    for seq in 0..4 {
        s.append(seq, now - 7_200_000_000, &jpeg(seq, big)).unwrap();
    }
    for seq in 4..8 {
        s.append(seq, now, &jpeg(seq, big)).unwrap();
    }
    let st = s.status();
    assert!(st.dropped.frames >= 2, "{st:?}");
    assert!(st.oldest_us >= now - 7_200_000_000);
}

#[test]
fn only_frames_from_before_the_connection_are_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    assert!(
        !s.append(0, 0, &jpeg(0, 10)).unwrap(),
        "nobody takes frames"
    );
    s.connected(u64::MAX, Duration::ZERO, 0);
    assert!(s.append(1, 1, &jpeg(1, 10)).unwrap(), "live");
    assert_eq!(s.backlog(None), 1);
    assert_eq!(s.next_backfill(None).unwrap().seq, 0);
    assert!(s.next_backfill(Some(0)).is_none());
    s.disconnected();
    s.connected(u64::MAX, Duration::ZERO, 0);
    assert_eq!(s.backlog(None), 2, "unacknowledged live frames come again");
}

#[test]
fn a_second_agent_on_the_same_spool_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    let e = Spool::open(dir.path(), limits(1 << 30)).err().unwrap();
    assert!(e.to_string().contains("another agent"), "{e}");
}

#[test]
fn a_read_only_spool_fails_once_and_rests() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    s.append(0, 0, &jpeg(0, 10)).unwrap();
    // The directory goes away under it: a new file cannot be made.
    s.active = None;
    std::fs::remove_dir_all(dir.path()).unwrap();
    assert!(s.append(1, 1, &jpeg(1, 10)).is_err());
    assert!(
        s.append(2, 2, &jpeg(2, 10)).is_ok(),
        "after one error it rests instead of failing every frame"
    );
    assert_eq!(s.next_seq(), 3);
}

#[test]
fn frames_captured_while_connecting_go_live_not_as_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    let now = 100_000_000;
    // An outage of a minute, then the last second while connecting.
    s.append(0, now - 60_000_000, &jpeg(0, 10)).unwrap();
    s.append(1, now - 500_000, &jpeg(1, 10)).unwrap();
    s.append(2, now - 100_000, &jpeg(2, 10)).unwrap();
    let live = s.connected(now, Duration::from_secs(1), 10);
    assert_eq!(live.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(live[1].read().unwrap(), jpeg(2, 10));
    assert_eq!(s.backlog(None), 1);
    assert_eq!(s.next_backfill(None).unwrap().seq, 0);
    // Sent live on that connection, then it broke: backfill next time,
    // however recent.
    s.append(3, now + 100_000, &jpeg(3, 10)).unwrap();
    s.disconnected();
    assert!(
        s.connected(now + 200_000, Duration::from_secs(1), 10)
            .is_empty()
    );
    assert_eq!(s.backlog(None), 4);
}

#[test]
fn at_most_the_newest_few_go_live_and_the_rest_is_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), limits(1 << 30)).unwrap();
    let now = 100_000_000;
    for seq in 0..10 {
        s.append(seq, now - 1_000_000 + seq * 100_000, &jpeg(seq, 10))
            .unwrap();
    }
    let live = s.connected(now, Duration::from_secs(10), 4);
    assert_eq!(live.iter().map(|p| p.seq).collect::<Vec<_>>(), [6, 7, 8, 9]);
    assert_eq!(s.backlog(None), 6, "the older ones come as backfill");
}
