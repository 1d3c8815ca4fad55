-- Accounts, camera API keys, token revocations and the audit hash chain.

CREATE TABLE accounts (
    username           TEXT PRIMARY KEY,
    password_hash      TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    disabled           INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL
);

-- Only a SHA-256 of each key is kept: keys are 256-bit random strings, so a
-- fast hash is enough and lets the gateway find a key by its hash.
CREATE TABLE camera_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id  TEXT NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
);
CREATE INDEX camera_keys_camera ON camera_keys (camera_id);

-- One revoked token id, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL,
    revoked_at TEXT NOT NULL
);

-- Every token of a subject issued before not_before is revoked.
CREATE TABLE revoked_subjects (
    subject    TEXT PRIMARY KEY,
    not_before TEXT NOT NULL
);

-- The audit log: each entry stores the previous entry's hash and its own,
-- so an edited, inserted or deleted entry breaks the chain.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    actor_role TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    source     TEXT,
    outcome    TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
