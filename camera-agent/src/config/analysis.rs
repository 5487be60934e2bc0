//! The agent's motion analysis and pacing settings: from flags over the
//! config file over defaults, and as the panel's `Detect` changes them.

use std::time::Duration;

use anyhow::bail;

use super::{Cli, FileConfig};

/// What the agent analyses and how it paces frames by it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    pub motion: crate::analysis::MotionSettings,
    pub pace: crate::pace::PaceSettings,
}

impl AnalysisConfig {
    /// Applies the panel's `Detect`: the fields it sets, the others kept.
    pub fn apply(&mut self, d: &cctv_protocol::Detect) {
        if let Some(s) = d.sensitivity {
            self.motion.sensitivity = s;
        }
        if let Some(a) = d.min_area {
            self.motion.min_area = f32::from(a) / 10_000.0;
        }
        if let Some(bits) = d.ignore {
            self.motion.ignore = (0..cctv_protocol::IGNORE_CELLS)
                .map(|i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
                .collect();
        }
        if let Some(f) = d.idle_fps_milli {
            self.pace.idle_fps = f64::from(f) / 1000.0;
        }
        if let Some(ms) = d.preroll_ms {
            self.pace.preroll = Duration::from_millis(ms.into());
        }
        if let Some(ms) = d.postroll_ms {
            self.pace.postroll = Duration::from_millis(ms.into());
        }
        if let Some(f) = d.full_rate {
            self.pace.full_rate = f;
        }
    }
}

/// Motion settings and pacing from flags over the file over defaults.
pub(super) fn analysis_config(
    cli: &Cli,
    file: &FileConfig,
) -> anyhow::Result<Option<AnalysisConfig>> {
    if cli.no_analysis || file.analysis == Some(false) {
        return Ok(None);
    }
    let mut motion = crate::analysis::MotionSettings::default();
    let mut pace = crate::pace::PaceSettings::default();
    if let Some(s) = cli.sensitivity.or(file.sensitivity) {
        if !(1..=100).contains(&s) {
            bail!("sensitivity {s} is outside 1..100");
        }
        motion.sensitivity = s;
    }
    if let Some(a) = cli.min_area.or(file.min_area) {
        if !(0.0..=100.0).contains(&a) {
            bail!("min_area {a} % is outside 0..100");
        }
        motion.min_area = a / 100.0;
    }
    if let Some(zones) = &file.ignore_zones {
        let mut polygons = Vec::new();
        for (i, zone) in zones.iter().enumerate() {
            if zone.len() < 3 {
                bail!(
                    "ignore zone {} has {} points; a zone needs 3 or more",
                    i + 1,
                    zone.len()
                );
            }
            if zone.iter().flatten().any(|v| !(0.0..=1.0).contains(v)) {
                bail!(
                    "ignore zone {} has a point outside 0..1 (fractions of the picture)",
                    i + 1
                );
            }
            polygons.push(zone.iter().map(|[x, y]| (*x, *y)).collect());
        }
        motion.ignore = crate::analysis::MotionSettings::ignore_polygons(&polygons);
    }
    pace.full_rate = cli.full_rate || file.full_rate.unwrap_or(false);
    if let Some(f) = cli.idle_fps.or(file.idle_fps) {
        if !(f > 0.0 && f <= 240.0) {
            bail!("idle_fps {f} is outside 0..240");
        }
        pace.idle_fps = f;
    }
    let secs = |v: Option<f64>, name: &str, default: Duration| -> anyhow::Result<Duration> {
        match v {
            Some(v) if (0.0..=60.0).contains(&v) => Ok(Duration::from_secs_f64(v)),
            Some(v) => bail!("{name} {v} s is outside 0..60"),
            None => Ok(default),
        }
    };
    pace.preroll = secs(cli.preroll.or(file.preroll), "preroll", pace.preroll)?;
    pace.postroll = secs(cli.postroll.or(file.postroll), "postroll", pace.postroll)?;
    Ok(Some(AnalysisConfig { motion, pace }))
}
