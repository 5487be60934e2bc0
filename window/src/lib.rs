//! The panel's window (iced): a thin client of the engine. Commands go out
//! as backend tasks (engine calls on the engine's runtime); engine events and
//! new pictures come in as subscriptions. No network or disk work on the UI
//! thread, and nothing but the [`Engine`]'s own calls (no catalog, no
//! recording files).

pub mod alarms;
pub mod app;
pub mod backend;
pub mod chrome;
pub mod decode;
pub mod evidence;
pub mod feeds;
pub mod history;
pub mod keys;
pub mod listen;
pub mod panoramas;
pub mod playback;
pub mod settings;
pub mod sound;
pub mod strip;
pub mod style;
pub mod wall;

use std::sync::Arc;

use cctv_engine::Engine;

/// Why the window cannot open, in one line, or `None` when it can.
pub fn no_display() -> Option<String> {
    let has = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if has("DISPLAY") || has("WAYLAND_DISPLAY") {
        None
    } else {
        Some("no display (DISPLAY is not set): run `panel serve` for the headless panel".into())
    }
}

/// Why the window did not open or stopped.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("{0}")]
    NoDisplay(String),
    #[error("the window failed: {0}")]
    Iced(#[from] iced::Error),
}

/// Opens the window on a running engine; returns when the window closes.
/// `runtime` is the engine's: the window's commands run there.
/// The caller stops the engine afterwards.
pub fn run(engine: Arc<Engine>, runtime: &tokio::runtime::Handle) -> Result<(), WindowError> {
    if let Some(why) = no_display() {
        return Err(WindowError::NoDisplay(why));
    }
    let handle = runtime.clone();
    iced::application(
        move || app::App::new(engine.clone(), &handle),
        app::App::update,
        app::App::view,
    )
    .title(app::App::title)
    .subscription(app::App::subscription)
    .theme(|_: &app::App| iced::Theme::Dark)
    .exit_on_close_request(false)
    .window_size((1280.0, 800.0))
    .run()?;
    Ok(())
}
