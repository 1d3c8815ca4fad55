-- The camera registry grows into a managed fleet (location, expected frame
-- interval, probe, schedule, enable/disable, removal), each camera's health is
-- kept across restarts, and every event leaves through one outbox.

ALTER TABLE cameras ADD COLUMN location TEXT;
-- Seconds between frames a camera is expected to keep to; NULL: not watched.
ALTER TABLE cameras ADD COLUMN expected_interval_s REAL;
-- Replaces the match threshold of the attendance rules for this camera.
ALTER TABLE cameras ADD COLUMN match_threshold REAL;
-- An HTTP snapshot or RTSP URL the health monitor may probe.
ALTER TABLE cameras ADD COLUMN probe_url TEXT;
-- JSON list of {"days": [0..6], "start": "HH:MM", "end": "HH:MM"} in the
-- site's time zone; NULL: always expected.
ALTER TABLE cameras ADD COLUMN schedule TEXT;
ALTER TABLE cameras ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
-- A removed camera keeps its id for the decisions and marks it made.
ALTER TABLE cameras ADD COLUMN removed_at TEXT;
ALTER TABLE cameras ADD COLUMN updated_at TEXT;

-- What the health monitor last concluded about each camera.
CREATE TABLE camera_health (
    camera_id     TEXT PRIMARY KEY REFERENCES cameras (id),
    state         TEXT NOT NULL,
    since         TEXT NOT NULL,
    last_frame_at TEXT,
    last_probe_at TEXT,
    last_error    TEXT,
    -- JSON counters of the last minute and hour, and the quality grade.
    activity      TEXT NOT NULL DEFAULT '{}',
    updated_at    TEXT NOT NULL
);

-- The appliance's own checks (disk, spool, recognizer, clock, database).
CREATE TABLE self_checks (
    name       TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('ok', 'failing')),
    since      TEXT NOT NULL,
    detail     TEXT,
    updated_at TEXT NOT NULL
);

-- Everything that leaves the appliance, per stream, in commit order. ``seq``
-- is gapless within a stream: it is taken as max + 1 inside the writing
-- transaction, and SQLite has one writer.
CREATE TABLE outbox (
    stream       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    payload      TEXT NOT NULL,
    -- Where and when on this box the record was written: wall time, the
    -- monotonic clock and the boot it belongs to.
    monotonic_ns INTEGER NOT NULL,
    boot_id      TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE INDEX outbox_type ON outbox (stream, type, seq);

-- How far each consumer (an event sink, the sync of a stream) has got.
CREATE TABLE outbox_cursors (
    consumer      TEXT PRIMARY KEY,
    stream        TEXT NOT NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_success_at TEXT,
    updated_at    TEXT NOT NULL
);

-- Records a consumer gave up on; re-driving queues them for another try.
CREATE TABLE outbox_dead_letters (
    consumer   TEXT NOT NULL,
    stream     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    dead_at    TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'dead'
               CHECK (state IN ('dead', 'redrive', 'redelivered')),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (consumer, seq)
);
CREATE INDEX outbox_dead_letters_state ON outbox_dead_letters (consumer, state);
