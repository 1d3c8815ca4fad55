"""Numbered schema migrations of both stores, applied in order and recorded.

Each migration is a tuple of statements, run in one transaction together
with the row that records it in ``schema_migrations``; a migration that
fails leaves no trace, and a database never holds half of one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


SQLITE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """
            CREATE TABLE sites (
                site_id          TEXT PRIMARY KEY,
                name             TEXT NOT NULL,
                token_hash       TEXT NOT NULL UNIQUE,
                created_at       TEXT NOT NULL,
                token_changed_at TEXT NOT NULL,
                last_contact_at  TEXT,
                clock_skew_s     REAL
            )
            """,
            """
            CREATE TABLE stream_heads (
                site_id       TEXT NOT NULL,
                stream        TEXT NOT NULL,
                acked_seq     INTEGER NOT NULL DEFAULT 0,
                site_head     INTEGER NOT NULL DEFAULT 0,
                updated_at    TEXT,
                chain_hash    TEXT,
                chain_state   TEXT NOT NULL DEFAULT 'ok'
                              CHECK (chain_state IN ('ok', 'broken')),
                chain_problem TEXT,
                PRIMARY KEY (site_id, stream)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE records (
                site_id      TEXT NOT NULL,
                stream       TEXT NOT NULL,
                seq          INTEGER NOT NULL,
                id           TEXT NOT NULL,
                type         TEXT NOT NULL,
                occurred_at  TEXT NOT NULL,
                monotonic_ns INTEGER NOT NULL,
                boot_id      TEXT NOT NULL,
                payload      TEXT NOT NULL,
                day          TEXT NOT NULL,
                person_id    TEXT,
                chain_hash   TEXT,
                received_at  TEXT NOT NULL,
                PRIMARY KEY (site_id, stream, seq)
            ) WITHOUT ROWID
            """,
            """
            CREATE INDEX records_attendance_time
                ON records (occurred_at, site_id, seq)
                WHERE stream = 'attendance'
            """,
            """
            CREATE INDEX records_attendance_person
                ON records (person_id, day)
                WHERE stream = 'attendance'
            """,
            """
            CREATE TABLE quarantine (
                site_id     TEXT NOT NULL,
                stream      TEXT NOT NULL,
                seq         INTEGER NOT NULL,
                reason      TEXT NOT NULL,
                raw         TEXT NOT NULL,
                received_at TEXT NOT NULL,
                PRIMARY KEY (site_id, stream, seq)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE idempotency_keys (
                site_id    TEXT NOT NULL,
                stream     TEXT NOT NULL,
                key        TEXT NOT NULL,
                digest     TEXT NOT NULL,
                first_seq  INTEGER NOT NULL,
                last_seq   INTEGER NOT NULL,
                created_at TEXT NOT NULL,
                PRIMARY KEY (site_id, stream, key)
            ) WITHOUT ROWID
            """,
        ),
    ),
)

POSTGRES_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial",
        (
            """
            CREATE TABLE sites (
                site_id          TEXT PRIMARY KEY,
                name             TEXT NOT NULL,
                token_hash       TEXT NOT NULL UNIQUE,
                created_at       TIMESTAMPTZ NOT NULL,
                token_changed_at TIMESTAMPTZ NOT NULL,
                last_contact_at  TIMESTAMPTZ,
                clock_skew_s     DOUBLE PRECISION
            )
            """,
            """
            CREATE TABLE stream_heads (
                site_id       TEXT NOT NULL,
                stream        TEXT NOT NULL,
                acked_seq     BIGINT NOT NULL DEFAULT 0,
                site_head     BIGINT NOT NULL DEFAULT 0,
                updated_at    TIMESTAMPTZ,
                chain_hash    TEXT,
                chain_state   TEXT NOT NULL DEFAULT 'ok'
                              CHECK (chain_state IN ('ok', 'broken')),
                chain_problem TEXT,
                PRIMARY KEY (site_id, stream)
            )
            """,
            """
            CREATE TABLE records (
                site_id      TEXT NOT NULL,
                stream       TEXT NOT NULL,
                seq          BIGINT NOT NULL,
                id           TEXT NOT NULL,
                type         TEXT NOT NULL,
                occurred_at  TIMESTAMPTZ NOT NULL,
                monotonic_ns BIGINT NOT NULL,
                boot_id      TEXT NOT NULL,
                payload      JSONB NOT NULL,
                day          TEXT NOT NULL,
                person_id    TEXT,
                chain_hash   TEXT,
                received_at  TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (site_id, stream, seq)
            )
            """,
            """
            CREATE INDEX records_attendance_time
                ON records (occurred_at, site_id, seq)
                WHERE stream = 'attendance'
            """,
            """
            CREATE INDEX records_attendance_person
                ON records (person_id, day)
                WHERE stream = 'attendance'
            """,
            """
            CREATE TABLE quarantine (
                site_id     TEXT NOT NULL,
                stream      TEXT NOT NULL,
                seq         BIGINT NOT NULL,
                reason      TEXT NOT NULL,
                raw         TEXT NOT NULL,
                received_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (site_id, stream, seq)
            )
            """,
            """
            CREATE TABLE idempotency_keys (
                site_id    TEXT NOT NULL,
                stream     TEXT NOT NULL,
                key        TEXT NOT NULL,
                digest     TEXT NOT NULL,
                first_seq  BIGINT NOT NULL,
                last_seq   BIGINT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (site_id, stream, key)
            )
            """,
        ),
    ),
)
