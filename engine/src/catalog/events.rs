//! Camera events: the history of states and recording changes, so the
//! history view can show when and why each camera was down; and the spans
//! of what the agents saw (motion, tamper), with a start, an end, a peak
//! score and a thumbnail of the peak frame.

use serde::Serialize;

use super::{Catalog, EventKind, Result, on_db};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub camera_id: String,
    pub kind: EventKind,
    /// When it happened, or started.
    pub at_us: i64,
    pub detail: String,
    /// When a motion or tamper span ended; `None` while it goes on, and for
    /// point events.
    pub end_us: Option<i64>,
    /// A motion span's highest score: the share of the picture that moved.
    pub peak_score: Option<f64>,
    /// The recording server that saw it.
    pub server_id: String,
}

/// The columns of an [`EventRow`] (the thumbnail is read on its own).
macro_rules! event_columns {
    () => {
        "id, camera_id, kind, at_us, detail, end_us, peak_score, server_id"
    };
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub camera_id: Option<String>,
    pub kind: Option<EventKind>,
    /// Events at or after this time (a span: that started then or later).
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// How a motion or tamper span ended.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEnd {
    pub end_us: i64,
    pub peak_score: Option<f64>,
    /// A small JPEG of the frame at the peak.
    pub thumbnail: Option<Vec<u8>>,
    /// Why it ended, when not by itself (the camera went offline).
    pub why: String,
}

impl Catalog {
    pub async fn add_event(
        &self,
        camera_id: &str,
        kind: EventKind,
        at_us: i64,
        detail: &str,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "INSERT INTO camera_events (camera_id, kind, at_us, detail, server_id)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(camera_id)
            .bind(kind.as_str())
            .bind(at_us)
            .bind(detail)
            .bind(&*self.server)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Ends the open span of `kind` that started at `start_us`.
    pub async fn end_span(
        &self,
        camera_id: &str,
        kind: EventKind,
        start_us: i64,
        end: &SpanEnd,
    ) -> Result<()> {
        on_db!(self, |pool| {
            sqlx::query(
                "UPDATE camera_events
                 SET end_us = $4, peak_score = $5, thumbnail = $6,
                     detail = CASE $7 WHEN '' THEN detail ELSE detail || '; ended: ' || $7 END
                 WHERE camera_id = $1 AND kind = $2 AND at_us = $3 AND end_us IS NULL",
            )
            .bind(camera_id)
            .bind(kind.as_str())
            .bind(start_us)
            .bind(end.end_us)
            .bind(end.peak_score)
            .bind(end.thumbnail.as_deref())
            .bind(&end.why)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Spans left open by a panel that stopped without ending them: they
    /// end where they started, marked so. Returns how many.
    pub async fn close_open_spans(&self) -> Result<u64> {
        on_db!(self, |pool| {
            // The span kinds, as `EventKind::is_span` says.
            let done = sqlx::query(
                "UPDATE camera_events
                 SET end_us = at_us,
                     detail = CASE detail WHEN '' THEN 'end unknown: the panel stopped'
                              ELSE detail || '; end unknown: the panel stopped' END
                 WHERE end_us IS NULL
                   AND kind IN ('motion', 'covered', 'blinded', 'defocused', 'moved')
                   AND ($1 = '' OR server_id = $1)",
            )
            .bind(&*self.server)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// The thumbnail of an event's peak frame, if it has one.
    pub async fn event_thumbnail(&self, id: i64) -> Result<Option<Vec<u8>>> {
        on_db!(self, |pool| {
            let row: Option<(Option<Vec<u8>>,)> =
                sqlx::query_as("SELECT thumbnail FROM camera_events WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.and_then(|r| r.0))
        })
    }

    /// Motion and tamper spans of one camera (or all) that overlap
    /// `[from_us, to_us)`: started before its end and not ended before its
    /// start. Newest first.
    pub async fn spans_overlapping(
        &self,
        camera_id: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(concat!(
                "SELECT ",
                event_columns!(),
                " FROM camera_events
                 WHERE ($1 IS NULL OR camera_id = $1)
                   AND kind IN ('motion', 'covered', 'blinded', 'defocused', 'moved')
                   AND ($2 IS NULL OR end_us IS NULL OR end_us >= $2)
                   AND ($3 IS NULL OR at_us < $3)
                 ORDER BY at_us DESC, id DESC
                 LIMIT $4"
            ))
            .bind(camera_id)
            .bind(from_us)
            .bind(to_us)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Events that match `filter`, newest first.
    pub async fn find_events(&self, filter: &EventFilter) -> Result<Vec<EventRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(concat!(
                "SELECT ",
                event_columns!(),
                " FROM camera_events
                 WHERE ($1 IS NULL OR camera_id = $1)
                   AND ($2 IS NULL OR kind = $2)
                   AND ($3 IS NULL OR at_us >= $3)
                   AND ($4 IS NULL OR at_us < $4)
                 ORDER BY at_us DESC, id DESC
                 LIMIT $5 OFFSET $6"
            ))
            .bind(filter.camera_id.as_deref())
            .bind(filter.kind.map(|k| k.as_str()))
            .bind(filter.from_us)
            .bind(filter.to_us)
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Events older than `before_us` are forgotten. Returns how many.
    pub async fn prune_events(&self, before_us: i64) -> Result<u64> {
        on_db!(self, |pool| {
            let done = sqlx::query("DELETE FROM camera_events WHERE at_us < $1")
                .bind(before_us)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// The first event of a camera after `at_us`, if any.
    pub async fn first_event_after(&self, camera_id: &str, at_us: i64) -> Result<Option<EventRow>> {
        on_db!(self, |pool| {
            Ok(sqlx::query_as(concat!(
                "SELECT ",
                event_columns!(),
                " FROM camera_events WHERE camera_id = $1 AND at_us > $2 ORDER BY at_us, id LIMIT 1"
            ))
            .bind(camera_id)
            .bind(at_us)
            .fetch_optional(pool)
            .await?)
        })
    }

    pub async fn has_event(&self, camera_id: &str, kind: EventKind, at_us: i64) -> Result<bool> {
        on_db!(self, |pool| {
            let n: (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM camera_events WHERE camera_id = $1 AND kind = $2 AND at_us = $3",
            )
            .bind(camera_id)
            .bind(kind.as_str())
            .bind(at_us)
            .fetch_one(pool)
            .await?;
            Ok(n.0 > 0)
        })
    }

    /// Events of one camera (or all) in `[from_us, to_us)`, newest first, paged.
    pub async fn events(
        &self,
        camera_id: Option<&str>,
        from_us: Option<i64>,
        to_us: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<EventRow>> {
        self.find_events(&EventFilter {
            camera_id: camera_id.map(str::to_string),
            kind: None,
            from_us,
            to_us,
            limit,
            offset,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn catalog() -> Catalog {
        let c = Catalog::open_in_memory().await.unwrap();
        c.add_credentials("door", "Front door", &[1; 32], false, 10)
            .await
            .unwrap();
        c
    }

    #[tokio::test]
    async fn a_span_ends_once_and_a_stop_leaves_none_open() {
        let c = catalog().await;
        let spans: Vec<EventKind> = EventKind::ALL
            .iter()
            .copied()
            .filter(|k| k.is_span())
            .collect();
        for (i, kind) in spans.iter().enumerate() {
            c.add_event("door", *kind, 100 + i as i64, "")
                .await
                .unwrap();
        }
        c.add_event("door", EventKind::Offline, 50, "gone")
            .await
            .unwrap();
        let end = SpanEnd {
            end_us: 500,
            peak_score: Some(0.25),
            thumbnail: Some(vec![0xff, 0xd8]),
            why: "agent stopped".into(),
        };
        c.end_span("door", EventKind::Motion, 100, &end)
            .await
            .unwrap();
        let motion = c
            .find_events(&EventFilter {
                kind: Some(EventKind::Motion),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(motion.len(), 1);
        assert_eq!(motion[0].end_us, Some(500));
        assert_eq!(motion[0].peak_score, Some(0.25));
        assert!(
            motion[0].detail.ends_with("ended: agent stopped"),
            "{motion:?}"
        );
        assert_eq!(
            c.event_thumbnail(motion[0].id).await.unwrap(),
            Some(vec![0xff, 0xd8])
        );
        // Ending it again changes nothing.
        let later = SpanEnd { end_us: 900, ..end };
        c.end_span("door", EventKind::Motion, 100, &later)
            .await
            .unwrap();
        let overlapping = c
            .spans_overlapping(Some("door"), Some(600), None, 10)
            .await
            .unwrap();
        // Every span kind is one (the SQL lists them), the ended motion not.
        assert_eq!(overlapping.len(), spans.len() - 1, "{overlapping:?}");
        assert!(overlapping.iter().all(|e| e.kind != EventKind::Motion));
        // A panel that stopped: every open span is closed where it began.
        assert_eq!(c.close_open_spans().await.unwrap(), spans.len() as u64 - 1);
        let all = c.events(Some("door"), None, None, 100, 0).await.unwrap();
        assert!(
            all.iter()
                .filter(|e| e.kind.is_span())
                .all(|e| e.end_us.is_some())
        );
        assert!(
            all.iter()
                .filter(|e| !e.kind.is_span())
                .all(|e| e.end_us.is_none())
        );
    }
}
