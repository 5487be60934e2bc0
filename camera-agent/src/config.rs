//! The agent's settings: command-line flags over a TOML file over defaults.
//!
//! Owns parsing and checking of every setting, so the rest of the agent gets
//! values that are already valid. It never opens devices or sockets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde::Deserialize;

pub const DEFAULT_QUALITY: u8 = 80;
pub const DEFAULT_PATTERN_FPS: f64 = 10.0;
pub const DEFAULT_MAX_BACKOFF_SECS: f64 = 5.0;

mod analysis;
pub use analysis::AnalysisConfig;
use analysis::analysis_config;
mod encoding;
pub use encoding::DEFAULT_PREVIEW_WIDTH;
use encoding::check_encoding;
mod forward;
pub use forward::{PanelAddr, SpoolConfig, parse_size};

/// Pushes one camera's JPEG frames to the panel.
///
/// Every flag can also be set in the TOML file given with --config, under the
/// same name with underscores (camera_id = "door", max_backoff = 10, ...).
/// Flags win over the file.
#[derive(Debug, Parser, Default)]
#[command(name = "camera-agent", version)]
pub struct Cli {
    /// Panel address, HOST:PORT (e.g. 192.168.1.10:7700). Repeat it to
    /// list standby panels, in order: the agent moves to the next when one
    /// has been unreachable for --failover seconds.
    #[arg(long)]
    pub panel: Vec<String>,
    /// Stable camera id: letters, digits, '_', '.', '-' (at most 64).
    #[arg(long)]
    pub camera_id: Option<String>,
    /// Human name shown on the wall [default: the camera id].
    #[arg(long)]
    pub name: Option<String>,
    /// What to capture: test-pattern[:WxH], file:PATH, webcam:INDEX or
    /// webcam:/dev/videoN [default: test-pattern:640x360].
    #[arg(long)]
    pub source: Option<String>,
    /// Frame rate limit [default: the file's or webcam's own rate; 10 for the test pattern].
    #[arg(long)]
    pub fps: Option<f64>,
    /// JPEG quality, 1-100 [default: 80; a webcam's own MJPEG is sent as it is unless set].
    #[arg(long)]
    pub quality: Option<u8>,
    /// Widest frame to send, in pixels; larger frames are scaled down [default: no limit].
    #[arg(long)]
    pub width: Option<u32>,
    /// Smallest width of the small copy of each live frame sent to a
    /// panel with a window, for its wall, in pixels (the copy is under
    /// twice as wide); 0 sends none [default: 320].
    #[arg(long)]
    pub preview_width: Option<u32>,
    /// Burn the capture time and camera name into each frame.
    #[arg(long)]
    pub overlay: bool,
    /// Play a file source once instead of looping it.
    #[arg(long)]
    pub no_loop: bool,
    /// The camera's sound: none, default (the default microphone),
    /// alsa:DEVICE (e.g. alsa:hw:1,0), file (the file source's own
    /// soundtrack) or tone (a beep each second) [default: none].
    #[arg(long)]
    pub audio: Option<String>,
    /// Opus bitrate of the sound, bits a second, 6000 to 128000 [default: 24000].
    #[arg(long)]
    pub audio_bitrate: Option<u32>,
    /// Longest wait between reconnection attempts, in seconds [default: 5].
    #[arg(long)]
    pub max_backoff: Option<f64>,
    /// The camera's secret, from `panel camera add` (64 hex digits). Better
    /// kept in the config file (chmod 600) than on the command line.
    #[arg(long, env = "CCTV_AGENT_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The panel certificate's fingerprint (sha256:...), from `panel camera
    /// add` or the panel's start-up log. Without it the first certificate seen
    /// is trusted and written into the config file.
    /// With several panels, one per panel, in the same order.
    #[arg(long)]
    pub panel_fingerprint: Vec<String>,
    /// Connect without TLS, to a panel set to plain_tcp (trusted LAN only).
    #[arg(long)]
    pub plain_tcp: bool,
    /// Send every frame, whether the scene moves or not [default: follow
    /// the scene: the idle rate while nothing moves, full rate on motion].
    #[arg(long)]
    pub full_rate: bool,
    /// Frames per second sent while nothing moves [default: 1].
    #[arg(long)]
    pub idle_fps: Option<f64>,
    /// Seconds before motion sent with it, at full rate [default: 3].
    #[arg(long)]
    pub preroll: Option<f64>,
    /// Seconds after motion ends still sent at full rate [default: 5].
    #[arg(long)]
    pub postroll: Option<f64>,
    /// Motion sensitivity, 1 (only large, strong changes) to 100 [default: 50].
    #[arg(long)]
    pub sensitivity: Option<u8>,
    /// Percent of the watched picture that must move [default: 0.2].
    #[arg(long)]
    pub min_area: Option<f32>,
    /// Analyse nothing: no motion or tamper events, every frame sent.
    #[arg(long)]
    pub no_analysis: bool,
    /// Seconds a panel may be unreachable before the agent streams to the
    /// next one listed [default: 30].
    #[arg(long)]
    pub failover: Option<f64>,
    /// Where frames wait until a panel acknowledges them, one directory per
    /// camera inside it; "none": no spool [default: $STATE_DIRECTORY/spool,
    /// or ~/.local/state/camera-agent/spool].
    #[arg(long)]
    pub spool_dir: Option<PathBuf>,
    /// Keep no spool: frames captured while no panel takes them are lost.
    #[arg(long)]
    pub no_spool: bool,
    /// The spool's size limit, e.g. 4G or 512M; past it the oldest frames
    /// go first [default: 4G].
    #[arg(long)]
    pub spool_max_bytes: Option<String>,
    /// Frames older than this many hours leave the spool [default: no limit].
    #[arg(long)]
    pub spool_max_hours: Option<f64>,
    /// Send spooled frames at most this fast, bytes a second (e.g. 2M)
    /// [default: about half of what the link takes].
    #[arg(long)]
    pub backfill_rate: Option<String>,
    /// Append a line per frame captured and per range acknowledged to this
    /// file (seq, capture time, panel): an audit of what was sent.
    #[arg(long)]
    pub frame_log: Option<PathBuf>,
    /// TOML file with any of the settings above, and `ignore_zones`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
}

/// What the agent can do besides streaming.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Fetch this camera's settings from the panel with the one-time code
    /// `panel camera add --pair` showed, pin the panel's certificate, and
    /// write them into the config file (mode 600), keeping its other settings.
    Pair {
        /// The panel's agent address, HOST:PORT.
        panel: String,
        /// The code, e.g. ABCDE-FGHJK.
        code: String,
        /// The config file to write.
        #[arg(long, default_value = "/etc/camera-agent/agent.toml")]
        config: PathBuf,
    },
}

/// The same settings, as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub panel: Option<forward::OneOrMore>,
    pub camera_id: Option<String>,
    pub name: Option<String>,
    pub source: Option<String>,
    pub fps: Option<f64>,
    pub quality: Option<u8>,
    pub width: Option<u32>,
    pub preview_width: Option<u32>,
    pub overlay: Option<bool>,
    #[serde(rename = "loop")]
    pub loop_file: Option<bool>,
    pub audio: Option<String>,
    pub audio_bitrate: Option<u32>,
    pub max_backoff: Option<f64>,
    pub secret: Option<String>,
    pub panel_fingerprint: Option<forward::OneOrMore>,
    pub plain_tcp: Option<bool>,
    pub failover: Option<f64>,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: Option<forward::Size>,
    pub spool_max_hours: Option<f64>,
    pub backfill_rate: Option<forward::Size>,
    pub frame_log: Option<PathBuf>,
    pub full_rate: Option<bool>,
    pub idle_fps: Option<f64>,
    pub preroll: Option<f64>,
    pub postroll: Option<f64>,
    pub sensitivity: Option<u8>,
    pub min_area: Option<f32>,
    /// Parts of the picture where motion does not count: polygons of
    /// `[x, y]` points in fractions of the width and height (0 to 1).
    pub ignore_zones: Option<Vec<Vec<[f32; 2]>>>,
    pub analysis: Option<bool>,
}

/// How the agent reaches the panel.
#[derive(Debug, Clone)]
pub enum Transport {
    /// TLS, trusting the panel's certificate by its fingerprint.
    Tls(cctv_protocol::tls::Pin),
    /// Plain TCP, on a trusted LAN.
    Plain,
}

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    TestPattern { width: u32, height: u32 },
    File(PathBuf),
    WebcamIndex(u32),
    WebcamPath(PathBuf),
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::TestPattern { width, height } => write!(f, "test-pattern:{width}x{height}"),
            SourceSpec::File(p) => write!(f, "file:{}", p.display()),
            SourceSpec::WebcamIndex(i) => write!(f, "webcam:{i}"),
            SourceSpec::WebcamPath(p) => write!(f, "webcam:{}", p.display()),
        }
    }
}

impl std::str::FromStr for SourceSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if s == "test-pattern" {
            return Ok(SourceSpec::TestPattern {
                width: 640,
                height: 360,
            });
        }
        if let Some(size) = s.strip_prefix("test-pattern:") {
            let (w, h) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
                .with_context(|| format!("test pattern size {size:?} is not WIDTHxHEIGHT"))?;
            if !(16..=7680).contains(&w) || !(16..=4320).contains(&h) {
                bail!("test pattern size {w}x{h} is outside 16x16..7680x4320");
            }
            return Ok(SourceSpec::TestPattern {
                width: w & !1,
                height: h & !1,
            });
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                bail!("source file: needs a path (file:/path/to/video.avi)");
            }
            return Ok(SourceSpec::File(PathBuf::from(path)));
        }
        if let Some(dev) = s.strip_prefix("webcam:") {
            if let Ok(i) = dev.parse::<u32>() {
                return Ok(SourceSpec::WebcamIndex(i));
            }
            if dev.starts_with('/') {
                return Ok(SourceSpec::WebcamPath(PathBuf::from(dev)));
            }
            bail!(
                "webcam {dev:?} is neither an index (webcam:0) nor a device path (webcam:/dev/video0)"
            );
        }
        if s == "webcam" {
            return Ok(SourceSpec::WebcamIndex(0));
        }
        bail!(
            "unknown source {s:?}: use test-pattern[:WxH], file:PATH, webcam:INDEX or webcam:/dev/videoN"
        )
    }
}

/// Everything the agent needs, checked.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The panels, in order of preference (at least one).
    pub panels: Vec<PanelAddr>,
    /// How long a panel may be unreachable before the next is tried.
    pub failover: Duration,
    pub spool: SpoolConfig,
    pub frame_log: Option<PathBuf>,
    pub camera_id: String,
    pub name: String,
    pub source: SourceSpec,
    /// `None`: the source's own rate.
    pub fps: Option<f64>,
    /// `None`: 80, or a webcam's MJPEG as it is.
    pub quality: Option<u8>,
    pub max_width: Option<u32>,
    /// Least width of each live frame's preview, for a panel that takes it; 0: none.
    pub preview_width: u32,
    pub overlay: bool,
    pub loop_file: bool,
    /// The camera's sound; off unless asked for.
    pub audio: crate::audio::AudioConfig,
    pub max_backoff: Duration,
    pub secret: cctv_protocol::auth::Secret,
    /// The config file, where a fingerprint trusted on first use is written.
    pub config_path: Option<PathBuf>,
    /// Motion and tamper analysis; `None`: off, every frame sent.
    pub analysis: Option<AnalysisConfig>,
}

/// TLS to a pinned certificate (or the first one seen), or plain TCP.
fn transport(plain: bool, fingerprint: Option<String>) -> anyhow::Result<Transport> {
    Ok(match (plain, fingerprint) {
        (true, Some(_)) => bail!("plain_tcp and panel_fingerprint together: choose one"),
        (true, None) => Transport::Plain,
        (false, Some(f)) => Transport::Tls(cctv_protocol::tls::Pin::Fixed(
            cctv_protocol::tls::Fingerprint::parse(&f)?,
        )),
        (false, None) => Transport::Tls(cctv_protocol::tls::Pin::FirstUse(Default::default())),
    })
}

impl AgentConfig {
    pub fn from_cli(cli: Cli) -> anyhow::Result<Self> {
        let file = match &cli.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let analysis = analysis_config(&cli, &file)?;
        let panels = forward::panels(&cli, &file)?;
        let failover = forward::failover(&cli, &file)?;
        let camera_id = cli
            .camera_id
            .clone()
            .or(file.camera_id.clone())
            .context("no camera id: pass --camera-id ID or set camera_id in the config file")?;
        cctv_protocol::validate_camera_id(&camera_id)
            .map_err(|why| anyhow::anyhow!("camera id {camera_id:?}: {why}"))?;
        let spool = forward::spool_config(&cli, &file, &camera_id)?;
        let name = cli.name.or(file.name).unwrap_or_else(|| camera_id.clone());
        cctv_protocol::validate_camera_name(&name).map_err(|why| anyhow::anyhow!("{why}"))?;
        let source = match cli.source.or(file.source) {
            Some(s) => s.parse()?,
            None => "test-pattern".parse()?,
        };
        let fps = cli.fps.or(file.fps);
        let quality = cli.quality.or(file.quality);
        let max_width = cli.width.or(file.width).filter(|w| *w > 0);
        check_encoding(fps, quality, max_width)?;
        let preview_width = encoding::preview_width(cli.preview_width.or(file.preview_width))?;
        let max_backoff = cli
            .max_backoff
            .or(file.max_backoff)
            .unwrap_or(DEFAULT_MAX_BACKOFF_SECS);
        if !(0.1..=3600.0).contains(&max_backoff) {
            bail!("max backoff {max_backoff} s is outside 0.1..3600");
        }
        let secret = cli.secret.or(file.secret).context(
            "no secret: run `panel camera add --id ID` on the panel and put the secret it prints \
             in the agent's config file (secret = \"...\")",
        )?;
        let secret = cctv_protocol::auth::Secret::parse(&secret)
            .map_err(|why| anyhow::anyhow!("secret: {why}"))?;
        let audio = crate::audio::AudioConfig::new(
            match cli.audio.or(file.audio) {
                Some(a) => a.parse()?,
                None => crate::audio::AudioSpec::None,
            },
            cli.audio_bitrate.or(file.audio_bitrate),
        )?;
        if audio.spec == crate::audio::AudioSpec::File && !matches!(source, SourceSpec::File(_)) {
            bail!("audio = \"file\" plays the file source's soundtrack: the source is {source}");
        }
        Ok(Self {
            audio,
            secret,
            analysis,
            config_path: cli.config.clone(),
            panels,
            failover,
            spool,
            frame_log: cli.frame_log.or(file.frame_log),
            camera_id,
            name,
            source,
            fps,
            quality,
            max_width,
            preview_width,
            overlay: cli.overlay || file.overlay.unwrap_or(false),
            loop_file: !cli.no_loop && file.loop_file.unwrap_or(true),
            max_backoff: Duration::from_secs_f64(max_backoff),
        })
    }
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::parse_from(std::iter::once("camera-agent").chain(args.iter().copied()))
    }

    #[test]
    fn sources_parse() {
        assert_eq!(
            "test-pattern:1280x720".parse::<SourceSpec>().unwrap(),
            SourceSpec::TestPattern {
                width: 1280,
                height: 720
            }
        );
        assert_eq!(
            "webcam:/dev/video2".parse::<SourceSpec>().unwrap(),
            SourceSpec::WebcamPath("/dev/video2".into())
        );
        assert_eq!(
            "webcam:1".parse::<SourceSpec>().unwrap(),
            SourceSpec::WebcamIndex(1)
        );
        assert!("rtsp://x".parse::<SourceSpec>().is_err());
        assert!("test-pattern:0x0".parse::<SourceSpec>().is_err());
        assert!("webcam:front".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            format!(
                "panel = \"10.0.0.1:7700\"\ncamera_id = \"door\"\nquality = 60\nfps = 5\nloop = false\nsecret = \"{}\"\n",
                "ab".repeat(32)
            ),
        )
        .unwrap();
        let c = AgentConfig::from_cli(cli(&[
            "--config",
            path.to_str().unwrap(),
            "--quality",
            "90",
        ]))
        .unwrap();
        assert_eq!(c.panels[0].address, "10.0.0.1:7700");
        assert_eq!(c.camera_id, "door");
        assert_eq!(c.name, "door");
        assert_eq!(c.quality, Some(90));
        assert_eq!(c.fps, Some(5.0));
        assert!(!c.loop_file);
        assert_eq!(c.secret.as_bytes(), &[0xab; 32]);
        assert!(matches!(
            c.panels[0].transport,
            Transport::Tls(cctv_protocol::tls::Pin::FirstUse(_))
        ));
        assert_eq!(
            c.source,
            SourceSpec::TestPattern {
                width: 640,
                height: 360
            }
        );
    }

    #[test]
    fn the_example_config_in_deploy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.toml");
        let c = AgentConfig::from_cli(cli(&["--config", path.to_str().unwrap()])).unwrap();
        assert_eq!(c.source, SourceSpec::WebcamPath("/dev/video0".into()));
        assert_eq!(c.camera_id, "front-door");
        assert!(matches!(
            c.panels[0].transport,
            Transport::Tls(cctv_protocol::tls::Pin::Fixed(_))
        ));
    }

    #[test]
    fn motion_settings_and_zones_come_from_the_file_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let base = format!(
            "panel = \"h:1\"\ncamera_id = \"x\"\nsecret = \"{}\"\n",
            "ab".repeat(32)
        );
        std::fs::write(
            &path,
            format!(
                "{base}sensitivity = 70\nmin_area = 1.5\npreroll = 2\n\
                 ignore_zones = [[[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]]\n"
            ),
        )
        .unwrap();
        let c = AgentConfig::from_cli(cli(&[
            "--config",
            path.to_str().unwrap(),
            "--postroll",
            "9",
        ]))
        .unwrap();
        let a = c.analysis.expect("analysis on by default");
        assert_eq!(a.motion.sensitivity, 70);
        assert!((a.motion.min_area - 0.015).abs() < 1e-6);
        assert_eq!(a.pace.preroll, Duration::from_secs(2));
        assert_eq!(a.pace.postroll, Duration::from_secs(9));
        assert!(!a.pace.full_rate);
        // The left half of the 16x12 grid is ignored, the right watched.
        assert_eq!(a.motion.ignore.len(), 16 * 12);
        assert!(a.motion.ignore[0] && a.motion.ignore[7] && !a.motion.ignore[8]);

        std::fs::write(
            &path,
            format!("{base}ignore_zones = [[[0.0, 0.0], [2.0, 0.0], [0.0, 1.0]]]\n"),
        )
        .unwrap();
        let err = AgentConfig::from_cli(cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("outside 0..1"), "{err}");
        std::fs::write(
            &path,
            format!("{base}ignore_zones = [[[0.0, 0.0], [1.0, 0.0]]]\n"),
        )
        .unwrap();
        let err = AgentConfig::from_cli(cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("3 or more"), "{err}");
        std::fs::write(&path, format!("{base}analysis = false\n")).unwrap();
        let c = AgentConfig::from_cli(cli(&["--config", path.to_str().unwrap()])).unwrap();
        assert!(c.analysis.is_none());
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        let err = AgentConfig::from_cli(cli(&["--camera-id", "x"])).unwrap_err();
        assert!(err.to_string().contains("--panel"), "{err}");
        let err =
            AgentConfig::from_cli(cli(&["--panel", "h:1", "--camera-id", "../x"])).unwrap_err();
        assert!(err.to_string().contains("camera id"), "{err}");
        let err = AgentConfig::from_cli(cli(&[
            "--panel",
            "h:1",
            "--camera-id",
            "x",
            "--quality",
            "0",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("quality"), "{err}");
        let err = AgentConfig::from_cli(cli(&["--panel", "h:1", "--camera-id", "x"])).unwrap_err();
        assert!(err.to_string().contains("panel camera add"), "{err}");
        let err = AgentConfig::from_cli(cli(&[
            "--panel",
            "h:1",
            "--camera-id",
            "x",
            "--secret",
            "1234",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        let secret = "0".repeat(64);
        let err = AgentConfig::from_cli(cli(&[
            "--panel",
            "h:1",
            "--camera-id",
            "x",
            "--secret",
            &secret,
            "--plain-tcp",
            "--panel-fingerprint",
            "sha256:00",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("choose one"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "panle = \"typo:1\"\n").unwrap();
        let err = AgentConfig::from_cli(cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("panle"), "{err:#}");
    }
}
