-- Sync to the central server: each audit entry records where on this box's
-- monotonic clock it was written (outside the hash, which predates it), and a
-- consumer can be stopped for an admin to look at (the audit sync, when the
-- office's copy of the chain disagrees).
ALTER TABLE audit_log ADD COLUMN monotonic_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN boot_id TEXT NOT NULL DEFAULT 'unrecorded';
ALTER TABLE outbox_cursors ADD COLUMN stopped_reason TEXT;

-- Each outbox stream's last seq, kept apart from the rows so that pruning the
-- delivered rows never lets a seq be handed out twice.
CREATE TABLE outbox_heads (
    stream TEXT PRIMARY KEY,
    seq    INTEGER NOT NULL
);
INSERT INTO outbox_heads (stream, seq)
SELECT stream, MAX(seq) FROM outbox GROUP BY stream;
