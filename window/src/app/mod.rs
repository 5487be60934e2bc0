//! The root of the window: state, messages and the one-line-per-message
//! `update`. Screens own their views (`wall`, `history`, `playback`,
//! `settings`); everything slow is a backend [`Task`]. The window listens
//! (engine events, new pictures) rather than polls.

mod actions;
mod inbox;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cctv_protocol::Configure;
use iced::widget::image::Handle;
use iced::widget::{column, container, stack};
use iced::{Element, Length, Size, Subscription, Task, keyboard, window};

use super::alarms::{self, Alarms};
use super::backend::{Backend, Command, Reply};
use super::evidence::{self, EvidenceView};
use super::feeds::Feeds;
use super::history::{self, History};
use super::keys::Action;
use super::listen::{self, Heard};
use super::panoramas::{self, Panoramas};
use super::playback::{self, Playback};
use super::settings::{self, SettingsForm};
use super::{chrome, wall};
use cctv_engine::Engine;
use cctv_engine::catalog::CameraState;
use cctv_engine::live::CameraStatus;

/// Which screen fills the window.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Wall,
    Focus(String),
    History,
    Playback,
    Settings,
    Evidence,
    Panoramas,
}

/// The newest decoded picture of a camera.
#[derive(Debug, Clone)]
pub struct Tile {
    pub seq: u64,
    pub image: Handle,
}

#[derive(Debug, Clone)]
pub enum Message {
    /// What the engine announced.
    Heard(Vec<Heard>),
    /// The decoders left new pictures for the wall.
    Pictures,
    /// A backend command's answer.
    Reply(Reply),
    /// Each second while something on screen moves or a notice shows.
    Clock,
    /// Time to read the disk gauge again.
    Disk,
    Resized(Size),
    Key(keyboard::Key, keyboard::Modifiers),
    Action(Action),
    Focus(String),
    Show(Screen),
    ToggleRecord(String),
    Snapshot(String),
    Quality(String, i32),
    /// Raise or lower a camera's motion sensitivity by this much.
    Sensitivity(String, i32),
    /// Send every frame (true) or follow the scene.
    FullRate(String, bool),
    /// Move a camera's tile this many places on the wall (kept).
    MoveTile(String, i32),
    Fps(String, u32),
    ConfirmQuit(bool),
    /// The answer to "stop recording on every camera?".
    ConfirmStopAll(bool),
    CloseRequested,
    History(history::Msg),
    Player(playback::Msg),
    Settings(settings::Msg),
    Evidence(evidence::Msg),
    Panoramas(panoramas::Msg),
    /// Make a panorama of this camera's footage.
    Panorama(String, cctv_engine::PanoramaFrom),
    /// Hear this camera live, or stop hearing it.
    Listen(String),
}

/// How long a notice stays in the status bar.
pub const NOTICE_FOR: Duration = Duration::from_secs(8);

/// How often the disk gauge (recorded bytes, free space) is read.
const DISK_EVERY: Duration = Duration::from_secs(5);

pub struct App {
    pub engine: Arc<Engine>,
    backend: Backend,
    /// Commands asked for during this update, run as tasks when it ends.
    outbox: Vec<Command>,
    pub cameras: Vec<CameraStatus>,
    pub tiles: HashMap<String, Tile>,
    pub screen: Screen,
    pub help: bool,
    pub confirm_quit: bool,
    /// Asking whether to stop recording on every camera.
    pub confirm_stop_all: bool,
    pub fullscreen: bool,
    pub window: Size,
    pub feeds: Feeds,
    runtime: tokio::runtime::Handle,
    /// Quality last asked of each camera, for agents that do not report
    /// their own.
    pub quality: HashMap<String, u8>,
    /// Motion sensitivity and "every frame" last asked of each camera.
    pub sensitivity: HashMap<String, u8>,
    pub full_rate: HashMap<String, bool>,
    pub notice: Option<(String, bool, Instant)>,
    pub disk: Option<(i64, u64)>,
    pub listen: std::net::SocketAddr,
    pub history: History,
    pub playback: Option<Playback>,
    pub settings: SettingsForm,
    pub evidence: EvidenceView,
    pub panoramas: Panoramas,
    /// The newest refused connections, newest first.
    pub refused: Vec<cctv_engine::catalog::AuthFailureRow>,
    /// The list of refused connections has been read once.
    pub refused_loaded: bool,
    /// Tamper alarms waiting for the operator.
    pub alarms: Alarms,
    /// The wall's places, in order: a camera keeps its place whatever its
    /// state; a new one takes the next free place.
    pub places: Vec<String>,
    /// One camera's sound at a time: live, or playback's at 1x.
    pub speaker: super::sound::Speaker,
    /// Playback's sound has been asked of the engine and not come yet.
    sound_asked: bool,
}

impl App {
    /// The window's state, and the first loads to run.
    pub fn new(engine: Arc<Engine>, runtime: &tokio::runtime::Handle) -> (Self, Task<Message>) {
        let backend = Backend::new(engine.clone(), runtime);
        let listen = engine.local_addr();
        let mut app = Self {
            engine,
            backend,
            outbox: Vec::new(),
            cameras: Vec::new(),
            tiles: HashMap::new(),
            screen: Screen::Wall,
            help: false,
            confirm_quit: false,
            confirm_stop_all: false,
            fullscreen: false,
            window: Size::new(1280.0, 800.0),
            feeds: Feeds::default(),
            runtime: runtime.clone(),
            quality: HashMap::new(),
            sensitivity: HashMap::new(),
            full_rate: HashMap::new(),
            notice: None,
            disk: None,
            listen,
            history: History::default(),
            playback: None,
            settings: SettingsForm::new(listen),
            evidence: EvidenceView::default(),
            panoramas: Panoramas::default(),
            refused: Vec::new(),
            refused_loaded: false,
            alarms: Alarms::default(),
            places: Vec::new(),
            speaker: Default::default(),
            sound_asked: false,
        };
        app.read_cameras();
        app.send(Command::Refused);
        app.send(Command::Disk);
        app.send(Command::WallLayout);
        let first = app.flush();
        (app, first)
    }

    pub fn title(&self) -> String {
        let live = self.live_count();
        format!("CCTV panel: {live} of {} cameras live", self.cameras.len())
    }

    pub fn live_count(&self) -> usize {
        self.cameras
            .iter()
            .filter(|c| c.state != CameraState::Offline)
            .count()
    }

    pub fn recording_count(&self) -> usize {
        self.cameras.iter().filter(|c| c.recording).count()
    }

    /// Cameras whose recording is on (continuous, or on motion).
    pub fn recording_on_count(&self) -> usize {
        self.cameras
            .iter()
            .filter(|c| c.record_mode != cctv_engine::catalog::RecordMode::Off)
            .count()
    }

    /// Cameras in wall order: by their places.
    pub fn wall_order(&self) -> Vec<&CameraStatus> {
        self.places
            .iter()
            .filter_map(|id| self.camera(id))
            .collect()
    }

    /// Gives new cameras the next free places, by name.
    fn place_new_cameras(&mut self) {
        let mut new: Vec<&CameraStatus> = self
            .cameras
            .iter()
            .filter(|c| !self.places.contains(&c.id))
            .collect();
        new.sort_by_key(|c| (c.name.to_lowercase(), c.id.clone()));
        let new: Vec<String> = new.into_iter().map(|c| c.id.clone()).collect();
        self.places.extend(new);
    }

    /// Moves a camera `by` places on the wall, and keeps the layout.
    fn move_tile(&mut self, id: &str, by: i32) {
        let Some(at) = self.places.iter().position(|p| p == id) else {
            return;
        };
        let to = (at as i64 + i64::from(by)).clamp(0, self.places.len() as i64 - 1) as usize;
        let moved = self.places.remove(at);
        self.places.insert(to, moved);
        self.send(Command::SaveWallLayout(self.places.clone()));
    }

    pub fn camera(&self, id: &str) -> Option<&CameraStatus> {
        self.cameras.iter().find(|c| c.id == id)
    }

    fn focused(&self) -> Option<String> {
        match &self.screen {
            Screen::Focus(id) => Some(id.clone()),
            _ => None,
        }
    }

    /// Reads the cameras' statuses (held by the engine in memory) and starts
    /// a decoder for any new camera.
    fn read_cameras(&mut self) {
        self.cameras = self.engine.cameras();
        self.place_new_cameras();
        self.alarms
            .observe(&self.cameras, cctv_engine::time::now_us());
        let ids: Vec<String> = self.cameras.iter().map(|c| c.id.clone()).collect();
        self.feeds.ensure(&self.engine, &ids, &self.runtime);
    }

    /// Tells the decoders how wide each picture is shown. The focused
    /// camera is decoded whole, at least, for its digital zoom.
    fn layout(&self) {
        let focused = self.focused();
        let whole = focused
            .as_deref()
            .and_then(|id| self.camera(id))
            .map_or(0, |c| c.width);
        self.feeds.widths.set_layout(
            wall::tile_width(self.window, self.cameras.len()),
            focused,
            wall::focus_width(self.window).max(whole),
        );
    }

    /// New pictures: the tiles, and the statuses (rates, counters) with them.
    fn pictures(&mut self) {
        self.read_cameras();
        if let Some(new) = self.feeds.take_new() {
            self.tiles = new;
        }
    }

    /// Queues a command; it runs as a task when this update ends.
    fn send(&mut self, cmd: Command) {
        if let Command::Export(_, cancel) | Command::ExportRange(.., cancel) = &cmd {
            self.evidence.cancel = Some(cancel.clone());
        }
        self.outbox.push(cmd);
    }

    /// The queued commands as one task; their replies come back as messages.
    fn flush(&mut self) -> Task<Message> {
        Task::batch(
            self.outbox
                .drain(..)
                .map(|cmd| self.backend.task(cmd).map(Message::Reply))
                .collect::<Vec<_>>(),
        )
    }

    pub fn notify(&mut self, text: String, error: bool) {
        self.notice = Some((text, error, Instant::now()));
    }

    /// What playback needs now (footage, recordings, frames), while shown.
    fn feed_playback(&mut self) {
        if self.screen != Screen::Playback {
            return;
        }
        let Some(p) = self.playback.as_mut() else {
            return;
        };
        // One or two cameras are decoded whole, for the digital zoom.
        let width = match p.tracks.len() {
            1 | 2 => 0,
            _ => wall::focus_width(self.window) / 2,
        };
        for cmd in p.wanted(Instant::now(), width) {
            self.send(cmd);
        }
    }

    /// Plays `camera` from `at_us` (cameras are added on the screen).
    pub(super) fn play(&mut self, camera: String, at_us: i64) {
        self.playback = Some(Playback::new(camera, at_us, Instant::now()));
        self.screen = Screen::Playback;
    }

    /// One message: the state changes, then the commands it asked for run.
    pub fn update(&mut self, message: Message) -> Task<Message> {
        let task = self.handle(message);
        self.layout();
        self.feed_playback();
        self.sound_follows_screen();
        Task::batch([task, self.flush()])
    }

    fn handle(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Heard(heard) => self.heard(heard),
            Message::Pictures => self.pictures(),
            Message::Reply(reply) => self.on_reply(reply),
            Message::Clock => self.clock(),
            Message::Disk => self.send(Command::Disk),
            Message::Resized(size) => self.window = size,
            Message::Key(key, modifiers) => return self.key(&key, modifiers),
            Message::Action(action) => return self.action(action),
            Message::Focus(id) => self.screen = Screen::Focus(id),
            Message::Show(screen) => return self.show(screen),
            Message::ToggleRecord(id) => self.toggle_record(&id),
            Message::Snapshot(id) => self.send(Command::Snapshot(id)),
            Message::Quality(id, delta) => self.change_quality(&id, delta),
            Message::Sensitivity(id, delta) => {
                let s = self.sensitivity.get(&id).copied().unwrap_or(50);
                let s = (i32::from(s) + delta).clamp(1, 100) as u8;
                self.sensitivity.insert(id.clone(), s);
                let d = cctv_protocol::Detect {
                    sensitivity: Some(s),
                    ..Default::default()
                };
                self.send(Command::Detect(id, d));
            }
            Message::FullRate(id, on) => {
                self.full_rate.insert(id.clone(), on);
                let d = cctv_protocol::Detect {
                    full_rate: Some(on),
                    ..Default::default()
                };
                self.send(Command::Detect(id, d));
            }
            Message::MoveTile(id, by) => self.move_tile(&id, by),
            Message::Fps(id, fps) => self.configure(
                &id,
                Configure {
                    fps_milli: Some(fps * 1000),
                    ..Default::default()
                },
            ),
            Message::ConfirmQuit(yes) => return self.confirm_quit(yes),
            Message::ConfirmStopAll(yes) => {
                self.confirm_stop_all = false;
                if yes {
                    self.send(Command::SetRecordingAll(false));
                }
            }
            Message::CloseRequested => return self.action(Action::Quit),
            Message::History(m) => return self.history_msg(m),
            Message::Player(m) => self.player_msg(m),
            Message::Listen(id) => self.toggle_listen(&id),
            Message::Settings(settings::Msg::Copy) => {
                let text = self.settings.enrolled.clone().unwrap_or_default();
                return iced::clipboard::write(text);
            }
            Message::Settings(m) => self.settings_msg(m),
            Message::Panoramas(m) => {
                for c in self.panoramas.update(m) {
                    self.send(c);
                }
            }
            Message::Panorama(camera, from) => {
                self.send(Command::Panorama(camera, from));
                return self.show(Screen::Panoramas);
            }
            Message::Evidence(m) => {
                for c in self.evidence.update(m) {
                    self.send(c);
                }
            }
        }
        Task::none()
    }

    pub fn subscription(&self) -> Subscription<Message> {
        let mut subs = vec![
            listen::engine_events(&self.engine).map(Message::Heard),
            listen::pictures(&self.feeds.fresh).map(|()| Message::Pictures),
            iced::time::every(DISK_EVERY).map(|_| Message::Disk),
            keyboard::listen().filter_map(|e| match e {
                keyboard::Event::KeyPressed { key, modifiers, .. } => {
                    Some(Message::Key(key, modifiers))
                }
                _ => None,
            }),
            window::resize_events().map(|(_, size)| Message::Resized(size)),
            window::close_requests().map(|_| Message::CloseRequested),
        ];
        if self.notice.is_some() || self.moving() {
            subs.push(iced::time::every(Duration::from_secs(1)).map(|_| Message::Clock));
        }
        if self.playback.as_ref().is_some_and(|p| p.clock.playing)
            && self.screen == Screen::Playback
        {
            subs.push(
                iced::time::every(Duration::from_millis(15))
                    .map(|_| Message::Player(playback::Msg::Tick)),
            );
        }
        Subscription::batch(subs)
    }

    pub fn view(&self) -> Element<'_, Message> {
        let screen: Element<Message> = match &self.screen {
            Screen::Wall => wall::wall(self),
            Screen::Focus(id) => wall::focus(self, id),
            Screen::History => history::view(self),
            Screen::Playback => playback::view(self),
            Screen::Settings => settings::view(self),
            Screen::Evidence => evidence::view(self),
            Screen::Panoramas => panoramas::view(self),
        };
        let mut body = column![chrome::nav(self), container(screen).height(Length::Fill)]
            .spacing(6)
            .padding(6);
        if let Some(bar) = alarms::bar(&self.alarms) {
            body = body.push(bar);
        }
        let body = body.push(chrome::status_bar(self));
        let mut layers = stack![body];
        if self.help {
            layers = layers.push(chrome::overlay(chrome::help_panel()));
        }
        if self.confirm_quit {
            layers = layers.push(chrome::overlay(chrome::quit_panel(self.recording_count())));
        }
        if self.confirm_stop_all {
            layers = layers.push(chrome::overlay(chrome::stop_all_panel(
                self.recording_on_count(),
            )));
        }
        layers.into()
    }
}
