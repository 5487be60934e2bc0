//! The panel's engine: everything but the window and the stitcher. Agents
//! connect to the ingest listener; each camera's frames go to its live
//! channel (for the wall) and its recorder (for disk); the catalog indexes
//! it all in SQLite; evidence is exported, verified and dispatched from it.
//!
//! [`Engine`] is the running panel's one handle: typed commands in, state and
//! [`EngineEvent`]s out. The other public modules serve the `panel` command's
//! offline work (reading a catalog no engine runs on, verifying a zip,
//! receiving dispatches) and never reach into a running engine.
//! Dependencies point one way: window and panorama -> engine -> mkv, protocol.

pub mod acks;
pub mod catalog;
pub mod config;
mod engine;
pub mod evidence;
pub mod explain;
pub mod fds;
mod ingest;
pub mod jpeg;
pub mod live;
pub mod mqtt;
mod peers;
pub mod recorder;
pub mod sound;
pub mod stats;
mod sync;
pub mod time;
pub mod tls;
pub mod writes;

pub use engine::*;
pub use evidence::export::Progress as ExportProgress;
pub use live::EngineEvent;
