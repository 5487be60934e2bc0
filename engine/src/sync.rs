//! The engine's one rule for locks: a mutex poisoned by a panicking holder
//! is taken over as it is. Every lock guards plain data (maps, counters)
//! that stays consistent between statements, and a panic must not take
//! down ingest or recording for every camera after it.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, recovering it if a holder panicked.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
