-- Events that last: motion and tamper (covered, blinded, defocused, moved)
-- start at `at_us` and end at `end_us` (NULL while they go on). A motion
-- event keeps its peak score (the share of the picture that moved, 0 to 1)
-- and a small JPEG of the frame at the peak. Point events (a camera going
-- offline, a recording starting) keep `end_us` NULL.
ALTER TABLE camera_events ADD COLUMN end_us INTEGER;
ALTER TABLE camera_events ADD COLUMN peak_score REAL;
ALTER TABLE camera_events ADD COLUMN thumbnail BLOB;
CREATE INDEX camera_events_by_kind_time ON camera_events (kind, at_us);
