//! The command-line commands other than the window and `serve`.

pub mod args;
pub mod auth;
pub mod catalog;
pub mod evidence;
pub mod panorama;

pub(crate) use crate::wait_for_stop;
