-- People, their face examples, cameras, recognition decisions and attendance.
-- Times are stored as RFC 3339 UTC text; local_day is the site-local date of a
-- mark, so that "today's attendance" does not depend on the reader's zone.

CREATE TABLE people (
    id          TEXT PRIMARY KEY,
    employee_no TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    department  TEXT,
    status      TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'inactive')),
    created_at  TEXT NOT NULL
);

CREATE TABLE face_examples (
    id           TEXT PRIMARY KEY,
    person_id    TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    image_sha256 TEXT NOT NULL,
    enrolled_at  TEXT NOT NULL
);
CREATE INDEX face_examples_person ON face_examples (person_id);

CREATE TABLE cameras (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    direction  TEXT NOT NULL DEFAULT 'both'
               CHECK (direction IN ('entry', 'exit', 'both')),
    created_at TEXT NOT NULL
);

CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    frame_id    TEXT NOT NULL,
    camera_id   TEXT NOT NULL REFERENCES cameras (id),
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    person_id   TEXT REFERENCES people (id),
    subject     TEXT,
    similarity  REAL,
    captured_at TEXT NOT NULL,
    decided_at  TEXT NOT NULL
);
CREATE INDEX decisions_frame ON decisions (frame_id);
CREATE INDEX decisions_decided_at ON decisions (decided_at);

CREATE TABLE attendance (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id   TEXT NOT NULL REFERENCES people (id),
    camera_id   TEXT NOT NULL REFERENCES cameras (id),
    kind        TEXT NOT NULL CHECK (kind IN ('check_in', 'check_out')),
    marked_at   TEXT NOT NULL,
    local_day   TEXT NOT NULL,
    similarity  REAL NOT NULL,
    decision_id INTEGER NOT NULL UNIQUE REFERENCES decisions (id)
);
CREATE INDEX attendance_day ON attendance (local_day, marked_at);
CREATE INDEX attendance_person ON attendance (person_id, marked_at);
