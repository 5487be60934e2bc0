//! An audit of what the agent captured and what each panel acknowledged,
//! one line each (`--frame-log`): `captured SEQ CAPTURE_US`,
//! `acked PANEL FIRST LAST`, `backfilled SEQ CAPTURE_US PANEL`.

use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use tracing::warn;

pub struct FrameLog(Mutex<LineWriter<File>>);

impl FrameLog {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self(Mutex::new(LineWriter::new(f))))
    }

    pub fn line(&self, line: std::fmt::Arguments<'_>) {
        let Ok(mut w) = self.0.lock() else {
            return;
        };
        if let Err(e) = writeln!(w, "{line}") {
            warn!("cannot write the frame log: {e}");
        }
    }
}

/// Writes to the frame log, if there is one.
pub fn note(log: &Option<std::sync::Arc<FrameLog>>, line: std::fmt::Arguments<'_>) {
    if let Some(l) = log {
        l.line(line);
    }
}
