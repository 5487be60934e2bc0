//! Recording, each camera on its own: a task per camera that writes the
//! received JPEG frames, unchanged, into Matroska segments under
//! `recordings/<camera>/<YYYY-MM-DD>/`, rotates them, and keeps the catalog's
//! `recordings` rows true (file synced before a row says complete), in time
//! order (an event's pre-roll merged in) and, recording on motion, only
//! around events. Also the start-up repair of crashed segments and
//! retention.

pub mod camera;
mod disk;
pub mod preroll;
pub mod repair;
pub mod retention;
pub mod segment;

pub use disk::{SYNC_EVERY, paced_step};
