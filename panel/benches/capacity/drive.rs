//! The capacity benchmark's simulated agents, and the measured window:
//! K agents stream to each server under test while its CPU is read.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

use super::common::{self, cpu_secs};
use super::machine::{dirty_mb, kernel_threads_between, kernel_threads_secs};
use super::{Case, MEASURE, WARMUP};

/// Bytes of one simulated Opus packet (24 kbit/s, 20 ms).
pub const OPUS_BYTES: usize = 60;
/// `Audio` on the wire: header, capture time, samples, level, packet.
pub const AUDIO_WIRE_BYTES: usize = cctv_protocol::HEADER_LEN + 11 + OPUS_BYTES;

/// The panel's certificate, for agents of a TLS case.
pub static PIN: std::sync::Mutex<Option<cctv_protocol::tls::Fingerprint>> =
    std::sync::Mutex::new(None);

/// One simulated agent: Hello (and Welcome unless `floor`), then frames at `fps`.
async fn agent(
    addr: std::net::SocketAddr,
    i: usize,
    case: Case,
    frames: std::sync::Arc<Vec<Bytes>>,
    stop: Instant,
    floor: bool,
) -> u64 {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return 0;
    };
    let _ = tcp.set_nodelay(true);
    let pin = *PIN.lock().unwrap();
    let mut s: Box<dyn cctv_engine::tls::Io> = match pin.filter(|_| case.tls && !floor) {
        None => Box::new(tcp),
        Some(f) => {
            let connector = tokio_rustls::TlsConnector::from(cctv_protocol::tls::client_config(
                cctv_protocol::tls::Pin::Fixed(f),
            ));
            match connector
                .connect(cctv_protocol::tls::panel_server_name(), tcp)
                .await
            {
                Ok(t) => Box::new(t),
                Err(_) => return 0,
            }
        }
    };
    let hello = cctv_protocol::Hello {
        camera_id: format!("cam{i:03}"),
        name: format!("Camera {i}"),
        agent_version: if case.audio { "bench +audio" } else { "bench" }.into(),
        width: case.w,
        height: case.h,
        fps_milli: case.fps * 1000,
        credentials: Bytes::new(),
    };
    if floor {
        // The floor server only counts bytes: no handshake.
        let bytes = cctv_protocol::encode_to_bytes(
            &cctv_protocol::Message::Hello(hello),
            &Default::default(),
        )
        .unwrap();
        if s.write_all(&bytes).await.is_err() {
            return 0;
        }
    } else {
        match common::handshake(s, hello).await {
            Some(conn) => s = conn.into_inner(),
            None => return 0,
        }
    }
    // Spread agents over the frame interval, as real cameras would be.
    let period = Duration::from_micros(1_000_000 / u64::from(case.fps));
    tokio::time::sleep(period.mul_f64(i as f64 / case.k as f64)).await;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    let mut head = BytesMut::with_capacity(28);
    let mut sound = tokio::time::interval(Duration::from_millis(20));
    sound.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < stop {
        if case.audio {
            let packet = tokio::select! {
                _ = tick.tick() => false,
                _ = sound.tick() => true,
            };
            if packet {
                head.clear();
                head.put_slice(&cctv_protocol::MAGIC);
                head.put_u8(cctv_protocol::VERSION);
                head.put_u8(cctv_protocol::MessageType::Audio.code());
                head.put_u16(0);
                head.put_u32(11 + OPUS_BYTES as u32);
                head.put_u64(cctv_protocol::now_us());
                head.put_u16(960);
                head.put_u8(20);
                head.put_slice(&[0xfc; OPUS_BYTES]);
                if s.write_all(&head).await.is_err() {
                    break;
                }
                continue;
            }
        } else {
            tick.tick().await;
        }
        let jpeg = &frames[(sent as usize + i) % frames.len()];
        head.clear();
        head.put_slice(&cctv_protocol::MAGIC);
        head.put_u8(cctv_protocol::VERSION);
        head.put_u8(cctv_protocol::MessageType::Frame.code());
        head.put_u16(0);
        head.put_u32(16 + jpeg.len() as u32);
        head.put_u64(sent);
        head.put_u64(cctv_protocol::now_us());
        if s.write_all(&head).await.is_err() || s.write_all(jpeg).await.is_err() {
            break;
        }
        sent += 1;
    }
    let _ = s.shutdown().await;
    sent
}

/// What a measurement cost: the server process's CPU seconds, and with
/// the kernel threads' (those that write its files back).
#[derive(Clone, Copy)]
pub struct Cpu {
    pub process: f64,
    pub with_kernel: f64,
    /// The page cache's dirty MB as the window ended (before `sync`).
    pub dirty_mb: f64,
}

/// A server the agents stream to: where it listens, its process, and
/// whether it is the floor (no handshake).
#[derive(Clone, Copy)]
pub struct Target {
    pub addr: std::net::SocketAddr,
    pub pid: u32,
    pub floor: bool,
}

/// What one server took in a run: frames sent to it in total, sent during
/// the measurement, and the CPU it cost during it.
#[derive(Clone, Copy)]
pub struct Driven {
    pub sent: u64,
    pub in_window: u64,
    pub cpu: Cpu,
}

impl Driven {
    /// `secs` of CPU per 1,000 frames of the measurement.
    pub fn per_1000(&self, secs: f64) -> f64 {
        secs / (self.in_window as f64 / 1000.0)
    }
}

/// Drives K agents at `target` for warm-up + measure.
pub fn drive(target: Target, case: Case, frames: &[Bytes]) -> Driven {
    drive_all(&[target], case, frames)[0]
}

/// Drives K agents at each target at once, for warm-up + measure, each
/// camera's frames at the same moments to every target. With several
/// targets, each one's `with_kernel` holds the kernel threads' whole
/// share, which cannot be told apart between them.
pub fn drive_all(targets: &[Target], case: Case, frames: &[Bytes]) -> Vec<Driven> {
    // No measurement starts with another run's dirty pages still waiting
    // to be written back.
    let _ = Command::new("sync").status();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let frames = std::sync::Arc::new(frames.to_vec());
    let stop = Instant::now() + WARMUP + MEASURE;
    let tasks: Vec<Vec<_>> = targets
        .iter()
        .map(|t| {
            (0..case.k)
                .map(|i| rt.spawn(agent(t.addr, i, case, frames.clone(), stop, t.floor)))
                .collect()
        })
        .collect();
    std::thread::sleep(WARMUP);
    // The `+kernel` figure counts the writeback of what the window wrote,
    // all of it and no more: what the warm-up wrote is on disk before the
    // window starts, and the window's own is written back (`sync`) before
    // it is read. The server's process figure is the window alone.
    let _ = Command::new("sync").status();
    let t0 = Instant::now();
    let cpu = |ts: &[Target]| ts.iter().map(|t| cpu_secs(t.pid)).collect::<Vec<_>>();
    let (c0, k0) = (cpu(targets), kernel_threads_secs());
    std::thread::sleep(stop.saturating_duration_since(Instant::now()));
    let (c1, dirty_mb) = (cpu(targets), dirty_mb());
    let window = t0.elapsed();
    let sent: Vec<u64> = rt.block_on(async {
        let mut sent = Vec::new();
        for ts in tasks {
            let mut n = 0;
            for t in ts {
                n += t.await.unwrap_or(0);
            }
            sent.push(n);
        }
        sent
    });
    let _ = Command::new("sync").status();
    let k1 = kernel_threads_secs();
    let kernel = kernel_threads_between(&k0, &k1);
    let share = window.as_secs_f64() / (WARMUP + MEASURE).as_secs_f64();
    (0..targets.len())
        .map(|j| Driven {
            sent: sent[j],
            in_window: (sent[j] as f64 * share) as u64,
            cpu: Cpu {
                process: c1[j] - c0[j],
                // The server's own part of the writeback: the window's only.
                with_kernel: (c1[j] - c0[j]) + kernel,
                dirty_mb,
            },
        })
        .collect()
}
