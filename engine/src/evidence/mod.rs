//! Evidence: exports of recordings as a zip with a manifest of SHA-256
//! hashes, their verification, their dispatch to archive places (a
//! directory or a `panel receive`), and import on the receiving side.

pub mod clip;
pub mod dispatch;
pub mod export;
pub mod import;
pub mod manifest;
pub mod receive;
pub mod transfer;
pub mod verify;
