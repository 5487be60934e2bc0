//! `manifest.json`, the inventory inside every export: who made it, which
//! cameras, each file's time span, frame count, size and SHA-256, and the
//! camera events in the range so a gap is explained. Also the rule for
//! paths inside an export: relative, under `recordings/`, no `..`.

use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "cctv-evidence/1";
pub const MANIFEST_NAME: &str = "manifest.json";
/// Largest manifest read from an export.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub panel: PanelInfo,
    pub created_us: i64,
    /// RFC 3339, for people reading the file.
    pub created: String,
    pub from_us: i64,
    pub to_us: i64,
    pub cameras: Vec<CameraInfo>,
    pub files: Vec<FileEntry>,
    /// Camera events (offline, online, stalled, recording errors) in the
    /// range, and each camera's first event after it.
    pub events: Vec<EventEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PanelInfo {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the zip: `recordings/<camera>/<day>/<file>.mkv`.
    pub path: String,
    pub camera_id: String,
    pub start_us: i64,
    pub end_us: i64,
    pub frames: i64,
    pub bytes: i64,
    pub sha256: String,
    /// `complete` or `interrupted`.
    pub status: String,
    pub width: i64,
    pub height: i64,
    /// For a clip (an export of a time range): the recordings its frames
    /// were cut from, oldest first. Empty for a whole recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clip_of: Vec<ClipSource>,
}

/// A recording a clip took frames from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipSource {
    /// The recording as the panel keeps it: `<camera>/<day>/<file>.mkv`.
    pub recording: String,
    pub start_us: i64,
    pub end_us: i64,
    /// Which of its frames (counted from 0) the clip holds: `first` and
    /// the `frames` after it.
    pub first: i64,
    pub frames: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEntry {
    pub camera_id: String,
    pub kind: String,
    pub at_us: i64,
    pub detail: String,
}

/// A path inside an export that would land outside the recordings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path {path:?}: {why}")]
pub struct UnsafePath {
    pub path: String,
    pub why: &'static str,
}

/// A manifest that cannot be trusted, and why.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest.json is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest format {0:?} is not {FORMAT}")]
    Format(String),
    #[error("manifest.json is implausibly large")]
    TooLarge,
    #[error(transparent)]
    Path(#[from] UnsafePath),
    #[error("manifest entry {0} has no valid SHA-256")]
    Sha256(String),
}

/// Checks a path found inside an export. Returns the part under
/// `recordings/`, or why it is refused.
pub fn safe_recording_path(p: &str) -> Result<&str, UnsafePath> {
    let unsafe_path = |why| UnsafePath {
        path: p.to_string(),
        why,
    };
    let rest = p
        .strip_prefix("recordings/")
        .ok_or_else(|| unsafe_path("not under recordings/"))?;
    if p.contains('\\') || p.contains('\0') {
        return Err(unsafe_path("contains a backslash or NUL"));
    }
    let path = Path::new(rest);
    if path.is_absolute() {
        return Err(unsafe_path("absolute"));
    }
    let mut parts = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => parts += 1,
            _ => return Err(unsafe_path("contains '..' or a root")),
        }
    }
    // <camera>/<day>/<file>.mkv, and the camera part must be a camera id.
    let camera = rest.split('/').next().unwrap_or("");
    if parts != 3 || cctv_protocol::validate_camera_id(camera).is_err() || !rest.ends_with(".mkv") {
        return Err(unsafe_path("not <camera>/<day>/<file>.mkv"));
    }
    Ok(rest)
}

impl Manifest {
    /// Parses and checks a manifest: format, and every path safe.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Manifest = serde_json::from_slice(bytes)?;
        if m.format != FORMAT {
            return Err(ManifestError::Format(m.format));
        }
        for f in &m.files {
            safe_recording_path(&f.path)?;
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ManifestError::Sha256(f.path.clone()));
            }
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_out_are_refused() {
        for bad in [
            "../../etc/passwd",
            "recordings/../../etc/passwd",
            "recordings/door/../../x.mkv",
            "/etc/passwd",
            "recordings//etc/passwd",
            "recordings/door/2026-11-21/../../../x.mkv",
            "recordings/.hidden/2026/x.mkv",
            "recordings/door\\..\\x.mkv",
            "recordings/door/x.mkv",
            "recordings/door/2026-11-21/x.sh",
        ] {
            assert!(safe_recording_path(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            safe_recording_path("recordings/door/2026-11-21/door_20261121T140211.000Z.mkv")
                .unwrap(),
            "door/2026-11-21/door_20261121T140211.000Z.mkv"
        );
    }
}
