//! The camera's sound: a microphone (ALSA, through `cpal`), a video file's
//! own soundtrack, or a test tone for the test pattern. Whatever the source,
//! its samples become mono 48 kHz, are cut into 20 ms Opus packets stamped on
//! the frames' clock (`now_us` at capture), and go to the link, which sends
//! them only to a panel that takes them. Off unless asked for. Sound runs on
//! its own thread: a microphone that fails is reported and retried while the
//! pictures go on.

mod file;
mod mic;
mod tone;

use std::str::FromStr;
use std::thread::JoinHandle;

use anyhow::bail;
use bytes::Bytes;
use cctv_protocol::{AUDIO_RATE, AudioPacket, SILENT_DB};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::source::PlayClock;

/// Samples in one packet: 20 ms at 48 kHz.
pub const PACKET_SAMPLES: usize = 960;
/// Default Opus bitrate, bits a second: speech and a room's sound, mono.
pub const DEFAULT_BITRATE: u32 = 24_000;
/// Packets waiting for the link (2 s, some 20 KB): a link held up for a
/// moment loses no sound. While no panel takes them, newer ones are dropped.
pub const QUEUE_PACKETS: usize = 100;
/// A chunk that starts further than this from where the last one ended
/// starts a new run (the source stalled or jumped): its time is believed.
const RESYNC_US: i64 = 60_000;

/// Where the camera's sound comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioSpec {
    /// No sound (the default).
    None,
    /// A microphone: ALSA's default, or a named device (`alsa:hw:1,0`).
    Mic(Option<String>),
    /// The soundtrack of the `file:` source, in step with its pictures.
    File,
    /// A 1 kHz beep of 100 ms at every whole second of the clock.
    Tone,
}

impl FromStr for AudioSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "none" => Self::None,
            "default" => Self::Mic(None),
            "file" => Self::File,
            "tone" => Self::Tone,
            _ => match s.strip_prefix("alsa:") {
                Some(dev) if !dev.is_empty() => Self::Mic(Some(format!("alsa:{dev}"))),
                _ => bail!(
                    "unknown audio source {s:?}: use none, default (the default microphone), \
                     alsa:DEVICE (e.g. alsa:hw:1,0), file (the file source's soundtrack) or tone"
                ),
            },
        })
    }
}

impl std::fmt::Display for AudioSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Mic(None) => f.write_str("the default microphone"),
            Self::Mic(Some(dev)) => f.write_str(dev),
            Self::File => f.write_str("the file's soundtrack"),
            Self::Tone => f.write_str("a test tone"),
        }
    }
}

/// Sound settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    pub spec: AudioSpec,
    /// Opus bitrate, bits a second (6000 to 128000).
    pub bitrate: u32,
}

impl AudioConfig {
    pub fn new(spec: AudioSpec, bitrate: Option<u32>) -> anyhow::Result<Self> {
        let bitrate = bitrate.unwrap_or(DEFAULT_BITRATE);
        if !(6_000..=128_000).contains(&bitrate) {
            bail!("audio bitrate {bitrate} is outside 6000..128000 bits a second");
        }
        Ok(Self { spec, bitrate })
    }

    pub fn is_on(&self) -> bool {
        self.spec != AudioSpec::None
    }
}

/// Mono samples at 48 kHz (-1 to 1), and when the first was captured.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub start_us: u64,
    pub samples: Vec<f32>,
    /// The first of a new run (a file's next pass): its time is taken as
    /// it is, however close to where the last run ended.
    pub new_run: bool,
}

/// What a sound source hands its samples to.
pub trait Sink {
    /// `false`: stop, the agent is stopping.
    fn take(&mut self, chunk: Chunk) -> bool;
}

/// Cuts runs of samples into 20 ms packets and encodes them.
pub struct Packets {
    opus: opus::Encoder,
    pending: Vec<f32>,
    /// Capture time of `pending[0]`.
    pending_us: Option<u64>,
    out: Vec<u8>,
}

impl Packets {
    pub fn new(bitrate: u32) -> Result<Self, opus::Error> {
        let mut opus =
            opus::Encoder::new(AUDIO_RATE, opus::Channels::Mono, opus::Application::Audio)?;
        opus.set_bitrate(opus::Bitrate::Bits(bitrate as i32))?;
        Ok(Self {
            opus,
            pending: Vec::with_capacity(2 * PACKET_SAMPLES),
            pending_us: None,
            out: vec![0; cctv_protocol::MAX_OPUS_PACKET],
        })
    }

    /// Adds a chunk; every whole packet is encoded and handed to `emit`.
    /// A chunk that does not follow on from the last (a stall, a jump)
    /// drops the partial packet and starts again at its own time.
    pub fn push(&mut self, chunk: &Chunk, mut emit: impl FnMut(AudioPacket)) {
        let expected = self.pending_us.map(|t| t + samples_us(self.pending.len()));
        if chunk.new_run
            || expected.is_none_or(|e| (chunk.start_us as i64 - e as i64).abs() > RESYNC_US)
        {
            self.pending.clear();
            self.pending_us = Some(chunk.start_us);
        }
        self.pending.extend_from_slice(&chunk.samples);
        let mut used = 0;
        while self.pending.len() - used >= PACKET_SAMPLES {
            let pcm = &self.pending[used..used + PACKET_SAMPLES];
            let start_us = self.pending_us.unwrap_or(chunk.start_us) + samples_us(used);
            match self.opus.encode_float(pcm, &mut self.out) {
                Ok(n) if n > 0 => emit(AudioPacket {
                    capture_us: start_us,
                    samples: PACKET_SAMPLES as u16,
                    peak_db: peak_db(pcm),
                    opus: Bytes::copy_from_slice(&self.out[..n]),
                }),
                Ok(_) => {}
                Err(e) => warn!("encoding sound: {e}"),
            }
            used += PACKET_SAMPLES;
        }
        self.pending.drain(..used);
        if let Some(t) = self.pending_us.as_mut() {
            *t += samples_us(used);
        }
    }
}

/// How long `n` samples at 48 kHz last, in microseconds.
pub fn samples_us(n: usize) -> u64 {
    n as u64 * 1_000_000 / u64::from(AUDIO_RATE)
}

/// The loudest sample, in dB below full scale (0 to 96).
pub fn peak_db(samples: &[f32]) -> u8 {
    let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs())).min(1.0);
    if peak <= 0.0 {
        return SILENT_DB;
    }
    (-20.0 * peak.log10())
        .round()
        .clamp(0.0, f32::from(SILENT_DB)) as u8
}

/// Mixes interleaved frames of `channels` down to mono.
pub fn mono(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Converts a mono stream from one rate to 48 kHz, by linear interpolation,
/// carrying its position across chunks.
pub struct Resampler {
    step: f64,
    /// Position of the next output sample, in input samples from `last`.
    pos: f64,
    last: f32,
}

impl Resampler {
    pub fn new(from_rate: u32) -> Self {
        Self {
            step: f64::from(from_rate) / f64::from(AUDIO_RATE),
            pos: 0.0,
            last: 0.0,
        }
    }

    pub fn run(&mut self, input: &[f32]) -> Vec<f32> {
        if (self.step - 1.0).abs() < f64::EPSILON {
            return input.to_vec();
        }
        let mut out = Vec::with_capacity((input.len() as f64 / self.step) as usize + 2);
        // Sample i of `input` sits at position i + 1 (0 is `last`).
        let at = |i: usize| if i == 0 { self.last } else { input[i - 1] };
        while self.pos + 1.0 <= input.len() as f64 {
            let i = self.pos.floor() as usize;
            let frac = (self.pos - i as f64) as f32;
            out.push(at(i) * (1.0 - frac) + at(i + 1) * frac);
            self.pos += self.step;
        }
        if let Some(l) = input.last() {
            self.last = *l;
        }
        self.pos -= input.len() as f64;
        out
    }
}

/// Hands chunks to the encoder and its packets to the link.
struct ToLink {
    packets: Packets,
    tx: mpsc::Sender<AudioPacket>,
    shutdown: CancellationToken,
}

impl Sink for ToLink {
    fn take(&mut self, chunk: Chunk) -> bool {
        let tx = &self.tx;
        self.packets.push(&chunk, |p| {
            // Full: no panel takes sound now; sound is live only.
            let _ = tx.try_send(p);
        });
        !self.shutdown.is_cancelled()
    }
}

/// Starts the sound thread, if sound is on. `clock` is the file source's
/// (for `file`). An encoder that cannot start is an error now; a source
/// that fails later is reported and retried by the thread.
pub fn spawn(
    cfg: &AudioConfig,
    source: &crate::config::SourceSpec,
    clock: PlayClock,
    tx: mpsc::Sender<AudioPacket>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if !cfg.is_on() {
        return Ok(None);
    }
    let packets = Packets::new(cfg.bitrate)
        .map_err(|e| anyhow::anyhow!("cannot start the Opus encoder: {e}"))?;
    let file = match (&cfg.spec, source) {
        (AudioSpec::File, crate::config::SourceSpec::File(path)) => Some(path.clone()),
        (AudioSpec::File, _) => bail!("--audio file needs a file: source"),
        _ => None,
    };
    let spec = cfg.spec.clone();
    let mut sink = ToLink {
        packets,
        tx,
        shutdown: shutdown.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("audio".into())
        .spawn(move || match spec {
            AudioSpec::Tone => tone::run(&mut sink, &shutdown),
            AudioSpec::File => file::run(
                file.as_deref().expect("checked"),
                &clock,
                &mut sink,
                &shutdown,
            ),
            AudioSpec::Mic(device) => mic::run(device.as_deref(), &mut sink, &shutdown),
            AudioSpec::None => {}
        })?;
    Ok(Some(thread))
}

#[cfg(test)]
mod tests;
