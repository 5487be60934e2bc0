//! Reading our Matroska recordings back: an index of every frame (for
//! playback, export checks and tests) and the repair of files a crash left
//! open, so they play to their last whole frame.
//!
//! It trusts nothing in the file: every size is checked against the file's
//! length, and a damaged tail ends the scan instead of failing it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::ebml::*;
use super::mux::{AUDIO_TRACK, Cue, Layout, Summary, VIDEO_TRACK, duration_ms, finalize};

/// Where one frame's JPEG sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    /// Milliseconds from the first frame.
    pub time_ms: i64,
    pub pos: u64,
    pub len: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub layout: Option<Layout>,
    /// Capture time of timestamp 0, microseconds since the epoch.
    pub origin_us: i64,
    pub width: u32,
    pub height: u32,
    pub duration_ms: Option<f64>,
    pub frames: Vec<FrameRef>,
    /// The Opus packets of the audio track, in file order.
    pub audio: Vec<FrameRef>,
    /// The file has an Opus audio track (it may still hold no packet).
    pub has_audio: bool,
    pub cues: Vec<Cue>,
    /// End of the last whole cluster.
    pub media_end: u64,
    pub file_len: u64,
    /// The segment has a known size and an index: `finish` or `repair` ran.
    pub finalized: bool,
    /// A cluster left open by a crash: where its size field and data start.
    pub open_cluster: Option<(u64, u64)>,
}

impl Scan {
    /// Takes in a cluster's frames (times relative to `base` ms) ending at `end`.
    fn add_cluster(
        &mut self,
        base: i64,
        cluster_pos: u64,
        frames: ClusterFrames,
        end: u64,
    ) -> Result<(), &'static str> {
        if self.frames.len() + self.audio.len() + frames.len() > MAX_FRAMES {
            return Err("more frames than any recording holds");
        }
        self.cues.push(Cue {
            time_ms: base,
            cluster_pos,
        });
        for (track, rel, pos, len) in frames {
            let block = FrameRef {
                time_ms: base.saturating_add(rel),
                pos,
                len,
            };
            match track {
                VIDEO_TRACK => self.frames.push(block),
                _ => self.audio.push(block),
            }
        }
        self.media_end = end;
        Ok(())
    }

    /// Capture time of a frame, microseconds since the epoch.
    pub fn capture_us(&self, f: &FrameRef) -> i64 {
        self.origin_us
            .saturating_add(f.time_ms.saturating_mul(1000))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path} is not a recording: {why}")]
    NotMatroska { path: String, why: &'static str },
}

/// Largest header element (`Info`, `Tracks`) read into memory; ours are
/// a few hundred bytes. Clusters are walked, never read whole.
pub const MAX_HEADER_ELEMENT: u64 = 1 << 20;

/// Most frames indexed in one file: 10 hours at 100 fps (ours hold minutes).
/// A file claiming more is refused rather than indexed without bound.
pub const MAX_FRAMES: usize = 3_600_000;

/// Reads `len` bytes at `pos`, or fewer at the end of the file.
fn read_at<F: Read + Seek>(f: &mut F, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    f.seek(SeekFrom::Start(pos))?;
    let mut buf = Vec::with_capacity(len);
    f.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// An element header at the start of `b`: (id, size, header length).
fn element(b: &[u8]) -> Option<(u32, Option<u64>, usize)> {
    let (id, il) = read_id(b)?;
    let (size, sl) = read_size(&b[il..])?;
    Some((id, size, il + sl))
}

/// The children of a master element's body: (id, body offset, body).
fn children(body: &[u8]) -> Vec<(u32, usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((id, Some(size), hl)) = element(&body[at..]) {
        let start = at + hl;
        let Some(end) = start
            .checked_add(size as usize)
            .filter(|e| *e <= body.len())
        else {
            break;
        };
        out.push((id, start, &body[start..end]));
        at = end;
    }
    out
}

pub fn scan(path: &Path) -> Result<Scan, ScanError> {
    let io_err = |source| ScanError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = File::open(path).map_err(io_err)?;
    let file_len = f.metadata().map_err(io_err)?.len();
    scan_from(&mut f, file_len, &path.display().to_string())
}

/// [`scan`] over any seekable bytes (`file_len` of them), named `name` in errors.
/// Trusts nothing: every size is checked against the length, header
/// elements against [`MAX_HEADER_ELEMENT`], the frame count against
/// [`MAX_FRAMES`], and time arithmetic saturates.
pub fn scan_from<F: Read + Seek>(f: &mut F, file_len: u64, name: &str) -> Result<Scan, ScanError> {
    let named = |e| match e {
        Bad::Io(source) => ScanError::Io {
            path: name.to_string(),
            source,
        },
        Bad::Format(why) => ScanError::NotMatroska {
            path: name.to_string(),
            why,
        },
    };
    let (seg_at, seg_size) = find_segment(f).map_err(named)?;
    let data_pos = seg_at + 12;
    let seg_end = seg_size.map_or(file_len, |s| data_pos.saturating_add(s).min(file_len));
    let mut s = Scan {
        origin_us: 0,
        file_len,
        media_end: data_pos,
        ..Default::default()
    };
    let mut top = TopLevel::default();
    let mut at = data_pos;
    while at < seg_end {
        let Ok(h) = read_at(f, at, 12) else {
            break;
        };
        let Some((id, size, hl)) = element(&h) else {
            break;
        };
        let body_at = at + hl as u64;
        let Some(size) = size else {
            // A cluster still open when the writer stopped: keep its whole frames.
            if id == CLUSTER && hl == 12 {
                s.read_open_cluster(f, at - data_pos, body_at, seg_end)
                    .map_err(named)?;
            }
            break;
        };
        let end = body_at.saturating_add(size);
        if end > seg_end {
            break; // cut short by a crash
        }
        let element = Element {
            id,
            at,
            body_at,
            size,
        };
        if !top.read(&mut s, f, &element, data_pos).map_err(named)? {
            break;
        }
        at = end;
    }
    s.layout = top.layout(seg_at, data_pos);
    s.finalized = seg_size.is_some() && (top.had_cues || s.frames.is_empty());
    Ok(s)
}

/// A top-level element of the segment.
struct Element {
    id: u32,
    at: u64,
    body_at: u64,
    size: u64,
}

/// Where the header elements are, as the segment is walked.
#[derive(Default)]
struct TopLevel {
    seek_head_pos: Option<u64>,
    /// `Info`'s position, and its duration's.
    info: Option<(u64, Option<u64>)>,
    tracks_pos: Option<u64>,
    had_cues: bool,
}

impl TopLevel {
    /// Reads one element into `s`; false when the walk must stop here.
    fn read<F: Read + Seek>(
        &mut self,
        s: &mut Scan,
        f: &mut F,
        e: &Element,
        data_pos: u64,
    ) -> Result<bool, Bad> {
        let end = e.body_at.saturating_add(e.size);
        if matches!(e.id, INFO | TRACKS) && e.size > MAX_HEADER_ELEMENT {
            return Err(Bad::Format("a header element larger than any recording's"));
        }
        match e.id {
            VOID | SEEK_HEAD if self.seek_head_pos.is_none() && e.at == data_pos => {
                self.seek_head_pos = Some(e.at)
            }
            INFO => {
                let body = read_at(f, e.body_at, e.size as usize).map_err(Bad::Io)?;
                self.info = Some((e.at, s.read_info(&body, e.body_at)));
            }
            TRACKS => {
                self.tracks_pos = Some(e.at);
                let body = read_at(f, e.body_at, e.size as usize).map_err(Bad::Io)?;
                s.read_tracks(&body);
            }
            CLUSTER => {
                // Walked child by child: a cluster is never read whole.
                let (cluster_ms, frames, _) =
                    walk_cluster(f, e.body_at, end, true).map_err(Bad::Io)?;
                let Some(base) = cluster_ms else {
                    return Ok(false);
                };
                s.add_cluster(base, e.at - data_pos, frames, end)
                    .map_err(Bad::Format)?;
            }
            CUES => self.had_cues = true,
            _ => {}
        }
        Ok(true)
    }

    /// Where a repair writes, when the header has every element it needs.
    fn layout(&self, seg_at: u64, data_pos: u64) -> Option<Layout> {
        match (self.seek_head_pos, self.info, self.tracks_pos) {
            (Some(seek_head_pos), Some((info_pos, Some(duration_pos))), Some(tracks_pos)) => {
                Some(Layout {
                    segment_size_pos: seg_at + 4,
                    segment_data_pos: data_pos,
                    seek_head_pos,
                    info_pos,
                    duration_pos,
                    tracks_pos,
                })
            }
            _ => None,
        }
    }
}

/// Why the start of a file is not a recording's.
enum Bad {
    Io(io::Error),
    Format(&'static str),
}

/// The EBML header, then the segment: (segment position, its size, `None`
/// while a writer has not finished it). Our segment header is 12 bytes.
fn find_segment<F: Read + Seek>(f: &mut F) -> Result<(u64, Option<u64>), Bad> {
    let head = read_at(f, 0, 64).map_err(Bad::Io)?;
    let (id, size, hl) = element(&head).ok_or(Bad::Format("file too short"))?;
    if id != EBML {
        return Err(Bad::Format("no EBML header"));
    }
    let seg_at = (hl as u64).saturating_add(size.ok_or(Bad::Format("bad EBML header"))?);
    let seg_head = read_at(f, seg_at, 12).map_err(Bad::Io)?;
    let (id, seg_size, shl) = element(&seg_head).ok_or(Bad::Format("no segment"))?;
    if id != SEGMENT || shl != 12 {
        return Err(Bad::Format("no segment"));
    }
    Ok((seg_at, seg_size))
}

impl Scan {
    /// The `Info` element's body at `body_at`: the origin and duration; where
    /// the duration is (or the void kept for it), so a repair can write it.
    fn read_info(&mut self, body: &[u8], body_at: u64) -> Option<u64> {
        let mut duration_pos = None;
        for (cid, off, b) in children(body) {
            match cid {
                DATE_UTC if b.len() == 8 => {
                    let ns = i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
                    self.origin_us = ns.saturating_add(MATROSKA_EPOCH_UNIX_NS) / 1000;
                }
                DURATION if b.len() == 8 => {
                    self.duration_ms = Some(f64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
                    duration_pos.get_or_insert(body_at + off as u64 - 3);
                }
                VOID if b.len() == 9 => {
                    duration_pos.get_or_insert(body_at + off as u64 - 2);
                }
                _ => {}
            }
        }
        duration_pos
    }

    /// A cluster of unknown size (its writer stopped) at `rel` in the
    /// segment, its body at `body_at`: its whole frames up to `seg_end`.
    fn read_open_cluster<F: Read + Seek>(
        &mut self,
        f: &mut F,
        rel: u64,
        body_at: u64,
        seg_end: u64,
    ) -> Result<(), Bad> {
        let (cluster_ms, frames, end) =
            walk_cluster(f, body_at, seg_end, false).map_err(Bad::Io)?;
        if let Some(base) = cluster_ms {
            self.add_cluster(base, rel, frames, end)
                .map_err(Bad::Format)?;
            self.open_cluster = Some((body_at - 8, body_at));
        }
        Ok(())
    }

    /// The `Tracks` element's body: the picture size, and whether there is
    /// an Opus track.
    fn read_tracks(&mut self, body: &[u8]) {
        for (_, _, entry) in children(body).into_iter().filter(|c| c.0 == TRACK_ENTRY) {
            let fields = children(entry);
            let number = fields
                .iter()
                .find(|c| c.0 == TRACK_NUMBER)
                .map(|c| read_uint(c.2));
            let codec = fields.iter().find(|c| c.0 == CODEC_ID).map(|c| c.2);
            if number == Some(u64::from(AUDIO_TRACK)) && codec == Some(b"A_OPUS".as_slice()) {
                self.has_audio = true;
            }
            for (_, _, video) in children(entry).into_iter().filter(|c| c.0 == VIDEO) {
                for (cid, _, b) in children(video) {
                    match cid {
                        PIXEL_WIDTH => self.width = read_uint(b) as u32,
                        PIXEL_HEIGHT => self.height = read_uint(b) as u32,
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Blocks of a cluster: (track, relative ms, data position, length).
type ClusterFrames = Vec<(u8, i64, u64, u32)>;

/// Walks the children of a cluster from `at` to `limit` while they are
/// whole: (cluster timestamp, frames, end of the last whole child). In a
/// `sized` cluster unknown children are skipped; in one of unknown size
/// (left open by a crash) an unknown element is the next top-level one.
fn walk_cluster<F: Read + Seek>(
    f: &mut F,
    mut at: u64,
    limit: u64,
    sized: bool,
) -> io::Result<(Option<i64>, ClusterFrames, u64)> {
    let mut cluster_ms = None;
    let mut frames = Vec::new();
    let mut end = at;
    while at < limit {
        let h = read_at(f, at, 16)?;
        let Some((id, Some(size), hl)) = element(&h) else {
            break;
        };
        let body = at + hl as u64;
        if body.saturating_add(size) > limit {
            break;
        }
        match id {
            CLUSTER_TIMESTAMP => {
                cluster_ms = Some(read_uint(&h[hl..(hl + size as usize).min(h.len())]) as i64)
            }
            SIMPLE_BLOCK
                if size > 4
                    && h.len() >= hl + 4
                    && (h[hl] == 0x80 | VIDEO_TRACK || h[hl] == 0x80 | AUDIO_TRACK) =>
            {
                let rel = i64::from(i16::from_be_bytes([h[hl + 1], h[hl + 2]]));
                frames.push((h[hl] & 0x7f, rel, body + 4, (size - 4) as u32));
            }
            // Other cluster children are skipped; anything else ends the cluster.
            0xA0 | 0xA7 | 0xAB => {}
            _ if sized => {}
            _ => break,
        }
        at = body + size;
        end = at;
    }
    Ok((cluster_ms, frames, end))
}

/// Reads one frame's JPEG.
pub fn read_frame(f: &mut File, frame: &FrameRef) -> io::Result<Vec<u8>> {
    let data = read_at(f, frame.pos, frame.len as usize)?;
    if data.len() != frame.len as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "frame cut short",
        ));
    }
    Ok(data)
}

/// Makes a file a crash left open playable: cuts it after the last whole
/// cluster, writes the index, duration and segment size. Safe to run twice.
pub fn repair(path: &Path) -> Result<Summary, ScanError> {
    let s = scan(path)?;
    let io_err = |source| ScanError::Io {
        path: path.display().to_string(),
        source,
    };
    let layout = s.layout.ok_or_else(|| ScanError::NotMatroska {
        path: path.display().to_string(),
        why: "its header is incomplete",
    })?;
    let last_ms = s.frames.last().map_or(0, |f| f.time_ms);
    let mut summary = Summary {
        frames: s.frames.len() as u64,
        first_us: s.origin_us,
        last_us: s.origin_us + last_ms * 1000,
        bytes: s.file_len,
        audio_packets: s.audio.len() as u64,
    };
    if s.finalized {
        return Ok(summary);
    }
    let mut f = OpenOptions::new().write(true).open(path).map_err(io_err)?;
    f.set_len(s.media_end).map_err(io_err)?;
    if let Some((size_pos, data_pos)) = s.open_cluster {
        use std::io::Write;
        let mut size = Vec::new();
        put_size_fixed(&mut size, s.media_end - data_pos, 8);
        f.seek(SeekFrom::Start(size_pos)).map_err(io_err)?;
        f.write_all(&size).map_err(io_err)?;
    }
    let duration = duration_ms(s.frames.len() as u64, last_ms);
    summary.bytes = finalize(&mut f, &layout, &s.cues, duration, s.media_end).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    Ok(summary)
}
