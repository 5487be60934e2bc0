//! What comes in: the engine's events and the backend's replies, each
//! turned into a change of state and the reloads it needs.

use super::{App, NOTICE_FOR, Screen};
use crate::backend::{Command, Reply};
use crate::listen::Heard;
use cctv_engine::EngineEvent;

impl App {
    /// What the engine announced: each kind reloads only what it changed
    /// (a closed segment: the disk gauge, and the history if it shows; a
    /// logged event: the history if it shows),
    /// and a refused connection is told at once.
    pub(super) fn heard(&mut self, heard: Vec<Heard>) {
        let mut refused = Vec::new();
        let mut missed = false;
        let mut closed = false;
        let mut logged = false;
        for h in heard {
            match h {
                Heard::Event(EngineEvent::Refused {
                    address,
                    claimed,
                    reason,
                }) => refused.push((address, claimed, reason)),
                Heard::Event(EngineEvent::Camera(_)) => self.read_cameras(),
                Heard::Event(EngineEvent::Recording { .. }) => closed = true,
                Heard::Event(EngineEvent::Logged { .. }) => logged = true,
                Heard::Event(EngineEvent::Panorama { .. }) => self.reload(&Screen::Panoramas),
                Heard::Event(EngineEvent::Export { .. } | EngineEvent::Dispatch { .. }) => {
                    self.reload(&Screen::Evidence)
                }
                Heard::Event(EngineEvent::Warning { camera, message }) => {
                    let text = match camera {
                        Some(c) => format!("{c}: {message}"),
                        None => message,
                    };
                    self.notify(text, true);
                }
                Heard::Missed(_) => missed = true,
            }
        }
        if let Some((address, claimed, reason)) = refused.last() {
            let text = format!(
                "refused {} connection(s); newest from {address} ({}): {reason}",
                refused.len(),
                claimed.as_deref().unwrap_or("no camera id"),
            );
            self.notify(text, true);
        }
        if closed {
            // Once per batch, however many segments closed.
            self.send(Command::Disk);
        }
        if closed || logged {
            self.reload(&Screen::History);
            if self.screen == Screen::Playback
                && let Some(p) = self.playback.as_mut()
            {
                p.reload();
            }
        }
        if missed {
            // Whatever the lost events said, read it all again.
            self.read_cameras();
            self.send(Command::Disk);
            let screen = self.screen.clone();
            self.reload(&screen);
        }
        if !refused.is_empty() || missed {
            self.send(Command::Refused);
        }
    }

    /// Reloads `screen`'s data if it is the one showing.
    pub(super) fn reload(&mut self, screen: &Screen) {
        if self.screen != *screen {
            return;
        }
        match screen {
            Screen::History => self.send(Command::History(self.history.query.clone())),
            Screen::Evidence => self.send(Command::Evidence),
            Screen::Panoramas => self.send(self.panoramas.load()),
            _ => {}
        }
    }

    /// Each second while needed: the notice expires, moving work is reread.
    pub(super) fn clock(&mut self) {
        if self
            .notice
            .as_ref()
            .is_some_and(|(_, _, at)| at.elapsed() >= NOTICE_FOR)
        {
            self.notice = None;
        }
        if self.moving() {
            let screen = self.screen.clone();
            self.reload(&screen);
        }
    }

    /// The screen shows work in progress (an export or transfer, a stitch).
    pub(super) fn moving(&self) -> bool {
        match self.screen {
            Screen::Evidence => self.evidence.busy(),
            Screen::Panoramas => !self.panoramas.jobs.is_empty(),
            // A recording being written grows on screen.
            Screen::History => self
                .history
                .recordings
                .iter()
                .any(|r| r.status == cctv_engine::catalog::RecordingStatus::Recording),
            _ => false,
        }
    }

    pub(super) fn on_reply(&mut self, reply: Reply) {
        let reply = match self.playback.as_mut() {
            Some(p) => match p.take(reply, std::time::Instant::now()) {
                Some(r) => r,
                None => return,
            },
            None => reply,
        };
        match reply {
            Reply::Notice(n) => self.notify(n, false),
            Reply::Error(e) => self.notify(e, true),
            Reply::ExportFailed(_) | Reply::Exported(_) | Reply::AutoDispatch(_) => {
                self.evidence_reply(reply)
            }
            Reply::Disk {
                recorded_bytes,
                free_bytes,
            } => self.disk = Some((recorded_bytes, free_bytes)),
            Reply::Refused(rows) => {
                self.refused = rows;
                self.refused_loaded = true;
            }
            Reply::CameraRows(rows) => self.settings.loaded(&rows),
            Reply::Enrolled(text) => {
                self.settings.enrolled(text);
                self.read_cameras();
            }
            Reply::WallLayout(saved) => {
                // The saved places first; cameras it does not know after.
                self.places = saved;
                self.place_new_cameras();
            }
            Reply::Listening(addr) => {
                self.listen = addr;
                self.notify(format!("agents now connect to {addr}"), false);
            }
            Reply::History(..) | Reply::Thumbnail(..) | Reply::EventThumbnail(..) => {
                for c in self.history.on_reply(reply) {
                    self.send(c);
                }
            }
            Reply::PlayFrom(row) => self.play(row.camera_id, row.start_us),
            Reply::Sound(packets) => self.on_sound(packets),
            // Read for a playback that has moved on since.
            Reply::Opened(..) | Reply::Timeline(..) | Reply::Frame(..) => {}
            Reply::FrameFailed(_) => {
                if let Some(p) = self.playback.as_mut() {
                    p.on_error();
                }
            }
            Reply::ExportProgress(done, total) => self.evidence.exporting = Some((done, total)),
            Reply::Panoramas(rows, jobs, read) => {
                for c in self.panoramas.set(rows, jobs, read) {
                    self.send(c);
                }
            }
            Reply::PanoramaThumb(id, h) => {
                self.panoramas.thumbs.insert(id, h);
            }
            Reply::PanoramaImage(id, h) => {
                if let Some((row, img)) = self.panoramas.open.as_mut()
                    && row.id == id
                {
                    *img = Some(h);
                }
            }
            Reply::Evidence(data) => {
                if data.read > self.evidence.data.read {
                    self.evidence.data = data;
                    self.evidence.loaded = true;
                }
            }
        }
    }

    /// An export ended (written or not), or auto-dispatch was switched.
    pub(super) fn evidence_reply(&mut self, reply: Reply) {
        match reply {
            Reply::Exported(row) => {
                self.evidence.exporting = None;
                self.evidence.cancel = None;
                let text = format!("export written: {} ({} files)", row.path, row.files);
                self.notify(text, false);
            }
            Reply::ExportFailed(e) => {
                self.evidence.exporting = None;
                self.evidence.cancel = None;
                self.notify(e, true);
            }
            Reply::AutoDispatch(on) => {
                self.evidence.data.auto_dispatch = on;
                let text = match on {
                    true => "auto-dispatch on: each finished segment is exported and sent",
                    false => "auto-dispatch off",
                };
                self.notify(text.into(), false);
                self.reload(&Screen::Evidence);
            }
            _ => {}
        }
    }
}
