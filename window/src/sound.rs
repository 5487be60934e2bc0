//! The window's speaker: one camera's sound at a time, live (the focus
//! view's toggle, muted until asked) or from a recording (playback at 1x
//! only). Opus is decoded here and played on the machine's sound device
//! through `cpal`; a machine without one says why, and nothing else
//! changes. The level meter on the tiles needs none of this: it reads the
//! level the agent sent with each packet.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use tokio::task::JoinHandle;

/// Opus's rate, and the rate the speaker is opened at.
const RATE: u32 = cctv_protocol::AUDIO_RATE;
/// Most sound queued ahead of the device (0.5 s): a listener never falls
/// further behind the camera than this.
const MAX_QUEUED: usize = RATE as usize / 2;
/// Samples one Opus packet may decode to (120 ms at 48 kHz).
const MAX_PACKET_SAMPLES: usize = 5760;

type Queue = Arc<Mutex<VecDeque<f32>>>;

/// Why the speaker cannot play. Kept once the device was tried, so the
/// device's own errors are kept in words.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SoundError {
    #[error("this machine has no sound device")]
    NoDevice,
    #[error("the sound device does not play 48 kHz")]
    No48kHz,
    #[error("the sound device cannot play: {0}")]
    CannotPlay(String),
    #[error("the sound device cannot start: {0}")]
    CannotStart(String),
    #[error("no camera {0}")]
    NoCamera(String),
    #[error("Opus: {0}")]
    Opus(String),
}

/// An open sound device, fed from a queue of mono samples at 48 kHz.
struct Output {
    _stream: cpal::Stream,
    queue: Queue,
}

/// What plays, and where.
#[derive(Default)]
pub struct Speaker {
    /// Opened on first use; `Err`: why this machine plays no sound.
    device: Option<Result<Output, SoundError>>,
    /// The camera heard live, and the task feeding its sound.
    live: Option<(String, JoinHandle<()>)>,
    /// Playback's decoder, and the capture time its queued sound reaches.
    playback: Option<(opus::Decoder, i64)>,
}

impl Speaker {
    /// Why there is no sound, once the device was tried.
    pub fn unavailable(&self) -> Option<&SoundError> {
        match &self.device {
            Some(Err(why)) => Some(why),
            _ => None,
        }
    }

    /// The camera heard live, if any.
    pub fn live_camera(&self) -> Option<&str> {
        self.live.as_ref().map(|(c, _)| c.as_str())
    }

    fn queue(&mut self) -> Result<Queue, SoundError> {
        let device = self.device.get_or_insert_with(open_output);
        match device {
            Ok(o) => Ok(o.queue.clone()),
            Err(why) => Err(why.clone()),
        }
    }

    /// Plays `camera`'s live sound (stopping whatever played); its packets
    /// are read from `engine` on `runtime`.
    pub fn listen(
        &mut self,
        camera: &str,
        engine: &Arc<cctv_engine::Engine>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(), SoundError> {
        self.stop();
        let queue = self.queue()?;
        let mut rx = engine
            .listen(camera)
            .ok_or_else(|| SoundError::NoCamera(camera.to_string()))?;
        let mut decoder = decoder()?;
        let task = runtime.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    Ok(p) => {
                        if let Some(pcm) = decode(&mut decoder, &p.opus) {
                            push(&queue, &pcm);
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                }
            }
        });
        self.live = Some((camera.to_string(), task));
        Ok(())
    }

    /// Silence: live sound stops, playback's queued sound is dropped.
    pub fn stop(&mut self) {
        if let Some((_, task)) = self.live.take() {
            task.abort();
        }
        self.playback = None;
        if let Some(Ok(o)) = &self.device {
            o.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Playback's sound stops (live sound, if any, goes on).
    pub fn stop_playback(&mut self) {
        if self.playback.take().is_some()
            && let Some(Ok(o)) = &self.device
        {
            o.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// Where playback's queued sound ends (capture time), if it plays.
    pub fn playback_until(&self) -> Option<i64> {
        self.playback.as_ref().map(|(_, until)| *until)
    }

    /// Starts playback's sound at `at_us` (stopping whatever played).
    pub fn start_playback(&mut self, at_us: i64) -> Result<(), SoundError> {
        self.stop();
        self.queue()?;
        self.playback = Some((decoder()?, at_us));
        Ok(())
    }

    /// Queues a recording's packets (capture time, Opus), oldest first,
    /// from where the queued sound ends: a gap between them is silence.
    pub fn play_recorded(&mut self, packets: &[(i64, Vec<u8>)]) {
        let Ok(queue) = self.queue() else {
            return;
        };
        let Some((decoder, until)) = self.playback.as_mut() else {
            return;
        };
        for (at_us, opus) in packets {
            if *at_us < *until - 10_000 {
                continue; // already queued
            }
            let gap = ((*at_us - *until).max(0) as u64 * u64::from(RATE) / 1_000_000) as usize;
            if gap > 0 {
                push(&queue, &vec![0.0; gap.min(MAX_QUEUED)]);
            }
            if let Some(pcm) = decode(decoder, opus) {
                *until = at_us + (pcm.len() as i64 * 1_000_000 / i64::from(RATE));
                push(&queue, &pcm);
            }
        }
    }
}

fn decoder() -> Result<opus::Decoder, SoundError> {
    opus::Decoder::new(RATE, opus::Channels::Mono).map_err(|e| SoundError::Opus(e.to_string()))
}

fn decode(decoder: &mut opus::Decoder, packet: &[u8]) -> Option<Vec<f32>> {
    let mut pcm = vec![0f32; MAX_PACKET_SAMPLES];
    let n = decoder.decode_float(packet, &mut pcm, false).ok()?;
    pcm.truncate(n);
    Some(pcm)
}

/// Adds samples, dropping the oldest past half a second.
fn push(queue: &Queue, pcm: &[f32]) {
    let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
    q.extend(pcm);
    let over = q.len().saturating_sub(MAX_QUEUED);
    q.drain(..over);
}

/// Opens the default sound device at 48 kHz, or says why not.
fn open_output() -> Result<Output, SoundError> {
    let host = cpal::default_host();
    let device = host.default_output_device().ok_or(SoundError::NoDevice)?;
    let range = device
        .supported_output_configs()
        .map_err(|e| SoundError::CannotPlay(e.to_string()))?
        .filter(|c| c.min_sample_rate() <= RATE && RATE <= c.max_sample_rate())
        .find(|c| c.sample_format() == cpal::SampleFormat::F32)
        .ok_or(SoundError::No48kHz)?;
    let config: cpal::StreamConfig = range.with_sample_rate(RATE).into();
    let channels = usize::from(config.channels.max(1));
    let queue: Queue = Arc::default();
    let q = queue.clone();
    let stream = device
        .build_output_stream::<f32, _, _>(
            config,
            move |out: &mut [f32], _| {
                let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
                for frame in out.chunks_mut(channels) {
                    frame.fill(q.pop_front().unwrap_or(0.0));
                }
            },
            |e| tracing::warn!("the sound device: {e}"),
            None,
        )
        .map_err(|e| SoundError::CannotPlay(e.to_string()))?;
    stream
        .play()
        .map_err(|e| SoundError::CannotStart(e.to_string()))?;
    Ok(Output {
        _stream: stream,
        queue,
    })
}

/// A level in dB below full scale as a meter's fill, 0 (silent, -60 dB
/// or quieter) to 1 (full scale).
pub fn meter_fill(peak_db: u8) -> f32 {
    (1.0 - f32::from(peak_db) / 60.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_fills_with_the_level() {
        assert_eq!(meter_fill(0), 1.0);
        assert_eq!(meter_fill(60), 0.0);
        assert_eq!(meter_fill(96), 0.0);
        assert!((meter_fill(30) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn the_queue_keeps_at_most_half_a_second() {
        let q: Queue = Arc::default();
        push(&q, &vec![0.1; MAX_QUEUED]);
        push(&q, &[0.9; 10]);
        let q = q.lock().unwrap();
        assert_eq!(q.len(), MAX_QUEUED);
        assert_eq!(q.back(), Some(&0.9));
    }
}

/// The widgets of sound: a tile's level meter, and the focus view's
/// speaker toggle.
pub mod view {
    use iced::widget::{button, column, progress_bar, row, text};
    use iced::{Alignment, Element};

    use crate::app::{App, Message};
    use crate::style;
    use cctv_engine::live::CameraStatus;

    /// A small bar of the camera's sound level; empty when nothing came.
    pub fn meter<'a>(app: &App, c: &CameraStatus) -> Element<'a, Message> {
        let fill = app.engine.sound_level(&c.id).map_or(0.0, super::meter_fill);
        row![
            text("♪").size(13),
            progress_bar(0.0..=1.0, fill).length(48).girth(6)
        ]
        .spacing(4)
        .align_y(Alignment::Center)
        .into()
    }

    /// Listen / mute, for a camera with sound; and why not, where the
    /// machine cannot play it.
    pub fn speaker<'a>(app: &'a App, c: &'a CameraStatus) -> Element<'a, Message> {
        if !c.audio {
            return text("Sound: none from this camera")
                .color(style::MUTED)
                .into();
        }
        let on = app.speaker.live_camera() == Some(c.id.as_str());
        let label = if on { "Mute (l)" } else { "Listen (l)" };
        let controls = row![
            button(text(label))
                .style(style::chosen(on))
                .on_press(Message::Listen(c.id.clone())),
            meter(app, c),
        ]
        .spacing(8)
        .align_y(Alignment::Center);
        let mut col = column![controls].spacing(4);
        if let Some(why) = app.speaker.unavailable() {
            col = col.push(text(format!("No sound here: {why}")).color(style::MUTED));
        }
        col.into()
    }
}
