-- Attendance rules: reason codes on decisions, the review queue, shifts and
-- their assignments, mark classification, and admins' corrections.

-- Every decision keeps a stable reason code and the rule that settled it.
-- Decisions stored before are given the code their outcome and reason imply
-- (there was then one threshold, so an unknown face was below both).
ALTER TABLE decisions ADD COLUMN reason_code TEXT NOT NULL DEFAULT 'unclassified';
ALTER TABLE decisions ADD COLUMN rule TEXT NOT NULL DEFAULT 'legacy';
UPDATE decisions SET reason_code = CASE
    WHEN outcome = 'marked' THEN 'marked'
    WHEN outcome = 'duplicate' THEN 'duplicate_window'
    WHEN outcome = 'inactive_person' THEN 'person_inactive'
    WHEN outcome = 'no_face' THEN 'no_face'
    WHEN outcome = 'unknown' AND reason LIKE 'no enrolled subject%'
        THEN 'no_candidate'
    WHEN outcome = 'unknown' AND reason LIKE '%is no known person'
        THEN 'subject_not_enrolled'
    WHEN outcome = 'unknown' THEN 'below_unknown_threshold'
    WHEN outcome = 'rejected' AND reason IN
        ('too_dark', 'too_bright', 'too_blurry', 'too_small')
        THEN 'quality_' || reason
    WHEN outcome = 'rejected' AND reason LIKE 'the recognizer refused%'
        THEN 'recognizer_refused'
    WHEN outcome = 'rejected' AND reason LIKE '%spool file is missing%'
        THEN 'frame_missing'
    WHEN outcome = 'rejected' THEN 'frame_undecodable'
    ELSE 'unclassified'
END;
CREATE INDEX decisions_captured_at ON decisions (captured_at);
CREATE INDEX decisions_person ON decisions (person_id, id);

-- Marks gain the day they count for (a night shift's check-out counts for the
-- evening it started), how they stand against the shift, and who made them.
-- A manual mark has no camera, similarity or decision, which the columns of
-- 0001 forbid; nothing references this table yet, so it is rebuilt with the
-- same rows and ids.
CREATE TABLE attendance_rebuilt (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id      TEXT NOT NULL REFERENCES people (id),
    camera_id      TEXT REFERENCES cameras (id),
    kind           TEXT NOT NULL CHECK (kind IN ('check_in', 'check_out')),
    marked_at      TEXT NOT NULL,
    local_day      TEXT NOT NULL,
    work_day       TEXT NOT NULL,
    similarity     REAL,
    decision_id    INTEGER UNIQUE REFERENCES decisions (id),
    source         TEXT NOT NULL DEFAULT 'recognition'
                   CHECK (source IN ('recognition', 'review', 'manual')),
    classification TEXT NOT NULL DEFAULT 'unscheduled'
                   CHECK (classification IN ('on_time', 'late', 'early_exit',
                                             'outside_shift', 'unscheduled')),
    shift          TEXT,
    CHECK (source = 'manual' OR decision_id IS NOT NULL)
);
INSERT INTO attendance_rebuilt (id, person_id, camera_id, kind, marked_at,
                                local_day, work_day, similarity, decision_id)
SELECT id, person_id, camera_id, kind, marked_at, local_day, local_day,
       similarity, decision_id
FROM attendance;
DROP TABLE attendance;
ALTER TABLE attendance_rebuilt RENAME TO attendance;
CREATE INDEX attendance_day ON attendance (local_day, marked_at);
CREATE INDEX attendance_work_day ON attendance (work_day, marked_at);
CREATE INDEX attendance_person ON attendance (person_id, marked_at);

-- Grey-zone matches waiting for a reviewer, one per decision. Confirming
-- links the mark it made (or the code of the rule that still refused it).
CREATE TABLE reviews (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    decision_id         INTEGER NOT NULL UNIQUE REFERENCES decisions (id),
    frame_id            TEXT NOT NULL,
    camera_id           TEXT NOT NULL REFERENCES cameras (id),
    person_id           TEXT REFERENCES people (id),
    subject             TEXT,
    similarity          REAL NOT NULL,
    captured_at         TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    state               TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'confirmed', 'rejected')),
    resolved_at         TEXT,
    resolved_by         TEXT,
    comment             TEXT,
    confirmed_person_id TEXT REFERENCES people (id),
    result_code         TEXT,
    mark_id             INTEGER REFERENCES attendance (id)
);
CREATE INDEX reviews_state ON reviews (state, id);
CREATE INDEX reviews_open ON reviews (person_id, camera_id, state, captured_at);

-- Named schedules in site-local wall-clock time; days are weekday numbers
-- (0 is Monday) separated by commas; durations are whole seconds. A shift is
-- never edited: reports of past days keep meaning what they meant.
CREATE TABLE shifts (
    name               TEXT PRIMARY KEY,
    days               TEXT NOT NULL,
    start_time         TEXT NOT NULL,
    end_time           TEXT NOT NULL,
    checkin_before_s   INTEGER NOT NULL,
    checkout_after_s   INTEGER NOT NULL,
    late_grace_s       INTEGER NOT NULL,
    early_exit_grace_s INTEGER NOT NULL,
    half_day_below_s   INTEGER NOT NULL,
    absent_below_s     INTEGER NOT NULL,
    created_at         TEXT NOT NULL
);

-- Who works which shift from which site-local date on; a NULL shift ends the
-- previous assignment. Kept as a history so past days keep their shift.
CREATE TABLE person_shifts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id      TEXT NOT NULL REFERENCES people (id),
    shift          TEXT REFERENCES shifts (name),
    effective_from TEXT NOT NULL,
    assigned_at    TEXT NOT NULL,
    assigned_by    TEXT NOT NULL
);
CREATE INDEX person_shifts_person ON person_shifts (person_id, effective_from, id);

-- Admins' corrections. An added mark is a row of attendance (source 'manual')
-- and one 'add' row here; a voided mark stays as it was and gets one 'void'
-- row here, which listings and reports honour.
CREATE TABLE attendance_corrections (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    action     TEXT NOT NULL CHECK (action IN ('add', 'void')),
    mark_id    INTEGER NOT NULL REFERENCES attendance (id),
    person_id  TEXT NOT NULL REFERENCES people (id),
    comment    TEXT NOT NULL CHECK (length(trim(comment)) > 0),
    actor      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX attendance_corrections_one_each
    ON attendance_corrections (mark_id, action);
CREATE INDEX attendance_corrections_person ON attendance_corrections (person_id, id);
