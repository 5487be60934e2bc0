//! What the window listens to, as iced subscriptions: the engine's events
//! and the wall's new pictures. Nothing here polls; each stream waits.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use iced::Subscription;
use iced::futures::{StreamExt, stream};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::RecvError;

use cctv_engine::{Engine, EngineEvent};

/// The fastest the wall redraws for new pictures: 15 Hz matches common
/// camera rates and keeps a 16-camera wall under one core. A wall whose
/// cameras send nothing is not redrawn at all.
pub const FRAME_PACE: Duration = Duration::from_millis(66);

/// What was heard from the engine.
#[derive(Debug, Clone)]
pub enum Heard {
    Event(EngineEvent),
    /// The window fell behind and this many events were dropped.
    Missed(u64),
}

/// Identifies a subscription by the object it listens to.
struct ByAddress<T>(Arc<T>);

impl<T> Hash for ByAddress<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as *const () as usize).hash(state);
    }
}

/// The engine's events, in batches of those already waiting (a burst of
/// refused connections is one update, not hundreds).
pub fn engine_events(engine: &Arc<Engine>) -> Subscription<Vec<Heard>> {
    Subscription::run_with(ByAddress(engine.clone()), |engine| {
        stream::unfold(engine.0.subscribe(), |mut rx| async move {
            let heard = match rx.recv().await {
                Ok(event) => Heard::Event(event),
                Err(RecvError::Lagged(n)) => Heard::Missed(n),
                Err(RecvError::Closed) => return None,
            };
            Some((heard, rx))
        })
        .ready_chunks(64)
    })
}

/// One message when the decoders have left new pictures, then at most one
/// per [`FRAME_PACE`].
pub fn pictures(fresh: &Arc<Notify>) -> Subscription<()> {
    Subscription::run_with(ByAddress(fresh.clone()), |fresh| {
        stream::unfold((fresh.0.clone(), false), |(fresh, paced)| async move {
            if paced {
                tokio::time::sleep(FRAME_PACE).await;
            }
            fresh.notified().await;
            Some(((), (fresh, true)))
        })
    })
}
