//! A microphone through ALSA (`cpal`): its samples, whatever their format,
//! rate and channels, become mono 48 kHz chunks stamped with the time they
//! were captured. A microphone that cannot be opened, fails (unplugged) or
//! stops delivering is reported once and tried again every few seconds;
//! the pictures never wait for it.

use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Chunk, Resampler, Sink, mono, samples_us};

/// Silence from an open microphone for this long means it stopped.
const STALLED_AFTER: Duration = Duration::from_secs(2);
/// How often a missing or failed microphone is tried again.
const RETRY_EVERY: Duration = Duration::from_secs(5);

enum Heard {
    Sound(Chunk),
    Failed(String),
}

pub fn run(device: Option<&str>, sink: &mut dyn Sink, shutdown: &CancellationToken) {
    // The reason last logged, so a microphone that stays missing is
    // reported once, not every retry.
    let mut missing: Option<String> = None;
    let name = device.unwrap_or("the default microphone");
    while !shutdown.is_cancelled() {
        let (why, stream) = match open(device) {
            Ok((stream, heard)) => {
                match missing.take() {
                    Some(_) => info!(microphone = name, "the microphone is back: sound again"),
                    None => info!(microphone = name, "sound from the microphone"),
                }
                match listen(&heard, sink, shutdown) {
                    Some(why) => (why, Some(stream)),
                    None => return, // stopping
                }
            }
            Err(e) => (e.to_string(), None),
        };
        if missing.as_deref() != Some(why.as_str()) {
            warn!(
                microphone = name,
                "no sound: {why}; the pictures go on, and the microphone is tried again every {} s",
                RETRY_EVERY.as_secs()
            );
            missing = Some(why);
        }
        // A driver stuck in a read can hold the stream's closing up: it is
        // closed aside, never in the way of trying again.
        if let Some(stream) = stream {
            let _ = std::thread::Builder::new()
                .name("audio-close".into())
                .spawn(move || drop(stream));
        }
        let until = Instant::now() + RETRY_EVERY;
        while Instant::now() < until && !shutdown.is_cancelled() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Passes what the microphone delivers on until it fails or stops: why,
/// or `None` when the agent is stopping.
fn listen(
    heard: &std::sync::mpsc::Receiver<Heard>,
    sink: &mut dyn Sink,
    shutdown: &CancellationToken,
) -> Option<String> {
    let mut last = Instant::now();
    loop {
        match heard.recv_timeout(Duration::from_millis(200)) {
            Ok(Heard::Sound(chunk)) => {
                last = Instant::now();
                if !sink.take(chunk) {
                    return None;
                }
            }
            Ok(Heard::Failed(e)) => return Some(format!("the microphone failed ({e})")),
            Err(RecvTimeoutError::Disconnected) => {
                return Some("the microphone's stream ended".into());
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if shutdown.is_cancelled() {
            return None;
        }
        if last.elapsed() > STALLED_AFTER {
            return Some(format!(
                "the microphone stopped delivering sound (nothing for {} s)",
                STALLED_AFTER.as_secs()
            ));
        }
    }
}

/// Why the microphone cannot be opened.
#[derive(Debug, thiserror::Error)]
enum MicError {
    #[error("{id}: {why}")]
    BadDeviceId { id: String, why: String },
    #[error("there is no sound device {0}")]
    NoSuchDevice(String),
    #[error("this machine has no microphone")]
    NoMicrophone,
    #[error("the microphone cannot record: {0}")]
    CannotRecord(String),
    #[error("the microphone's sample format {0} is not supported")]
    Unsupported(SampleFormat),
    #[error("the microphone cannot start: {0}")]
    CannotStart(String),
}

fn open(
    device: Option<&str>,
) -> Result<(cpal::Stream, std::sync::mpsc::Receiver<Heard>), MicError> {
    let host = cpal::default_host();
    let dev = match device {
        Some(id) => {
            let id: cpal::DeviceId = id.parse().map_err(|e| MicError::BadDeviceId {
                id: id.to_string(),
                why: format!("{e}"),
            })?;
            host.device_by_id(&id)
                .ok_or_else(|| MicError::NoSuchDevice(id.to_string()))?
        }
        None => host.default_input_device().ok_or(MicError::NoMicrophone)?,
    };
    let config = dev
        .default_input_config()
        .map_err(|e| MicError::CannotRecord(e.to_string()))?;
    let (tx, rx) = sync_channel(50);
    let format = config.sample_format();
    let config: cpal::StreamConfig = config.into();
    let stream = match format {
        SampleFormat::F32 => build::<f32>(&dev, &config, tx),
        SampleFormat::I16 => build::<i16>(&dev, &config, tx),
        SampleFormat::I32 => build::<i32>(&dev, &config, tx),
        SampleFormat::U8 => build::<u8>(&dev, &config, tx),
        SampleFormat::U16 => build::<u16>(&dev, &config, tx),
        other => return Err(MicError::Unsupported(other)),
    }
    .map_err(|e| MicError::CannotRecord(e.to_string()))?;
    stream
        .play()
        .map_err(|e| MicError::CannotStart(e.to_string()))?;
    Ok((stream, rx))
}

fn build<T>(
    dev: &cpal::Device,
    config: &cpal::StreamConfig,
    tx: SyncSender<Heard>,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let rate = config.sample_rate;
    let mut resampler = Resampler::new(rate);
    let mut interleaved = Vec::new();
    // A device that delivers faster than real time (a broken driver)
    // must not flood the panel: what is beyond real time is dropped.
    let started = Instant::now();
    let mut delivered = 0u64;
    let failed = tx.clone();
    dev.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _| {
            let frames = (data.len() / channels) as u64;
            let allowed = (started.elapsed().as_secs_f64() + 0.5) * f64::from(rate);
            if delivered as f64 > allowed {
                return;
            }
            delivered += frames;
            interleaved.clear();
            interleaved.extend(data.iter().map(|s| s.to_sample::<f32>()));
            let samples = resampler.run(&mono(&interleaved, channels));
            // The last sample was captured just now.
            let start_us = cctv_protocol::now_us().saturating_sub(samples_us(samples.len()));
            let _ = tx.try_send(Heard::Sound(Chunk {
                start_us,
                samples,
                new_run: false,
            }));
        },
        move |e| {
            let _ = failed.try_send(Heard::Failed(e.to_string()));
        },
        None,
    )
}
