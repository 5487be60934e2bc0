//! Sound in recordings, measured from the files with ffmpeg and ffprobe
//! (never from the panel's own records): clips made to a plan, where the
//! flashes and the beeps are, and how long each track lasts.

use std::path::Path;
use std::process::Command;

/// A clip of `secs` seconds, 320x240 at 10 fps, black with a white frame
/// at each whole second, and a 1 kHz beep of 100 ms at the same moments
/// (MPEG-4 video, AAC sound, in MP4: the kind of file users play).
pub fn flash_and_beep_clip(path: &Path, secs: u32) {
    let video = format!(
        "color=c=black:s=320x240:r=10:d={secs},\
         drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t,1),0.1)'"
    );
    // Evaluated sample by sample: each beep starts on the whole second.
    let audio = format!("aevalsrc='if(lt(mod(t,1),0.1),0.5*sin(2*PI*1000*t),0)':s=48000:d={secs}");
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(video)
        .args(["-f", "lavfi", "-i"])
        .arg(audio)
        .args(["-c:v", "mpeg4", "-q:v", "3", "-c:a", "aac", "-b:a", "96k"])
        .arg(path)
        .output()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Presentation times (s) of the frames brighter than mid-grey.
pub fn flashes(path: &Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("movie={},signalstats", path.display()))
        .args([
            "-show_entries",
            "frame=pts_time:frame_tags=lavfi.signalstats.YAVG",
            "-of",
            "csv=p=0",
        ])
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, y) = l.split_once(',')?;
            (y.trim().parse::<f64>().ok()? > 128.0).then(|| t.parse().ok())?
        })
        .collect()
}

/// Times (s) where the sound starts after at least 50 ms of silence.
pub fn onsets(path: &Path) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a",
            "-af",
            "silencedetect=n=-30dB:d=0.05",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| {
            let rest = l.split("silence_end: ").nth(1)?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// Per stream (by codec name): packets, and the span they cover in
/// seconds, from the first packet's start to the last one's end.
pub fn streams(path: &Path) -> Vec<(String, usize, f64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_name:packet=stream_index,pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<f64>().ok());
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    v["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let index = s["index"].as_u64();
            let mine: Vec<(f64, f64)> = packets
                .iter()
                .filter(|p| p["stream_index"].as_u64() == index)
                .filter_map(|p| {
                    Some((
                        num(&p["pts_time"])?,
                        num(&p["duration_time"]).unwrap_or(0.0),
                    ))
                })
                .collect();
            let first = mine.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let end = mine
                .iter()
                .map(|p| p.0 + p.1)
                .fold(f64::NEG_INFINITY, f64::max);
            let codec = s["codec_name"].as_str().unwrap_or("").to_string();
            (
                codec,
                mine.len(),
                if mine.is_empty() { 0.0 } else { end - first },
            )
        })
        .collect()
}

/// The sound's mean volume in dB (ffmpeg's volumedetect).
pub fn mean_volume_db(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-map", "0:a", "-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.split("mean_volume: ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(f64::NEG_INFINITY)
}

/// Decodes every stream of the file; ffmpeg's complaints, if any.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let mut e = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        e.push_str(" (ffmpeg failed)");
    }
    e
}
