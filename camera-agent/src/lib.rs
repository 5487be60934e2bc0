//! The camera agent's parts, as a library for its binary (`main.rs`) and
//! its benchmarks: sources, the picture type, analysis, encoding, the link
//! to the panel, pairing.

pub mod analysis;
pub mod audio;
pub mod backoff;
pub mod capture;
pub mod config;
pub mod encode;
pub mod framelog;
pub mod image;
pub mod link;
pub mod overlay;
pub mod pace;
pub mod pair;
pub mod source;
pub mod spool;
