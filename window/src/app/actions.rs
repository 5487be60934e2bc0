//! What the operator asks for: keys and their actions, moving between
//! screens, and the commands the focus view and playback send.

use std::time::Instant;

use cctv_protocol::Configure;
use iced::{Task, keyboard, window};

use super::{App, Message, Screen};
use crate::backend::Command;
use crate::history;
use crate::keys::{self, Action};
use crate::playback;
use crate::settings;

impl App {
    pub(super) fn key(
        &mut self,
        key: &keyboard::Key,
        modifiers: keyboard::Modifiers,
    ) -> Task<Message> {
        match keys::action(key, modifiers) {
            Some(a) => self.action(a),
            None => Task::none(),
        }
    }

    pub fn action(&mut self, action: Action) -> Task<Message> {
        match action {
            Action::RecordFocused => {
                if self.screen == Screen::Playback {
                    self.player_msg(playback::Msg::PlayPause);
                } else if let Some(id) = self.focused() {
                    self.toggle_record(&id);
                }
            }
            Action::SkipBack | Action::SkipForward => {
                let secs = if action == Action::SkipBack { -10 } else { 10 };
                self.on_playback(playback::Msg::Skip(secs));
            }
            Action::StepBack | Action::StepForward => {
                self.on_playback(playback::Msg::Step(action == Action::StepForward));
            }
            Action::MarkIn => self.on_playback(playback::Msg::MarkIn),
            Action::MarkOut => self.on_playback(playback::Msg::MarkOut),
            Action::ExportMarks => self.on_playback(playback::Msg::ExportMarks),
            Action::Listen => {
                if let Some(id) = self.focused() {
                    self.toggle_listen(&id);
                }
            }
            Action::QualityUp | Action::QualityDown => {
                if let Some(id) = self.focused() {
                    self.change_quality(&id, if action == Action::QualityUp { 10 } else { -10 });
                }
            }
            Action::RecordAll => {
                // Stopping every camera asks first; starting does not.
                if self.recording_on_count() > 0 {
                    self.confirm_stop_all = true;
                } else {
                    self.send(Command::SetRecordingAll(true));
                }
            }
            Action::Help => self.help = !self.help,
            Action::Fullscreen => return self.toggle_fullscreen(),
            Action::Quit => {
                if self.recording_count() > 0 {
                    self.confirm_quit = true;
                } else {
                    return iced::exit();
                }
            }
            Action::Back => {
                if self.help || self.confirm_quit || self.confirm_stop_all {
                    self.help = false;
                    self.confirm_quit = false;
                    self.confirm_stop_all = false;
                } else if self.fullscreen {
                    return self.toggle_fullscreen();
                } else if self.screen == Screen::Panoramas && self.panoramas.open.is_some() {
                    self.panoramas.open = None;
                } else {
                    self.screen = match self.screen {
                        Screen::Playback => Screen::History,
                        _ => Screen::Wall,
                    };
                }
            }
            Action::Wall => self.screen = Screen::Wall,
            Action::History => return self.show(Screen::History),
            Action::Settings => return self.show(Screen::Settings),
            Action::DispatchLatest => self.send(Command::DispatchLatest),
            Action::ToggleAutoDispatch => {
                let on = !self.engine.auto_dispatch();
                if on && self.engine.dispatch_targets().is_empty() {
                    self.notify(
                        "auto-dispatch stays off: no dispatch target is configured ([[dispatch_targets]] in the panel config)".into(),
                        true,
                    );
                } else {
                    self.evidence.data.auto_dispatch = on;
                    self.send(Command::AutoDispatch(on));
                }
            }
            Action::Exports => return self.show(Screen::Evidence),
            Action::Panoramas => return self.show(Screen::Panoramas),
            Action::Acknowledge => self.alarms.acknowledge(),
            Action::NextEvent | Action::PreviousEvent => {
                self.on_playback(playback::Msg::Jump(action == Action::NextEvent));
            }
            Action::PlayNewest => self.send(Command::PlayNewest),
        }
        Task::none()
    }

    pub(super) fn show(&mut self, screen: Screen) -> Task<Message> {
        if screen == Screen::History {
            self.send(Command::History(self.history.query.clone()));
        }
        if screen == Screen::Settings {
            let read = self.settings.load(&self.cameras);
            self.send(read);
            self.send(Command::Refused);
        }
        if screen == Screen::Evidence {
            self.send(Command::Evidence);
        }
        if screen == Screen::Panoramas {
            self.send(self.panoramas.load());
        }
        self.screen = screen;
        Task::none()
    }

    pub(super) fn toggle_fullscreen(&mut self) -> Task<Message> {
        self.fullscreen = !self.fullscreen;
        let mode = if self.fullscreen {
            window::Mode::Fullscreen
        } else {
            window::Mode::Windowed
        };
        window::latest().then(move |id| match id {
            Some(id) => window::set_mode(id, mode),
            None => Task::none(),
        })
    }

    pub(super) fn toggle_record(&mut self, id: &str) {
        let on = self
            .camera(id)
            .is_some_and(|c| c.record_mode == cctv_engine::catalog::RecordMode::Off);
        self.send(Command::SetRecording(id.to_string(), on));
    }

    pub(super) fn change_quality(&mut self, id: &str, delta: i32) {
        // From what the agent reports, or (an older agent) what was last asked.
        let reported = self
            .camera(id)
            .and_then(|c| c.encoding)
            .map(|e| e.quality)
            .filter(|q| *q > 0);
        let q = reported
            .or_else(|| self.quality.get(id).copied())
            .unwrap_or(80);
        let q = (i32::from(q) + delta).clamp(10, 100) as u8;
        self.quality.insert(id.to_string(), q);
        self.configure(
            id,
            Configure {
                quality: Some(q),
                ..Default::default()
            },
        );
    }

    pub(super) fn configure(&mut self, id: &str, c: Configure) {
        self.send(Command::Configure(id.to_string(), c));
    }

    pub(super) fn confirm_quit(&mut self, yes: bool) -> Task<Message> {
        self.confirm_quit = false;
        if yes { iced::exit() } else { Task::none() }
    }

    pub(super) fn history_msg(&mut self, m: history::Msg) -> Task<Message> {
        if let history::Msg::Play(row) = &m {
            self.play(row.camera_id.clone(), row.start_us);
        }
        for cmd in self.history.update(m) {
            self.send(cmd);
        }
        Task::none()
    }

    pub(super) fn player_msg(&mut self, m: playback::Msg) {
        if let Some(p) = self.playback.as_mut() {
            for cmd in p.update(m, Instant::now()) {
                self.send(cmd);
            }
        }
    }

    /// Hears `id` live, or stops: one camera at a time.
    pub(super) fn toggle_listen(&mut self, id: &str) {
        if self.speaker.live_camera() == Some(id) {
            self.speaker.stop();
            return;
        }
        if let Err(why) = self.speaker.listen(id, &self.engine, &self.runtime) {
            self.notify(format!("no sound: {why}"), true);
        }
    }

    /// Sound follows the screen: live sound is heard in the focus view of
    /// its camera only, playback's in playback.
    pub(super) fn sound_follows_screen(&mut self) {
        if let Some(live) = self.speaker.live_camera()
            && self.screen != Screen::Focus(live.to_string())
        {
            self.speaker.stop();
        }
        self.playback_sound();
    }

    /// Playback's sound: the first camera's, at 1x only; kept about half
    /// a second ahead of the clock, and dropped when the clock jumps.
    pub(super) fn playback_sound(&mut self) {
        let now = Instant::now();
        let playing = self.screen == Screen::Playback
            && self.speaker.live_camera().is_none()
            && self
                .playback
                .as_ref()
                .is_some_and(|p| p.clock.playing && p.clock.speed == 1.0);
        let Some(p) = self.playback.as_ref().filter(|_| playing) else {
            self.speaker.stop_playback();
            return;
        };
        let at = p.at(now);
        let until = match self.speaker.playback_until() {
            // Still in step with the clock (a seek or a stall is not).
            Some(u) if (at - 250_000..=at + 1_000_000).contains(&u) => u,
            _ => {
                if self.speaker.unavailable().is_some() || self.speaker.start_playback(at).is_err()
                {
                    return;
                }
                self.sound_asked = false;
                at
            }
        };
        if self.sound_asked || until > at + 300_000 {
            return;
        }
        if let Some((row, packets)) = p.sound_between(until, at + 600_000)
            && !packets.is_empty()
        {
            self.sound_asked = true;
            self.send(Command::Sound(row, packets));
        }
    }

    /// Playback's sound, read.
    pub(super) fn on_sound(&mut self, packets: Vec<(i64, Vec<u8>)>) {
        self.sound_asked = false;
        self.speaker.play_recorded(&packets);
    }

    /// A playback key, when playback shows.
    pub(super) fn on_playback(&mut self, m: playback::Msg) {
        if self.screen == Screen::Playback {
            self.player_msg(m);
        }
    }

    pub(super) fn settings_msg(&mut self, m: settings::Msg) {
        match self.settings.update(m, &self.cameras) {
            Ok(cmds) => {
                let saved = cmds
                    .iter()
                    .any(|c| matches!(c, Command::SetRetention(..) | Command::Rename(..)));
                cmds.into_iter().for_each(|c| self.send(c));
                if saved {
                    self.send(Command::CameraRows);
                }
            }
            Err(e) => self.notify(e.to_string(), true),
        }
    }
}
