-- The frame queue: one row per accepted frame, from its acceptance (its bytes
-- are in the spool folder) until its decisions are committed.

CREATE TABLE frames (
    id           TEXT PRIMARY KEY,
    camera_id    TEXT NOT NULL REFERENCES cameras (id),
    state        TEXT NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'decided')),
    sha256       TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL,
    format       TEXT NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    captured_at  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    camera_seq   INTEGER,
    clock_skew_s REAL,
    decided_at   TEXT
);
CREATE INDEX frames_queue ON frames (state, received_at);
CREATE INDEX frames_recent ON frames (camera_id, sha256, received_at);
