//! File descriptors: the panel takes all the process may have, and keeps a
//! reserve that agent connections can never use, so a flood of connections
//! cannot leave a recorder unable to open its next segment or the catalog
//! unable to write.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Kept for everything but agent connections: the catalog (a pool of
/// connections, each with its database, WAL and shared-memory files), the
/// listener, the runtime's own, logs, the window's display connection and
/// fonts, a stitch worker's pipes, exports and dispatches in progress.
pub const RESERVED: u64 = 128;

/// Kept for each camera: its open segment, and a file a repair or an export
/// of it opens. At least [`MIN_CAMERAS`] are counted, for cameras added
/// while the panel runs.
pub const PER_CAMERA: u64 = 3;
pub const MIN_CAMERAS: usize = 32;

/// Raises the soft limit on open descriptors to the hard limit; returns the
/// limit now in force (`None`: unlimited, or it cannot be read).
pub fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current != Some(hard)
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return Some(hard);
        }
    }
    limit.current
}

/// How many agent connections at once: the configured most, within what
/// is left of `limit` after the reserve for `cameras`.
pub fn connection_budget(configured: usize, limit: Option<u64>, cameras: usize) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let reserve = RESERVED + PER_CAMERA * cameras.max(MIN_CAMERAS) as u64;
    let left = limit.saturating_sub(reserve).max(1);
    configured.min(usize::try_from(left).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_get_what_the_reserve_leaves() {
        assert_eq!(connection_budget(1024, None, 4), 1024);
        assert_eq!(connection_budget(1024, Some(1_048_576), 4), 1024);
        // 1024 - 128 - 3 x 32
        assert_eq!(connection_budget(1024, Some(1024), 4), 800);
        // 1024 - 128 - 3 x 100
        assert_eq!(connection_budget(1024, Some(1024), 100), 596);
        // Never none at all: a panel that can take no camera is no use.
        assert_eq!(connection_budget(1024, Some(64), 4), 1);
    }
}
