-- Video streams the appliance pulls frames from, at most one per camera.
-- state, last_error and last_frame_at are the reader's last report, kept so
-- that a listing after a restart still says why a stream stopped.
-- A URL is stored as given, credentials included (cameras take them in the
-- URL); this file is therefore as sensitive as the cameras' passwords.

CREATE TABLE streams (
    id             TEXT PRIMARY KEY,
    camera_id      TEXT NOT NULL UNIQUE REFERENCES cameras (id) ON DELETE CASCADE,
    url            TEXT NOT NULL,
    sample_every_s REAL NOT NULL CHECK (sample_every_s > 0),
    enabled        INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at     TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'stopped'
                   CHECK (state IN ('starting', 'streaming', 'reconnecting',
                                    'stopped', 'failed', 'finished')),
    last_error     TEXT,
    last_frame_at  TEXT
);
