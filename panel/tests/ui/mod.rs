//! The window in iced's headless simulator, against a real engine with
//! cameras connected over loopback: what an operator sees. The window's
//! tasks and subscriptions run as iced runs them (an iced runtime of their
//! own); their messages are applied as they arrive. Shared by the window's
//! test files (`mod ui;`).

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cctv_engine::Engine;
use cctv_window::app::{App, Message};
use iced::futures::StreamExt;
use iced::futures::channel::mpsc;
use iced_test::futures::subscription::into_recipes;
use iced_test::runtime::Action as RuntimeAction;
use iced_test::runtime::task::into_stream;

use crate::support::*;

type Ui = iced_test::futures::Runtime<iced::executor::Default, mpsc::Sender<Message>, Message>;

pub struct World {
    pub rt: tokio::runtime::Runtime,
    pub engine: Arc<Engine>,
    pub app: App,
    /// Runs the window's tasks and subscriptions, as iced does.
    pub ui: Ui,
    /// Their messages, waiting to be applied.
    pub inbox: mpsc::Receiver<Message>,
    pub dir: tempfile::TempDir,
    /// The simulated window's size.
    pub size: (f32, f32),
}

pub fn world(segment_secs: u64) -> World {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = config(dir.path());
    cfg.segment_secs = segment_secs;
    let engine = Arc::new(rt.block_on(start_engine(cfg)));
    World::new(rt, engine, dir)
}

impl World {
    pub fn new(rt: tokio::runtime::Runtime, engine: Arc<Engine>, dir: tempfile::TempDir) -> Self {
        let (app, first) = App::new(engine.clone(), rt.handle());
        let (tx, inbox) = mpsc::channel(1024);
        let ui = Ui::new(iced::executor::Default::new().unwrap(), tx);
        let mut w = World {
            rt,
            engine,
            app,
            ui,
            inbox,
            dir,
            size: (1280.0, 800.0),
        };
        w.perform(first);
        w
    }

    /// Applies a message, runs the tasks it asks for and follows the
    /// subscriptions its new state wants.
    pub fn send(&mut self, m: Message) {
        let task = self.app.update(m);
        self.perform(task);
    }

    pub fn perform(&mut self, task: iced::Task<Message>) {
        if let Some(actions) = into_stream(task) {
            let messages = actions.filter_map(|a| async move {
                match a {
                    RuntimeAction::Output(m) => Some(m),
                    _ => None,
                }
            });
            self.ui.run(messages.boxed());
        }
        self.ui.track(into_recipes(self.app.subscription()));
    }

    /// Applies the messages that have arrived, without waiting.
    pub fn pump(&mut self) {
        while let Ok(m) = self.inbox.try_recv() {
            self.send(m);
        }
    }

    pub fn camera(&self, id: &str, name: &str) -> FakeCamera {
        self.rt.block_on(async {
            let creds = enroll(&self.engine, id, name).await;
            FakeCamera::start(&creds, 10).await
        })
    }

    /// Applies messages as they arrive until `f` holds.
    pub fn until(&mut self, what: &str, f: impl Fn(&App) -> bool) {
        self.until_within(Duration::from_secs(15), what, f)
    }

    /// `until`, for something that takes a clip's playing time (which a
    /// busy machine stretches).
    pub fn until_within(&mut self, limit: Duration, what: &str, f: impl Fn(&App) -> bool) {
        let start = Instant::now();
        loop {
            self.pump();
            if f(&self.app) {
                return;
            }
            assert!(start.elapsed() < limit, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Renders the view; runs `f` on the simulator; applies its messages.
    pub fn ui<T>(&mut self, f: impl FnOnce(&mut iced_test::Simulator<'_, Message>) -> T) -> T {
        let (out, messages) = {
            let mut ui = iced_test::Simulator::with_size(
                iced::Settings::default(),
                self.size,
                self.app.view(),
            );
            let out = f(&mut ui);
            (out, ui.into_messages().collect::<Vec<_>>())
        };
        for m in messages {
            self.send(m);
        }
        out
    }

    /// Applies messages until the status bar's notice starts with `start`.
    pub fn until_notice(&mut self, start: &str) {
        let start = start.to_string();
        self.until(&format!("the notice {start:?}"), move |a| {
            a.notice
                .as_ref()
                .is_some_and(|(t, _, _)| t.starts_with(start.as_str()))
        })
    }

    /// Simulates a window of this size from now on.
    pub fn resize(&mut self, w: f32, h: f32) {
        self.size = (w, h);
        self.send(Message::Resized(iced::Size::new(w, h)));
    }

    /// Whether `text` is on screen whole: inside the window and not
    /// clipped by a container or scrolled away.
    pub fn shows_whole(&mut self, text: &str) -> bool {
        let t = text.to_string();
        let (w, h) = self.size;
        self.ui(move |ui| {
            let Ok(found) = ui.find(t.as_str()) else {
                return false;
            };
            let b = found.bounds();
            let inside =
                b.x >= 0.0 && b.y >= 0.0 && b.x + b.width <= w + 0.5 && b.y + b.height <= h + 0.5;
            let unclipped = found.visible_bounds().is_some_and(|v| {
                (v.width - b.width).abs() < 0.5 && (v.height - b.height).abs() < 0.5
            });
            inside && unclipped
        })
    }

    /// Renders the window as it is now into `path` (PNG), for a person to
    /// look at.
    pub fn snapshot(&mut self, path: &std::path::Path) {
        let _ = std::fs::remove_file(path);
        self.ui(|ui| {
            ui.snapshot(&iced::Theme::Dark)
                .and_then(|s| s.matches_image(path))
                .map(|_| ())
        })
        .expect("snapshot");
    }

    /// Whether some text on screen starts with `start`.
    pub fn sees_prefix(&mut self, start: &str) -> bool {
        let t = start.to_string();
        self.ui(move |ui| {
            use iced_test::selector::Candidate;
            ui.find(move |c: Candidate<'_>| match c {
                Candidate::Text { content, .. } if content.starts_with(t.as_str()) => Some(()),
                _ => None,
            })
            .is_ok()
        })
    }

    pub fn sees(&mut self, text: &str) -> bool {
        let t = text.to_string();
        self.ui(move |ui| ui.find(t.as_str()).is_ok())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.rt.block_on(self.engine.shutdown());
    }
}
