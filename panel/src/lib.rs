pub mod catalog;
pub mod jpeg;
pub mod recorder;
pub mod time;
