-- People: the period they may be marked in, and erasure; face links: the
-- recognizer's example id and who enrolled the image.
--
-- valid_from / valid_until hold 'YYYY-MM-DD' (a whole site-local day) or RFC
-- 3339 UTC text (an instant); NULL leaves that side open.
--
-- An erased person keeps a row, because attendance and decisions reference it,
-- but its personal fields are replaced by a tombstone. The status CHECK of
-- 0001 cannot admit 'erased' without rebuilding a table other tables
-- reference, so an erased person is stored as 'inactive' with erased_at set,
-- and read back as erased.

ALTER TABLE people ADD COLUMN valid_from TEXT;
ALTER TABLE people ADD COLUMN valid_until TEXT;
ALTER TABLE people ADD COLUMN erased_at TEXT;

-- Until now a face's id was the recognizer's example id; it stays the face's
-- id, and a repair that enrolls the image again changes only example_id.
ALTER TABLE face_examples ADD COLUMN example_id TEXT NOT NULL DEFAULT '';
UPDATE face_examples SET example_id = id;
ALTER TABLE face_examples ADD COLUMN enrolled_by TEXT;

CREATE INDEX face_examples_image ON face_examples (person_id, image_sha256);
