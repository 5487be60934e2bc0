//! A video file's own soundtrack (AAC in MP4, and whatever else Symphonia
//! reads), played in step with its pictures: each pass over the file the
//! file source makes (`PlayClock`), the sound starts again from its
//! beginning at the same capture time, and is handed out as the clock
//! reaches it.

use std::path::Path;
use std::time::Duration;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Chunk, Resampler, Sink, mono, samples_us};
use crate::source::{Pass, PlayClock};

/// How playing one pass ended.
enum Ended {
    Stopping,
    /// The pictures started a new pass.
    NewPass,
    /// The soundtrack is over; the pictures may go on a little.
    End,
}

/// Why a file's soundtrack cannot be played.
#[derive(Debug, thiserror::Error)]
enum SoundtrackError {
    #[error("{0}")]
    Open(#[from] std::io::Error),
    #[error("cannot read its soundtrack: {0}")]
    Probe(SymphoniaError),
    #[error("the file has no soundtrack")]
    None,
    #[error("the file's soundtrack has no codec parameters")]
    NoParameters,
    #[error("cannot decode its soundtrack: {0}")]
    Codec(SymphoniaError),
    #[error("reading its soundtrack: {0}")]
    Read(SymphoniaError),
    #[error("decoding its soundtrack: {0}")]
    Decode(SymphoniaError),
}

pub fn run(path: &Path, clock: &PlayClock, sink: &mut dyn Sink, shutdown: &CancellationToken) {
    let mut last_pass = None;
    loop {
        let Some(pass) = wait_for_pass(clock, last_pass, shutdown) else {
            return;
        };
        last_pass = Some(pass.number);
        match play(path, pass, clock, sink, shutdown) {
            Ok(Ended::Stopping) => return,
            Ok(Ended::NewPass) => last_pass = None,
            Ok(Ended::End) => {}
            Err(e) => {
                warn!(file = %path.display(), "no sound: {e}; the pictures go on");
                return;
            }
        }
    }
}

/// Waits for a pass other than `done` (the one just played to its end).
fn wait_for_pass(
    clock: &PlayClock,
    done: Option<u64>,
    shutdown: &CancellationToken,
) -> Option<Pass> {
    loop {
        if shutdown.is_cancelled() {
            return None;
        }
        if let Some(p) = clock.get()
            && Some(p.number) != done
        {
            return Some(p);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn play(
    path: &Path,
    pass: Pass,
    clock: &PlayClock,
    sink: &mut dyn Sink,
    shutdown: &CancellationToken,
) -> Result<Ended, SoundtrackError> {
    let file = std::fs::File::open(path)?;
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(SoundtrackError::Probe)?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(SoundtrackError::None)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(SoundtrackError::NoParameters)?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(SoundtrackError::Codec)?;
    if pass.number == 0 {
        info!(
            file = %path.display(),
            rate = params.sample_rate.unwrap_or(0),
            "sound from the file's soundtrack"
        );
    }
    let mut resampler: Option<(u32, Resampler)> = None;
    // Samples at 48 kHz handed out in this pass.
    let mut position = 0usize;
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        if shutdown.is_cancelled() {
            return Ok(Ended::Stopping);
        }
        let now_pass = clock.get();
        if now_pass.map(|p| p.number) != Some(pass.number) {
            return Ok(Ended::NewPass);
        }
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(Ended::End),
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(Ended::End);
            }
            Err(e) => return Err(SoundtrackError::Read(e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymphoniaError::DecodeError(_)) => continue, // one bad packet
            Err(e) => return Err(SoundtrackError::Decode(e)),
        };
        let rate = decoded.spec().rate();
        let channels = decoded.spec().channels().count().max(1);
        interleaved.resize(decoded.samples_interleaved(), 0.0);
        decoded.copy_to_slice_interleaved(&mut interleaved);
        let r = match &mut resampler {
            Some((r_rate, r)) if *r_rate == rate => r,
            slot => &mut slot.insert((rate, Resampler::new(rate))).1,
        };
        let samples = r.run(&mono(&interleaved, channels));
        if samples.is_empty() {
            continue;
        }
        let start_us = pass.start_us + samples_us(position);
        // Handed out as the clock reaches its end, like a microphone's.
        let end_us = start_us + samples_us(samples.len());
        let now = cctv_protocol::now_us();
        if end_us > now {
            std::thread::sleep(Duration::from_micros(end_us - now));
        }
        let new_run = position == 0;
        position += samples.len();
        if !sink.take(Chunk {
            start_us,
            samples,
            new_run,
        }) {
            return Ok(Ended::Stopping);
        }
    }
}
