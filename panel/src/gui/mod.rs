//! The native control panel (iced): a thin client of the engine. Commands go
//! in through the backend worker, state and pictures come out; no network or
//! disk work on the UI thread.

pub mod app;
pub mod backend;
pub mod chrome;
pub mod decode;
pub mod evidence;
pub mod feeds;
pub mod history;
pub mod keys;
pub mod panoramas;
pub mod playback;
pub mod settings;
pub mod style;
pub mod wall;

use std::sync::Arc;

use crate::config::PanelConfig;
use crate::engine::Engine;

/// Why the window cannot open, in one line, or `None` when it can.
pub fn no_display() -> Option<String> {
    let has = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if has("DISPLAY") || has("WAYLAND_DISPLAY") {
        None
    } else {
        Some("no display (DISPLAY is not set): run `panel serve` for the headless panel".into())
    }
}

/// Starts the engine and opens the window; returns when the window closes
/// and the engine has stopped cleanly.
pub fn run(config: PanelConfig) -> Result<(), String> {
    if let Some(why) = no_display() {
        return Err(why);
    }
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let engine = Arc::new(
        runtime
            .block_on(Engine::start(config))
            .map_err(|e| e.to_string())?,
    );
    let handle = runtime.handle().clone();
    let boot_engine = engine.clone();
    let result = iced::application(
        move || app::App::new(boot_engine.clone(), &handle),
        app::App::update,
        app::App::view,
    )
    .title(app::App::title)
    .subscription(app::App::subscription)
    .theme(|_: &app::App| iced::Theme::Dark)
    .exit_on_close_request(false)
    .window_size((1280.0, 800.0))
    .run();
    runtime.block_on(engine.shutdown());
    result.map_err(|e| format!("the window failed: {e}"))
}
