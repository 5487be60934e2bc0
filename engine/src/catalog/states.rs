//! Every state the catalog stores as text, as one enum each: matched
//! exhaustively in code, stored and read through sqlx as the same words the
//! schema's CHECK constraints name, and written the same in JSON.

use std::fmt;

/// An enum stored as TEXT: each variant's word is what the database, JSON
/// and the CLI show.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        // Stored as its word in a text column, on either backend.
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Self::parse(text).ok_or_else(|| {
                    format!("{text:?} is not a {}", stringify!($name)).into()
                })
            }
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

text_enum! {
    /// What a camera is doing, as the operator sees it.
    pub enum CameraState {
        /// Connected and sending frames.
        Live = "live",
        /// Connected, but no frame for a while.
        Stalled = "stalled",
        /// Not connected (or heartbeats stopped).
        Offline = "offline",
    }
}

impl CameraState {
    pub fn event_kind(self) -> EventKind {
        match self {
            CameraState::Live => EventKind::Live,
            CameraState::Stalled => EventKind::Stalled,
            CameraState::Offline => EventKind::Offline,
        }
    }
}

text_enum! {
    /// How a camera records.
    pub enum RecordMode {
        Off = "off",
        Continuous = "continuous",
        /// Only around motion: its pre-roll, the motion and its post-roll.
        Motion = "motion",
    }
}

text_enum! {
    /// A recording segment: being written, finished and synced, or cut
    /// short (by a crash, repaired at start-up).
    pub enum RecordingStatus {
        Recording = "recording",
        Complete = "complete",
        Interrupted = "interrupted",
    }
}

text_enum! {
    /// What happened to a camera, in its history.
    pub enum EventKind {
        Live = "live",
        Stalled = "stalled",
        Offline = "offline",
        /// A connection claiming this camera was refused.
        Rejected = "rejected",
        RecordingStarted = "recording_started",
        RecordingStopped = "recording_stopped",
        RecordingError = "recording_error",
        DiskFull = "disk_full",
        /// An agent fetched the camera's secret with a pairing code.
        Paired = "paired",
        /// The scene moved (a span, with a peak score and thumbnail).
        Motion = "motion",
        /// Tamper spans: dark and without detail ...
        Covered = "covered",
        /// ... bright and without detail ...
        Blinded = "blinded",
        /// ... sharpness collapsed ...
        Defocused = "defocused",
        /// ... the camera was turned.
        Moved = "moved",
        /// Frames from the agent's spool were recorded after an outage
        /// (`at_us` the first, `end_us` the last).
        Backfill = "backfill",
        /// The agent's spool was full and dropped frames unsent
        /// (`at_us` the first, `end_us` the last).
        SpoolOverflow = "spool_overflow",
    }
}

impl EventKind {
    /// The event kind of a tamper the agent reports.
    pub fn of_tamper(t: cctv_protocol::Tamper) -> Self {
        match t {
            cctv_protocol::Tamper::Covered => EventKind::Covered,
            cctv_protocol::Tamper::Blinded => EventKind::Blinded,
            cctv_protocol::Tamper::Defocused => EventKind::Defocused,
            cctv_protocol::Tamper::Moved => EventKind::Moved,
        }
    }

    /// Kinds that last, from `at_us` to `end_us`: motion and tamper.
    pub fn is_span(self) -> bool {
        matches!(
            self,
            EventKind::Motion
                | EventKind::Covered
                | EventKind::Blinded
                | EventKind::Defocused
                | EventKind::Moved
        )
    }

    /// Tamper kinds.
    pub fn is_tamper(self) -> bool {
        self.is_span() && self != EventKind::Motion
    }

    /// Recording turned on or off (by the operator or the mode).
    pub fn is_recording_switch(self) -> bool {
        matches!(
            self,
            EventKind::RecordingStarted | EventKind::RecordingStopped
        )
    }

    /// Kinds that explain a gap between recordings.
    pub fn explains_gaps(self) -> bool {
        matches!(
            self,
            EventKind::Live
                | EventKind::Offline
                | EventKind::Stalled
                | EventKind::RecordingError
                | EventKind::DiskFull
        )
    }
}

text_enum! {
    /// How an export ended.
    pub enum ExportStatus {
        Complete = "complete",
        Cancelled = "cancelled",
        Failed = "failed",
    }
}

text_enum! {
    /// A dispatch of an export to a target.
    pub enum DispatchState {
        /// Waiting for its next attempt (or being sent).
        Pending = "pending",
        /// Acknowledged by the target.
        Done = "done",
        /// Given up on.
        Failed = "failed",
    }
}

text_enum! {
    /// A panorama attempt.
    pub enum PanoramaStatus {
        Running = "running",
        Complete = "complete",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// Why a connection (an agent's or a dispatch sender's) was refused.
    pub enum RefusalCode {
        WrongSecret = "wrong_secret",
        UnknownCamera = "unknown_camera",
        UnknownSender = "unknown_sender",
        Revoked = "revoked",
        Replayed = "replayed",
        NoProof = "no_proof",
        /// Plain TCP on the TLS port.
        NotTls = "not_tls",
        /// The TLS handshake failed (or TLS on the plain-TCP port).
        Tls = "tls",
        /// Not the protocol, or not in order.
        Protocol = "protocol",
        Timeout = "timeout",
        RateLimited = "rate_limited",
        /// Over the panel's cap on connections at once.
        AtCapacity = "at_capacity",
        /// The camera is already connected (a second agent with its secret?).
        AlreadyLive = "already_live",
        /// A pairing code that is wrong, used or expired.
        WrongCode = "wrong_code",
        /// The panel's database failed while checking.
        Database = "database",
    }
}

impl From<&cctv_protocol::auth::Refusal> for RefusalCode {
    fn from(r: &cctv_protocol::auth::Refusal) -> Self {
        use cctv_protocol::auth::Refusal;
        match r {
            Refusal::NotHello(_) => RefusalCode::Protocol,
            Refusal::UnknownCamera => RefusalCode::UnknownCamera,
            Refusal::Revoked => RefusalCode::Revoked,
            Refusal::NoProof => RefusalCode::NoProof,
            Refusal::WrongSecret => RefusalCode::WrongSecret,
            Refusal::Replayed => RefusalCode::Replayed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_reads_back_as_it_was_written() {
        for s in ExportStatus::ALL {
            assert_eq!(ExportStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
        }
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(
            RefusalCode::parse("rate_limited"),
            Some(RefusalCode::RateLimited)
        );
        assert_eq!(CameraState::parse("sleeping"), None);
    }
}
