//! Tamper alarms: raised when a camera reports it is covered, blinded,
//! defocused or moved, and kept (red tile, red bar over the status bar)
//! until the operator acknowledges them, even once the picture is back,
//! so an alarm that lasted a minute at night is still there in the
//! morning.

use iced::widget::{button, container, row, text};
use iced::{Alignment, Element, Length};

use super::app::Message;
use super::keys::Action;
use super::style;
use cctv_engine::catalog::EventKind;
use cctv_engine::live::CameraStatus;
use cctv_engine::time;

/// One tamper of one camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    pub camera: String,
    pub name: String,
    pub kind: EventKind,
    pub since_us: i64,
    /// When the picture came back, if it has.
    pub cleared_us: Option<i64>,
    /// The operator has seen it (it goes once the picture is back).
    pub acknowledged: bool,
}

/// The alarms not yet acknowledged, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Alarms {
    pub list: Vec<Alarm>,
}

impl Alarms {
    /// Follows the cameras' tamper states: a new tamper raises an alarm, a
    /// tamper that ended marks its alarm cleared (it stays). True if an
    /// alarm was raised.
    pub fn observe(&mut self, cameras: &[CameraStatus], now_us: i64) -> bool {
        for a in self.list.iter_mut().filter(|a| a.cleared_us.is_none()) {
            let still = cameras
                .iter()
                .any(|c| c.id == a.camera && c.tamper == Some(a.kind));
            if !still {
                a.cleared_us = Some(now_us);
            }
        }
        self.list
            .retain(|a| !(a.acknowledged && a.cleared_us.is_some()));
        let mut raised = false;
        for c in cameras {
            let Some(kind) = c.tamper else { continue };
            let open = self
                .list
                .iter()
                .any(|a| a.camera == c.id && a.kind == kind && a.cleared_us.is_none());
            if !open {
                self.list.push(Alarm {
                    camera: c.id.clone(),
                    name: c.name.clone(),
                    kind,
                    since_us: now_us,
                    cleared_us: None,
                    acknowledged: false,
                });
                raised = true;
            }
        }
        raised
    }

    /// The operator has seen them: those over go, those going on stay
    /// (quietly) until they end.
    pub fn acknowledge(&mut self) {
        self.list.retain(|a| a.cleared_us.is_none());
        for a in &mut self.list {
            a.acknowledged = true;
        }
    }

    /// Alarms waiting for the operator, oldest first.
    pub fn waiting(&self) -> impl DoubleEndedIterator<Item = &Alarm> {
        self.list.iter().filter(|a| !a.acknowledged)
    }

    /// The camera has an alarm waiting for the operator.
    pub fn on(&self, camera: &str) -> bool {
        self.waiting().any(|a| a.camera == camera)
    }

    /// The newest waiting alarm of a camera.
    pub fn of(&self, camera: &str) -> Option<&Alarm> {
        self.waiting().rev().find(|a| a.camera == camera)
    }
}

/// What a tamper kind means, in a few words.
pub fn says(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Covered => "lens covered",
        EventKind::Blinded => "camera blinded",
        EventKind::Defocused => "picture out of focus",
        EventKind::Moved => "camera moved",
        _ => "tampered with",
    }
}

/// "TAMPER Front door: lens covered since 14:02:11 (back at 14:03:40)"
pub fn line(a: &Alarm) -> String {
    let back = a
        .cleared_us
        .map(|t| format!(" (back at {})", time::local_clock(t)))
        .unwrap_or_default();
    format!(
        "TAMPER {}: {} since {}{back}",
        a.name,
        says(a.kind),
        time::local_clock(a.since_us)
    )
}

/// The red bar over the status bar while any alarm waits.
pub fn bar(alarms: &Alarms) -> Option<Element<'_, Message>> {
    let newest = alarms.waiting().next_back()?;
    let more = match alarms.waiting().count() {
        1 => String::new(),
        n => format!("  ·  {} more", n - 1),
    };
    let content = row![
        // The words wrap in a narrow window; the button stays whole.
        text(format!("⚠ {}{more}", line(newest)))
            .size(18)
            .width(Length::Fill),
        button(text("Acknowledge (k)"))
            .style(button::secondary)
            .on_press(Message::Action(Action::Acknowledge)),
    ]
    .spacing(12)
    .align_y(Alignment::Center);
    Some(
        container(content)
            .padding(8)
            .width(Length::Fill)
            .style(style::badge(style::ALARM))
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cctv_engine::catalog::{CameraRow, CameraState, RecordMode};

    fn camera(id: &str, tamper: Option<EventKind>) -> CameraStatus {
        let row = CameraRow {
            server_id: String::new(),
            id: id.into(),
            name: id.into(),
            name_locked: false,
            record_mode: RecordMode::Continuous,
            retain_bytes: None,
            retain_days: None,
            state: CameraState::Live,
            state_since_us: 0,
            state_detail: String::new(),
            first_seen_us: 0,
            last_seen_us: 0,
            last_address: String::new(),
            agent_version: String::new(),
            width: 0,
            height: 0,
            fps_milli: 0,
            auto_dispatch: false,
        };
        let mut c = CameraStatus::from_row(&row);
        c.tamper = tamper;
        c
    }

    #[test]
    fn an_alarm_stays_after_the_picture_is_back_until_acknowledged() {
        let mut alarms = Alarms::default();
        assert!(!alarms.observe(&[camera("door", None)], 1));
        assert!(alarms.observe(&[camera("door", Some(EventKind::Covered))], 2));
        assert!(!alarms.observe(&[camera("door", Some(EventKind::Covered))], 3));
        alarms.observe(&[camera("door", None)], 4);
        assert!(alarms.on("door"));
        assert_eq!(alarms.of("door").unwrap().cleared_us, Some(4));
        assert!(line(alarms.of("door").unwrap()).contains("lens covered"));
        alarms.acknowledge();
        assert!(!alarms.on("door"));
        // A new tamper after that is a new alarm.
        assert!(alarms.observe(&[camera("door", Some(EventKind::Moved))], 5));
        assert_eq!(alarms.list.len(), 1);
        // Acknowledged while it goes on: quiet, not raised again, and gone
        // once it ends.
        alarms.acknowledge();
        assert!(!alarms.observe(&[camera("door", Some(EventKind::Moved))], 6));
        assert!(!alarms.on("door"));
        alarms.observe(&[camera("door", None)], 7);
        assert!(alarms.list.is_empty());
    }
}
