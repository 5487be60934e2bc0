//! The command-line commands other than the window and `serve`.

pub mod catalog;
pub mod evidence;

pub(crate) use crate::wait_for_stop;
