//! The panel's engine: everything but the window. Agents connect to the
//! ingest listener; each camera's frames go to its live channel (for the
//! wall) and its recorder (for disk); the catalog indexes it all in SQLite.
//! Dependencies point one way: gui -> engine -> protocol.

pub mod catalog;
pub mod config;
pub mod engine;
pub mod evidence;
pub mod gui;
pub mod ingest;
pub mod jpeg;
pub mod live;
pub mod panorama;
pub mod recorder;
pub mod stats;
pub mod time;
pub mod tls;
