//! A small Matroska muxer for MJPEG: each received JPEG is stored as it is,
//! with its capture time (millisecond timestamps, variable frame rate), and,
//! when the camera sends sound, its Opus packets as they are on a second
//! track, each at its own capture time.
//!
//! Frames are gathered into clusters of at most a second and each cluster is
//! written with one `write` call, so a killed process leaves a file of whole
//! clusters that players open as they are. `finish` (or [`super::scan::repair`]
//! after a crash) adds the index (Cues), the duration and the segment size.
//! This module never decides where files go or when segments rotate.

use std::io::{self, Seek, SeekFrom, Write};

use super::ebml::*;

/// Longest span of one cluster, in milliseconds.
pub const CLUSTER_MAX_MS: i64 = 1000;
/// The video track's number (MJPEG).
pub const VIDEO_TRACK: u8 = 1;
/// The audio track's number (Opus, mono, 48 kHz), in files that have one.
pub const AUDIO_TRACK: u8 = 2;
/// Opus always decodes at 48 kHz.
pub const OPUS_RATE: u32 = 48_000;
/// Samples the Opus decoder's output starts late by (libopus's lookahead at
/// 48 kHz): the `OpusHead` pre-skip and the track's `CodecDelay`.
pub const OPUS_PRE_SKIP: u16 = 312;
/// Bytes reserved at the start of the segment for the SeekHead.
const SEEK_HEAD_RESERVED: usize = 96;
/// Bytes reserved in Info for the Duration element.
const DURATION_RESERVED: usize = 11;

/// Where the parts that are patched at the end sit in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the segment's 8-byte size field.
    pub segment_size_pos: u64,
    /// Offset of the segment's first child; Matroska positions count from here.
    pub segment_data_pos: u64,
    pub seek_head_pos: u64,
    pub info_pos: u64,
    pub duration_pos: u64,
    pub tracks_pos: u64,
}

/// A cue: where a cluster starts (relative to the segment data) and its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cue {
    pub time_ms: i64,
    pub cluster_pos: u64,
}

/// What a finished (or repaired) file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub frames: u64,
    /// Capture time of the first and last frame, microseconds since the epoch.
    pub first_us: i64,
    pub last_us: i64,
    /// File size.
    pub bytes: u64,
    /// Opus packets on the audio track.
    pub audio_packets: u64,
}

/// Fixed facts about a segment, written in its header.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    pub title: String,
    pub width: u32,
    pub height: u32,
    /// Capture time of the first frame: timestamp 0 of the file.
    pub origin_us: i64,
    /// The file has an Opus track for the camera's sound.
    pub audio: bool,
}

/// The `OpusHead` a player needs to set up its decoder (RFC 7845 5.1):
/// version 1, mono, the pre-skip, 48 kHz input, no gain, mapping family 0.
pub fn opus_head() -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(1);
    h.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
    h.extend_from_slice(&OPUS_RATE.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// The EBML header and the segment's opening: returns the bytes and the layout.
fn header(info: &SegmentInfo) -> (Vec<u8>, Layout) {
    let mut out = Vec::with_capacity(512);
    let mut ebml = Vec::new();
    put_uint(&mut ebml, EBML_VERSION, 1);
    put_uint(&mut ebml, EBML_READ_VERSION, 1);
    put_uint(&mut ebml, EBML_MAX_ID_LENGTH, 4);
    put_uint(&mut ebml, EBML_MAX_SIZE_LENGTH, 8);
    put_str(&mut ebml, DOC_TYPE, "matroska");
    put_uint(&mut ebml, DOC_TYPE_VERSION, 4);
    put_uint(&mut ebml, DOC_TYPE_READ_VERSION, 2);
    put_master(&mut out, EBML, &ebml);

    put_id(&mut out, SEGMENT);
    let segment_size_pos = out.len() as u64;
    out.extend_from_slice(&UNKNOWN_SIZE);
    let segment_data_pos = out.len() as u64;
    let seek_head_pos = out.len() as u64;
    put_void(&mut out, SEEK_HEAD_RESERVED);

    let app = concat!("cctv panel ", env!("CARGO_PKG_VERSION"));
    let mut body = Vec::new();
    put_uint(&mut body, TIMESTAMP_SCALE, 1_000_000); // 1 ms
    put_str(&mut body, MUXING_APP, app);
    put_str(&mut body, WRITING_APP, app);
    let date_ns = info
        .origin_us
        .saturating_mul(1000)
        .saturating_sub(MATROSKA_EPOCH_UNIX_NS);
    put_int(&mut body, DATE_UTC, date_ns);
    put_str(&mut body, TITLE, &info.title);
    let duration_offset = body.len();
    put_void(&mut body, DURATION_RESERVED);
    let info_pos = out.len() as u64;
    put_id(&mut out, INFO);
    put_size(&mut out, body.len() as u64);
    let duration_pos = out.len() as u64 + duration_offset as u64;
    out.extend_from_slice(&body);

    let mut video = Vec::new();
    put_uint(&mut video, PIXEL_WIDTH, u64::from(info.width));
    put_uint(&mut video, PIXEL_HEIGHT, u64::from(info.height));
    let mut track = Vec::new();
    put_uint(&mut track, TRACK_NUMBER, 1);
    put_uint(&mut track, TRACK_UID, 1);
    put_uint(&mut track, TRACK_TYPE, 1); // video
    put_uint(&mut track, FLAG_LACING, 0);
    put_str(&mut track, CODEC_ID, "V_MJPEG");
    put_master(&mut track, VIDEO, &video);
    let mut tracks = Vec::new();
    put_master(&mut tracks, TRACK_ENTRY, &track);
    if info.audio {
        let mut audio = Vec::new();
        put_float(&mut audio, SAMPLING_FREQUENCY, f64::from(OPUS_RATE));
        put_uint(&mut audio, CHANNELS, 1);
        let mut track = Vec::new();
        put_uint(&mut track, TRACK_NUMBER, u64::from(AUDIO_TRACK));
        put_uint(&mut track, TRACK_UID, 2);
        put_uint(&mut track, TRACK_TYPE, 2); // audio
        put_uint(&mut track, FLAG_LACING, 0);
        put_str(&mut track, CODEC_ID, "A_OPUS");
        put_master(&mut track, CODEC_PRIVATE, &opus_head());
        let delay_ns = u64::from(OPUS_PRE_SKIP) * 1_000_000_000 / u64::from(OPUS_RATE);
        put_uint(&mut track, CODEC_DELAY, delay_ns);
        put_uint(&mut track, SEEK_PRE_ROLL, 80_000_000);
        put_master(&mut track, AUDIO, &audio);
        put_master(&mut tracks, TRACK_ENTRY, &track);
    }
    let tracks_pos = out.len() as u64;
    put_master(&mut out, TRACKS, &tracks);

    let layout = Layout {
        segment_size_pos,
        segment_data_pos,
        seek_head_pos,
        info_pos,
        duration_pos,
        tracks_pos,
    };
    (out, layout)
}

/// Builds a recording's bytes in order. Every frame is written as soon as it
/// arrives (so it reaches the page cache at once and a crash loses nothing
/// already received); a cluster is opened with an unknown size, and its size
/// is patched in when the next one starts. No I/O happens here: the caller
/// applies each [`Write`] and chooses the thread that blocks on the disk.
pub struct MkvMuxer {
    layout: Layout,
    origin_us: i64,
    /// The open cluster: its timestamp, where its size field and data start.
    cluster: Option<OpenCluster>,
    cues: Vec<Cue>,
    /// Bytes handed out so far (the file's length once they are written).
    written: u64,
    frames: u64,
    last_ms: i64,
    last_us: i64,
    audio: bool,
    audio_packets: u64,
    last_audio_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct OpenCluster {
    time_ms: i64,
    /// Where the cluster element starts.
    start: u64,
    size_pos: u64,
    data_pos: u64,
}

/// What to do to the file for one frame: append `head` then the JPEG, and
/// first patch `patch` (a finished cluster's size) if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write1 {
    pub patch: Option<(u64, [u8; 8])>,
    pub head: Vec<u8>,
}

/// What remains to do to close a file: patch the last cluster's size, then [`finalize`].
pub struct Closing {
    pub patch: Option<(u64, [u8; 8])>,
    pub layout: Layout,
    pub cues: Vec<Cue>,
    pub duration_ms: f64,
    /// File length: everything written so far.
    pub end: u64,
    pub summary: Summary,
}

/// The 8-byte size field for a cluster spanning `data_pos..end`.
fn size_field(data_pos: u64, end: u64) -> [u8; 8] {
    let mut v = Vec::with_capacity(8);
    put_size_fixed(&mut v, end - data_pos, 8);
    let mut out = [0u8; 8];
    out.copy_from_slice(&v);
    out
}

impl Closing {
    /// Patches and writes the index to `out`; returns the final summary.
    pub fn apply<W: Write + Seek>(self, out: &mut W) -> io::Result<Summary> {
        if let Some((pos, bytes)) = self.patch {
            out.seek(SeekFrom::Start(pos))?;
            out.write_all(&bytes)?;
        }
        let bytes = finalize(out, &self.layout, &self.cues, self.duration_ms, self.end)?;
        Ok(Summary {
            bytes,
            ..self.summary
        })
    }
}

impl MkvMuxer {
    /// Returns the muxer and the file header to write first.
    pub fn new(info: &SegmentInfo) -> (Self, Vec<u8>) {
        let (bytes, layout) = header(info);
        let muxer = Self {
            layout,
            origin_us: info.origin_us,
            cluster: None,
            cues: Vec::new(),
            written: bytes.len() as u64,
            frames: 0,
            last_ms: -1,
            last_us: info.origin_us,
            audio: info.audio,
            audio_packets: 0,
            last_audio_ms: -1,
        };
        (muxer, bytes)
    }

    /// Adds one frame of `len` bytes. Timestamps that go backwards are moved
    /// forward to keep the file playable.
    pub fn push(&mut self, capture_us: i64, len: usize) -> Write1 {
        let mut ms = capture_us.saturating_sub(self.origin_us).div_euclid(1000);
        if ms <= self.last_ms {
            ms = self.last_ms.saturating_add(1);
        }
        let w = self.block(VIDEO_TRACK, ms, len);
        self.frames += 1;
        self.last_ms = ms;
        self.last_us = capture_us.max(self.last_us);
        w
    }

    /// Adds one Opus packet of `len` bytes captured at `capture_us`, or
    /// `None` when it has no place here: the file has no audio track, the
    /// sound is from before the file's first frame (it belongs to the
    /// recording before), or so late its cluster is long written.
    pub fn push_audio(&mut self, capture_us: i64, len: usize) -> Option<Write1> {
        let mut ms = capture_us.saturating_sub(self.origin_us).div_euclid(1000);
        if !self.audio || ms < 0 {
            return None;
        }
        if ms <= self.last_audio_ms {
            ms = self.last_audio_ms.saturating_add(1);
        }
        if let Some(c) = self.cluster
            && ms - c.time_ms < i64::from(i16::MIN)
        {
            return None;
        }
        let w = self.block(AUDIO_TRACK, ms, len);
        self.audio_packets += 1;
        self.last_audio_ms = ms;
        Some(w)
    }

    /// The block header for `len` bytes on `track` at `ms` (never
    /// negative), opening a new cluster when the open one spans a second,
    /// or (a frame far behind the sound that opened it) cannot hold it.
    fn block(&mut self, track: u8, ms: i64, len: usize) -> Write1 {
        let mut head = Vec::with_capacity(48);
        let mut patch = None;
        let start_new = match self.cluster {
            None => true,
            Some(c) => ms - c.time_ms >= CLUSTER_MAX_MS || ms - c.time_ms < i64::from(i16::MIN),
        };
        if start_new {
            if let Some(c) = self.cluster.take() {
                patch = Some((c.size_pos, size_field(c.data_pos, self.written)));
            }
            let at = self.written;
            put_id(&mut head, CLUSTER);
            let size_pos = at + head.len() as u64;
            head.extend_from_slice(&UNKNOWN_SIZE);
            let data_pos = at + head.len() as u64;
            put_uint(&mut head, CLUSTER_TIMESTAMP, ms as u64);
            self.cluster = Some(OpenCluster {
                time_ms: ms,
                start: at,
                size_pos,
                data_pos,
            });
            self.cues.push(Cue {
                time_ms: ms,
                cluster_pos: at - self.layout.segment_data_pos,
            });
        }
        let c = self.cluster.as_ref().map_or(ms, |c| c.time_ms);
        // Under CLUSTER_MAX_MS ahead, and checked not too far behind: fits.
        let rel = (ms - c) as i16;
        put_id(&mut head, SIMPLE_BLOCK);
        put_size(&mut head, 4 + len as u64);
        head.push(0x80 | track);
        head.extend_from_slice(&rel.to_be_bytes());
        head.push(0x80); // keyframe: every JPEG and Opus packet stands alone
        self.written += head.len() as u64 + len as u64;
        Write1 { patch, head }
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes handed out so far.
    pub fn bytes(&self) -> u64 {
        self.written
    }

    /// The bytes that are written for good until the file is finished:
    /// after the header (patched at the end) and before the open cluster
    /// (whose size is patched when it ends). A writer may let the system
    /// forget these pages once they are on the disk.
    pub fn settled(&self) -> std::ops::Range<u64> {
        let open = self.cluster.as_ref().map_or(self.written, |c| c.start);
        let first = self
            .cues
            .first()
            .map_or(open, |c| c.cluster_pos + self.layout.segment_data_pos);
        first.min(open)..open
    }

    pub fn last_capture_us(&self) -> i64 {
        self.last_us
    }

    pub fn audio_packets(&self) -> u64 {
        self.audio_packets
    }

    /// Everything needed to close the file.
    pub fn finish(mut self) -> Closing {
        let patch = self
            .cluster
            .take()
            .map(|c| (c.size_pos, size_field(c.data_pos, self.written)));
        Closing {
            patch,
            layout: self.layout,
            duration_ms: duration_ms(self.frames, self.last_ms),
            end: self.written,
            summary: Summary {
                frames: self.frames,
                first_us: self.origin_us,
                last_us: self.last_us,
                bytes: self.written,
                audio_packets: self.audio_packets,
            },
            cues: self.cues,
        }
    }
}

/// Applies one block's writes (a frame's or an Opus packet's) to a file opened for append-style writing.
pub fn apply_frame<W: Write + Seek>(
    out: &mut W,
    w: &Write1,
    jpeg: &[u8],
    end: u64,
) -> io::Result<()> {
    if let Some((pos, bytes)) = w.patch {
        out.seek(SeekFrom::Start(pos))?;
        out.write_all(&bytes)?;
        out.seek(SeekFrom::Start(end))?;
    }
    out.write_all(&w.head)?;
    out.write_all(jpeg)
}

/// Writes a whole recording to `out` at once: the frames, and the Opus
/// packets (if `info.audio`) among them by capture time.
pub fn write_all<W: Write + Seek>(
    out: &mut W,
    info: &SegmentInfo,
    frames: &[(i64, &[u8])],
    audio: &[(i64, &[u8])],
) -> io::Result<Summary> {
    let (mut mux, head) = MkvMuxer::new(info);
    out.write_all(&head)?;
    let mut sound = audio.iter().peekable();
    for (us, jpeg) in frames {
        while let Some((a_us, packet)) = sound.next_if(|(a_us, _)| a_us < us) {
            let end = mux.bytes();
            if let Some(w) = mux.push_audio(*a_us, packet.len()) {
                apply_frame(out, &w, packet, end)?;
            }
        }
        let end = mux.bytes();
        let w = mux.push(*us, jpeg.len());
        apply_frame(out, &w, jpeg, end)?;
    }
    for (a_us, packet) in sound {
        let end = mux.bytes();
        if let Some(w) = mux.push_audio(*a_us, packet.len()) {
            apply_frame(out, &w, packet, end)?;
        }
    }
    mux.finish().apply(out)
}

/// Playing time: up to the last frame, plus one average frame interval so
/// the last frame is shown for as long as the others.
pub fn duration_ms(frames: u64, last_ms: i64) -> f64 {
    match frames {
        0 => 0.0,
        1 => 1.0,
        n => {
            let last = last_ms.max(0) as f64;
            last + last / (n - 1) as f64
        }
    }
}

/// Appends Cues at `end` (the end of the last whole cluster) and patches the
/// SeekHead, Duration and segment size. Returns the new file length.
pub fn finalize<W: Write + Seek>(
    out: &mut W,
    layout: &Layout,
    cues: &[Cue],
    duration_ms: f64,
    end: u64,
) -> io::Result<u64> {
    let cues_pos = end;
    let mut body = Vec::with_capacity(cues.len() * 16);
    for cue in cues {
        let mut pos = Vec::new();
        put_uint(&mut pos, CUE_TRACK, 1);
        put_uint(&mut pos, CUE_CLUSTER_POSITION, cue.cluster_pos);
        let mut point = Vec::new();
        put_uint(&mut point, CUE_TIME, cue.time_ms as u64);
        put_master(&mut point, CUE_TRACK_POSITIONS, &pos);
        put_master(&mut body, CUE_POINT, &point);
    }
    let mut cues_el = Vec::new();
    if !cues.is_empty() {
        put_master(&mut cues_el, CUES, &body);
    }
    out.seek(SeekFrom::Start(cues_pos))?;
    out.write_all(&cues_el)?;
    let file_end = cues_pos + cues_el.len() as u64;

    let rel = |p: u64| p - layout.segment_data_pos;
    let mut seeks = Vec::new();
    let mut entries = vec![
        (INFO, rel(layout.info_pos)),
        (TRACKS, rel(layout.tracks_pos)),
    ];
    if !cues.is_empty() {
        entries.push((CUES, rel(cues_pos)));
    }
    for (id, pos) in entries {
        let mut seek = Vec::new();
        let mut idb = Vec::new();
        put_id(&mut idb, id);
        put_master(&mut seek, SEEK_ID, &idb);
        put_uint8(&mut seek, SEEK_POSITION, pos);
        put_master(&mut seeks, SEEK, &seek);
    }
    let mut seek_head = Vec::new();
    put_master(&mut seek_head, SEEK_HEAD, &seeks);
    let rest = SEEK_HEAD_RESERVED - seek_head.len();
    put_void(&mut seek_head, rest);
    out.seek(SeekFrom::Start(layout.seek_head_pos))?;
    out.write_all(&seek_head)?;

    let mut duration = Vec::new();
    put_float(&mut duration, DURATION, duration_ms);
    debug_assert_eq!(duration.len(), DURATION_RESERVED);
    out.seek(SeekFrom::Start(layout.duration_pos))?;
    out.write_all(&duration)?;

    let mut size = Vec::new();
    put_size_fixed(&mut size, file_end - layout.segment_data_pos, 8);
    out.seek(SeekFrom::Start(layout.segment_size_pos))?;
    out.write_all(&size)?;
    out.seek(SeekFrom::Start(file_end))?;
    out.flush()?;
    Ok(file_end)
}
