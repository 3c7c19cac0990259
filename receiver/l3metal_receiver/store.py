# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Durable job state: jobs, their events and the delivery ids already accepted, in SQLite (WAL, the
embedded default) or PostgreSQL (``postgresql://`` URLs: several receivers on one database).

No HTTP here.  ``JobStore`` (SQLite) and ``PostgresStore`` share every query (``BaseStore``) and wrap
one connection each; ``open_store(database)`` picks the backend. the write methods run inside a transaction the
caller opens (``GroupCommitter`` batches many of them into one commit, each operation in a savepoint
of its own, so one that raises leaves nothing behind).  Each write method checks everything first and
raises the domain errors below before its first write.  The rules of which status may follow which
live in ``l3metal_contract.jobs`` (shared with the modules); the outcome of a job (``succeeded`` or
``failed``) is recorded once.

What must hold with several writers (receivers sharing one PostgreSQL database) is enforced by the
database, not by a process: one active job per serial (a partial unique index), one outcome per job
(a partial unique index on the outcome events), delivery ids unique (a unique column), and every
write to an existing job starts with ``SELECT ... FOR UPDATE`` of its row, so the writes of one job are
serialized and its events' ``seq`` grow in commit order (a long poll's ``after`` never skips one).

Migrations (``MIGRATIONS``): numbered steps per backend, the version in table ``schema_version``
(a database written by a receiver before it, SQLite ``PRAGMA user_version`` 1, is upgraded in place).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sqlite3
import typing as t

from l3metal_contract.jobs import ACTIVE_STATUSES, COMPLETE, FAILED, OUTCOME_STATUSES, PROVISIONING, QUEUED, SUCCEEDED, TransitionError, check_transition

SCHEMA_VERSION = 3

# version 1: the schema of the receivers before schema_version existed (SQLite user_version 1)
_SQLITE_V1 = '''
CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    server_serial TEXT NOT NULL,
    status        TEXT NOT NULL,
    recipe        TEXT NOT NULL,
    recipe_sha256 TEXT NOT NULL,
    token         TEXT NOT NULL,
    media_key     TEXT NOT NULL,
    public_url    TEXT NOT NULL,
    failed_step   TEXT,
    reason        TEXT,
    log_tail      TEXT,
    created_at    TEXT NOT NULL,
    last_update   TEXT NOT NULL
);
-- one active job per serial, enforced by the database itself
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_active ON jobs(server_serial) WHERE status != 'complete';
CREATE INDEX IF NOT EXISTS jobs_by_serial ON jobs(server_serial);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      TEXT NOT NULL REFERENCES jobs(job_id),
    at          TEXT NOT NULL,
    type        TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT,
    step        TEXT,
    state       TEXT,
    delivery_id TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job_id, seq);
'''
# version 2: the outcome recorded once by the database (a second succeeded/failed event of a job is refused)
_OUTCOME_INDEX = '''
CREATE UNIQUE INDEX IF NOT EXISTS events_one_outcome ON events(job_id) WHERE type = 'status' AND status IN ('succeeded', 'failed');
'''
# version 3: task media uploaded over the API (PUT /api/v1/jobs/{id}/media/{name}), in the database so that every receiver serves them
_SQLITE_MEDIA = '''
CREATE TABLE IF NOT EXISTS job_media (
    job_id     TEXT NOT NULL REFERENCES jobs(job_id),
    name       TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    content    BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
);
'''
_POSTGRES_MEDIA = _SQLITE_MEDIA.replace('BLOB', 'BYTEA').replace('size       INTEGER', 'size       BIGINT')
_SCHEMA_VERSION_TABLE = 'CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)'

_POSTGRES_V1 = '''
CREATE TABLE IF NOT EXISTS jobs (
    ord           BIGSERIAL NOT NULL UNIQUE,
    job_id        TEXT PRIMARY KEY,
    server_serial TEXT NOT NULL,
    status        TEXT NOT NULL,
    recipe        TEXT NOT NULL,
    recipe_sha256 TEXT NOT NULL,
    token         TEXT NOT NULL,
    media_key     TEXT NOT NULL,
    public_url    TEXT NOT NULL,
    failed_step   TEXT,
    reason        TEXT,
    log_tail      TEXT,
    created_at    TEXT NOT NULL,
    last_update   TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_one_active ON jobs(server_serial) WHERE status != 'complete';
CREATE INDEX IF NOT EXISTS jobs_by_serial ON jobs(server_serial);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
CREATE TABLE IF NOT EXISTS events (
    seq         BIGSERIAL PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs(job_id),
    at          TEXT NOT NULL,
    type        TEXT NOT NULL,
    source      TEXT NOT NULL,
    status      TEXT,
    step        TEXT,
    state       TEXT,
    delivery_id TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS events_by_job ON events(job_id, seq);
'''

# backend -> [(version, statements)], applied in order inside one transaction each
MIGRATIONS: dict[str, list[tuple[int, str]]] = {
    'sqlite': [(1, _SQLITE_V1), (2, _OUTCOME_INDEX), (3, _SQLITE_MEDIA)],
    'postgresql': [(1, _POSTGRES_V1), (2, _OUTCOME_INDEX), (3, _POSTGRES_MEDIA)],
}
# PostgreSQL: the channel of pg_notify(job_id) sent with every commit that adds an event (long polls on other receivers)
NOTIFY_CHANNEL = 'l3metal_job_events'

_JOB_COLUMNS = ('job_id, server_serial, status, recipe, recipe_sha256, token, media_key, public_url, failed_step, reason, log_tail, '
                'created_at, last_update')
_EVENT_COLUMNS = 'seq, job_id, at, type, source, status, step, state'

# webhook status -> job status
_NODE_STATUS = {'success': SUCCEEDED, 'failed': FAILED}


def utc_now() -> str:
    """RFC 3339 UTC timestamp with milliseconds, e.g. 2025-11-03T20:30:00.123Z."""
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


@dataclasses.dataclass(frozen=True)
class Job:
    job_id: str
    server_serial: str
    status: str
    recipe_json: str
    recipe_sha256: str
    token: str
    media_key: str
    public_url: str
    failed_step: str | None
    reason: str | None
    log_tail: str | None
    created_at: str
    last_update: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def recipe(self) -> dict[str, t.Any]:
        return t.cast(dict[str, t.Any], json.loads(self.recipe_json))


@dataclasses.dataclass(frozen=True)
class Event:
    seq: int
    job_id: str
    at: str
    type: str
    source: str
    status: str | None
    step: str | None
    state: str | None

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {'seq': self.seq, 'at': self.at, 'type': self.type, 'source': self.source}
        if self.type == 'status':
            out['status'] = self.status
        else:
            out['step'] = self.step
            out['state'] = self.state
        return out


class WebhookOutcome(t.NamedTuple):
    job_id: str
    server_serial: str
    previous_status: str
    status: str
    failed_step: str | None


@dataclasses.dataclass(frozen=True)
class NewJob:
    job_id: str
    server_serial: str
    recipe_json: str
    recipe_sha256: str
    token: str
    media_key: str
    public_url: str


# ---------------------------------------------------------------------------------------------------
# domain errors (the HTTP layer maps each to a status code)

class StoreError(Exception):
    """Base of the errors a store operation raises for a request it refuses."""


class JobNotFound(StoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__('no job %s' % job_id)


class NoActiveJob(StoreError):
    def __init__(self, serial: str) -> None:
        super().__init__('no active job for serial %s' % serial)


class ActiveJobExists(StoreError):
    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__('serial %s already has an active job %s (%s); mark it complete first' % (job.server_serial, job.job_id, job.status))


class DuplicateDelivery(StoreError):
    """This delivery id is stored for this job: a retry of an event whose first answer was lost (the sender counts it delivered)."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__('delivery %s was already accepted' % delivery_id)


class DeliveryIdTaken(StoreError):
    """The delivery id belongs to an event of another job: not this sender's event, so not a confirmation."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__('delivery id %s is already used by an event of another job; send a new one' % delivery_id)


class OutcomeRecorded(StoreError):
    """The job's outcome (succeeded or failed) is recorded already; it is never replaced."""

    def __init__(self, job_id: str, status: str) -> None:
        self.status = status
        super().__init__('job %s is %s: its outcome is recorded once and not replaced' % (job_id, status))


class JobMismatch(StoreError):
    """The webhook names, or was signed for, a job that is not the serial's active job (any more)."""


class TokenNotReissuable(StoreError):
    def __init__(self, job: Job) -> None:
        super().__init__('job %s is %s: its node may already hold the token, so it cannot be replaced (only a queued job\'s can)'
                         % (job.job_id, job.status))


class MediumConflict(StoreError):
    """A task medium of that name is stored for the job with other content (a medium is written once), or the job is complete."""

    def __init__(self, message: str, code: str) -> None:
        self.code = code
        super().__init__(message)


class StoredMedium(t.NamedTuple):
    sha256: str
    size: int
    created_at: str


class SchemaTooNew(RuntimeError):
    """The database was written by a newer receiver."""


class StatusRejected(StoreError):
    """A valid status change request that the job's status does not allow (wraps TransitionError)."""

    def __init__(self, job_id: str, error: TransitionError) -> None:
        self.status = error.current
        super().__init__('job %s: %s' % (job_id, error))


# ---------------------------------------------------------------------------------------------------


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, fsync on every commit."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute('PRAGMA journal_mode=WAL')
    # FULL: in WAL mode NORMAL may lose the last commits on power loss; a 200 must mean "on disk".
    conn.execute('PRAGMA synchronous=FULL')
    conn.execute('PRAGMA foreign_keys=ON')
    conn.execute('PRAGMA busy_timeout=30000')
    return conn


def is_postgres_url(database: str) -> bool:
    return database.startswith(('postgresql://', 'postgres://'))


def redact_url(database: str) -> str:
    """A database URL without its password, for logs and error messages."""
    if not is_postgres_url(database):
        return database
    scheme, _sep, rest = database.partition('://')
    credentials, at, location = rest.rpartition('@')
    if not at or ':' not in credentials:
        return database
    return '%s://%s:***@%s' % (scheme, credentials.split(':', 1)[0], location)


def open_store(database: str) -> BaseStore:
    """The store for ``database``: a ``postgresql://`` URL (``PostgresStore``) or the path of an SQLite file (``JobStore``)."""
    if is_postgres_url(database):
        return PostgresStore(database)
    return JobStore(database)


class BaseStore:
    """All SQL of the receiver (``?`` placeholders; ``PostgresStore`` rewrites them).  One instance per connection; not thread-safe by itself."""

    backend = ''
    # the column that orders jobs by creation
    _order = 'rowid'
    # appended to the read of a job row that a write follows: serializes the writes of one job (PostgreSQL)
    _lock = ''
    path: str

    # -------------------------------------------------------------------------------- connection and transactions

    def execute(self, sql: str, args: t.Sequence[t.Any] = ()) -> t.Any:
        raise NotImplementedError

    def begin(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        self.execute('COMMIT')

    def rollback(self) -> None:
        self.execute('ROLLBACK')

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def usable(self) -> bool:
        """False when the connection is lost (the writer opens a new one before its next batch)."""
        return True

    def reconnect(self) -> None:
        """Open a new connection in place of a lost one."""

    def notify(self, job_id: str) -> None:
        """Tell the receivers sharing the database that ``job_id`` has a new event (on commit)."""

    def migrate(self) -> None:
        raise NotImplementedError

    def schema_version(self) -> int:
        raise NotImplementedError

    def _apply_migrations(self, version: int) -> None:
        """Inside the caller's transaction: every step after ``version``, then the new version."""
        if version > SCHEMA_VERSION:
            raise SchemaTooNew('%s was written by a newer receiver (schema %d, this one knows %d)' % (redact_url(self.path), version, SCHEMA_VERSION))
        for number, statements in MIGRATIONS[self.backend]:
            if number > version:
                for statement in statements.split(';'):
                    if statement.strip():
                        self.execute(statement)
        self.execute(_SCHEMA_VERSION_TABLE)
        self.execute('DELETE FROM schema_version')
        self.execute('INSERT INTO schema_version (version) VALUES (?)', (SCHEMA_VERSION,))

    # -------------------------------------------------------------------------------- reads

    def _job(self, where: str, args: tuple[t.Any, ...], lock: bool = False) -> Job | None:
        row = self.execute('SELECT %s FROM jobs WHERE %s%s' % (_JOB_COLUMNS, where, self._lock if lock else ''), args).fetchone()
        return Job(*row) if row else None

    def get_job(self, job_id: str, lock: bool = False) -> Job | None:
        return self._job('job_id = ?', (job_id,), lock)

    def active_job(self, serial: str) -> Job | None:
        return self._job("server_serial = ? AND status != 'complete'", (serial,))

    def active_job_ids(self) -> set[str]:
        return {row[0] for row in self.execute("SELECT job_id FROM jobs WHERE status != 'complete'").fetchall()}

    def list_jobs(self, statuses: t.Sequence[str] = (), serial: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        clauses, args = [], []  # type: list[str], list[t.Any]
        if statuses:
            clauses.append('status IN (%s)' % ','.join('?' * len(statuses)))
            args.extend(statuses)
        if serial is not None:
            clauses.append('server_serial = ?')
            args.append(serial)
        where = ' WHERE ' + ' AND '.join(clauses) if clauses else ''
        rows = self.execute('SELECT %s FROM jobs%s ORDER BY %s DESC LIMIT ? OFFSET ?' % (_JOB_COLUMNS, where, self._order),
                            args + [limit, offset]).fetchall()
        return [Job(*row) for row in rows]

    def events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        rows = self.execute('SELECT %s FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?' % _EVENT_COLUMNS,
                            (job_id, after, limit)).fetchall()
        return [Event(*row) for row in rows]

    def last_progress(self, job_id: str) -> Event | None:
        row = self.execute("SELECT %s FROM events WHERE job_id = ? AND type = 'progress' ORDER BY seq DESC LIMIT 1" % _EVENT_COLUMNS,
                           (job_id,)).fetchone()
        return Event(*row) if row else None

    def medium(self, job_id: str, name: str) -> StoredMedium | None:
        """What is stored of a task medium (not its content)."""
        row = self.execute('SELECT sha256, size, created_at FROM job_media WHERE job_id = ? AND name = ?', (job_id, name)).fetchone()
        return StoredMedium(row[0], int(row[1]), row[2]) if row else None

    def media(self, job_id: str) -> list[tuple[str, StoredMedium]]:
        """The task media uploaded for a job, by name (not their content; not the files placed in its media directory)."""
        rows = self.execute('SELECT name, sha256, size, created_at FROM job_media WHERE job_id = ? ORDER BY name', (job_id,)).fetchall()
        return [(row[0], StoredMedium(row[1], int(row[2]), row[3])) for row in rows]

    def medium_content(self, job_id: str, name: str) -> bytes | None:
        row = self.execute('SELECT content FROM job_media WHERE job_id = ? AND name = ?', (job_id, name)).fetchone()
        return bytes(row[0]) if row else None

    def counts(self) -> dict[str, int]:
        return {status: int(count) for status, count in self.execute('SELECT status, COUNT(*) FROM jobs GROUP BY status').fetchall()}

    # -------------------------------------------------------------------------------- writes (inside a transaction)

    def _event(self, job_id: str, at: str, type_: str, source: str, status: str | None = None, step: str | None = None,
               state: str | None = None, delivery_id: str | None = None) -> None:
        self.execute('INSERT INTO events (job_id, at, type, source, status, step, state, delivery_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                     (job_id, at, type_, source, status, step, state, delivery_id))

    def _insert_refused(self, exc: Exception) -> bool:
        """Whether ``exc`` is a unique constraint refusing an insert (another receiver's commit came first)."""
        raise NotImplementedError

    def create_job(self, new: NewJob, at: str) -> Job:
        existing = self.active_job(new.server_serial)
        if existing is not None:
            raise ActiveJobExists(existing)
        try:
            with Savepoint(self, 'job'):
                self.execute('INSERT INTO jobs (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)' % _JOB_COLUMNS,
                             (new.job_id, new.server_serial, QUEUED, new.recipe_json, new.recipe_sha256, new.token, new.media_key,
                              new.public_url, at, at))
        except Exception as exc:
            # jobs_one_active: another receiver committed an active job for this serial after the check above
            existing = self.active_job(new.server_serial) if self._insert_refused(exc) else None
            if existing is not None:
                raise ActiveJobExists(existing) from None
            raise
        self._event(new.job_id, at, 'status', 'user', status=QUEUED)
        self.notify(new.job_id)
        job = self.get_job(new.job_id)
        if job is None:  # pragma: no cover - just inserted
            raise JobNotFound(new.job_id)
        return job

    def transition(self, job_id: str, wanted: str, at: str, failed_step: str | None = None, reason: str | None = None) -> tuple[Job, bool]:
        """A user's status change; returns the job and whether anything changed (False: already there, nothing written)."""
        job = self.get_job(job_id, lock=True)
        if job is None:
            raise JobNotFound(job_id)
        try:
            changed = check_transition(job.status, wanted, 'user')
        except TransitionError as exc:
            raise StatusRejected(job_id, exc) from None
        if changed:
            if wanted == FAILED:
                self.execute('UPDATE jobs SET status = ?, failed_step = ?, reason = ?, last_update = ? WHERE job_id = ?',
                             (wanted, failed_step, reason, at, job_id))
            else:
                self.execute('UPDATE jobs SET status = ?, last_update = ? WHERE job_id = ?', (wanted, at, job_id))
            self._event(job_id, at, 'status', 'user', status=wanted)
            if wanted == COMPLETE:  # the job's uploaded media go with it, as its media directory does
                self.execute('DELETE FROM job_media WHERE job_id = ?', (job_id,))
            self.notify(job_id)
        updated = self.get_job(job_id)
        return (updated or job), changed

    def signing_key(self, serial: str) -> tuple[str, str] | None:
        """(job id, token) of the serial's active job: what a webhook is verified with (no recipe read)."""
        row = self.execute("SELECT job_id, token FROM jobs WHERE server_serial = ? AND status != 'complete'", (serial,)).fetchone()
        return (row[0], row[1]) if row else None

    def apply_webhook(self, serial: str, signed_for: str, signed_with: str, delivery_id: str, body: t.Mapping[str, t.Any],
                      at: str, source: str = 'node') -> WebhookOutcome:
        """Record a verified node webhook.  ``signed_for``/``signed_with``: the job and token that verified the signature
        (for a site-key report: the active job and its token when the report was checked).  ``source`` is the events'
        source: ``node`` (the job's token) or ``site`` (the site node key).

        Every check comes before the first write, in this order: the serial's active job and its token
        (``NoActiveJob``, ``JobMismatch``), the delivery id (``DuplicateDelivery`` when this job has it:
        the answer a retry of a stored event gets, even after its outcome; ``DeliveryIdTaken``), the
        outcome (``OutcomeRecorded``: recorded once), the transition (``StatusRejected``).  A report for a
        job still ``queued`` records ``provisioning`` first (the node booted before the playbook marked it).
        The job's row is locked first (PostgreSQL), so the same delivery sent to two receivers at once is
        stored once and the other one answers it as a duplicate.
        """
        row = self.execute("SELECT job_id, status, token FROM jobs WHERE server_serial = ? AND status != 'complete'" + self._lock,
                           (serial,)).fetchone()
        if row is None:
            raise NoActiveJob(serial)
        job_id, current, token = row
        if job_id != signed_for or token != signed_with:
            raise JobMismatch('the active job of serial %s or its token changed while the webhook was checked' % serial)
        if body.get('job_id') not in (None, job_id):
            raise JobMismatch('job_id %s is not the active job of serial %s' % (body.get('job_id'), serial))
        seen = self.execute('SELECT job_id FROM events WHERE delivery_id = ?', (delivery_id,)).fetchone()
        if seen is not None:
            raise DuplicateDelivery(delivery_id) if seen[0] == job_id else DeliveryIdTaken(delivery_id)
        status = body['status']
        wanted = PROVISIONING if status == 'progress' else _NODE_STATUS[status]
        if status != 'progress' and current in OUTCOME_STATUSES:
            raise OutcomeRecorded(job_id, current)
        try:
            changed = check_transition(current, wanted, 'node')
        except TransitionError as exc:
            raise StatusRejected(job_id, exc) from None
        if current == QUEUED:  # the first report of a node the playbook has not marked provisioning yet
            self._event(job_id, at, 'status', source, status=PROVISIONING)
        if status == 'progress':
            self._event(job_id, at, 'progress', source, step=body['step'], state=body['state'], delivery_id=delivery_id)
        else:
            self._event(job_id, at, 'status', source, status=wanted, delivery_id=delivery_id)
        if wanted == FAILED:
            self.execute('UPDATE jobs SET status = ?, failed_step = ?, reason = ?, log_tail = ?, last_update = ? WHERE job_id = ?',
                         (wanted, body['failed_step'], body.get('reason'), body.get('log_tail'), at, job_id))
        elif changed:
            self.execute('UPDATE jobs SET status = ?, last_update = ? WHERE job_id = ?', (wanted, at, job_id))
        else:
            self.execute('UPDATE jobs SET last_update = ? WHERE job_id = ?', (at, job_id))
        self.notify(job_id)
        return WebhookOutcome(job_id, serial, current, wanted, body.get('failed_step'))

    def put_medium(self, job_id: str, name: str, sha256: str, content: bytes, at: str) -> tuple[StoredMedium, bool]:
        """Store a task medium of an active job; returns it and whether it was written (False: the same content was there).
        ``MediumConflict`` when another content has that name or the job is complete; nothing is replaced."""
        job = self.get_job(job_id, lock=True)
        if job is None:
            raise JobNotFound(job_id)
        if job.status == COMPLETE:
            raise MediumConflict('job %s is complete: it takes no more media' % job_id, 'job_complete')
        stored = self.medium(job_id, name)
        if stored is not None:
            if stored.sha256 == sha256:
                return stored, False
            raise MediumConflict('job %s already has a medium %s with other content (sha256 %s); a medium is written once: '
                                 'use another name, or a new job' % (job_id, name, stored.sha256), 'medium_exists')
        self.execute('INSERT INTO job_media (job_id, name, sha256, size, content, created_at) VALUES (?, ?, ?, ?, ?, ?)',
                     (job_id, name, sha256, len(content), content, at))
        return StoredMedium(sha256, len(content), at), True

    def reissue_token(self, job_id: str, token: str, at: str) -> Job:
        job = self.get_job(job_id, lock=True)
        if job is None:
            raise JobNotFound(job_id)
        if job.status != QUEUED:
            raise TokenNotReissuable(job)
        self.execute('UPDATE jobs SET token = ?, last_update = ? WHERE job_id = ?', (token, at, job_id))
        updated = self.get_job(job_id)
        return updated or job


class JobStore(BaseStore):
    """The SQLite backend (one file, WAL): the embedded default."""

    backend = 'sqlite'

    def __init__(self, path: str) -> None:
        self.path = path
        new = not os.path.exists(path)
        if new:
            # the database holds per-job secrets: create it private
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.conn = connect(path)

    def execute(self, sql: str, args: t.Sequence[t.Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)

    def begin(self) -> None:
        self.conn.execute('BEGIN IMMEDIATE')

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        self.conn.close()

    def _insert_refused(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def schema_version(self) -> int:
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone():
            row = self.conn.execute('SELECT MAX(version) FROM schema_version').fetchone()
            if row and row[0] is not None:
                return int(row[0])
        # a database of a receiver before schema_version: its version is PRAGMA user_version (1), 0 when new
        return int(self.conn.execute('PRAGMA user_version').fetchone()[0])

    def migrate(self) -> None:
        self.conn.execute('BEGIN IMMEDIATE')
        try:
            self._apply_migrations(self.schema_version())
            # user_version too: a receiver from before schema_version refuses this file instead of misreading it
            self.conn.execute('PRAGMA user_version=%d' % SCHEMA_VERSION)
            self.conn.execute('COMMIT')
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute('ROLLBACK')
            raise


class PostgresStore(BaseStore):
    """The PostgreSQL backend (psycopg 3, synchronous: the writer thread and the readers each hold one connection).

    Transactions are explicit (``BEGIN``/``COMMIT`` on an autocommit connection), as with SQLite; a commit returns
    when the server has the transaction in its WAL on disk (``synchronous_commit`` as the server sets it: keep ``on``)."""

    backend = 'postgresql'
    _order = 'ord'
    _lock = ' FOR UPDATE'

    def __init__(self, url: str) -> None:
        self.path = url
        self.conn = self._connect()

    def _connect(self) -> t.Any:
        import psycopg  # pylint: disable=import-outside-toplevel  # only a receiver on PostgreSQL needs it
        return psycopg.connect(self.path, autocommit=True, connect_timeout=10, application_name='l3metal-receiver')

    def execute(self, sql: str, args: t.Sequence[t.Any] = ()) -> t.Any:
        if not self.usable() and not self.in_transaction:
            self.reconnect()
        return self.conn.execute(sql.replace('?', '%s'), tuple(args))

    def begin(self) -> None:
        self.execute('BEGIN')

    @property
    def in_transaction(self) -> bool:
        import psycopg  # pylint: disable=import-outside-toplevel
        return bool(not self.conn.closed and self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)

    def usable(self) -> bool:
        return not self.conn.closed and not self.conn.broken

    def reconnect(self) -> None:
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-exception-caught  # a lost connection may fail to close
            pass
        self.conn = self._connect()

    def close(self) -> None:
        self.conn.close()

    def notify(self, job_id: str) -> None:
        self.conn.execute('SELECT pg_notify(%s, %s)', (NOTIFY_CHANNEL, job_id))

    def _insert_refused(self, exc: Exception) -> bool:
        import psycopg  # pylint: disable=import-outside-toplevel
        return isinstance(exc, psycopg.errors.UniqueViolation)

    def schema_version(self) -> int:
        if self.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        row = self.execute('SELECT MAX(version) FROM schema_version').fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def migrate(self) -> None:
        self.execute('BEGIN')
        try:
            # receivers starting at once: one migrates, the others wait here and then find nothing to do
            self.execute("SELECT pg_advisory_xact_lock(hashtext('l3metal_receiver.migrate'))")
            self._apply_migrations(self.schema_version())
            self.execute('COMMIT')
        except BaseException:
            if self.usable() and self.in_transaction:
                self.execute('ROLLBACK')
            raise


class Savepoint:
    """One operation inside the caller's (batched) transaction: released when it returns, rolled back alone when it
    raises, so a refused or failed request leaves no write behind whatever the exception."""

    def __init__(self, store: BaseStore, name: str = 'op') -> None:
        self.store = store
        self.name = name

    def __enter__(self) -> None:
        self.store.execute('SAVEPOINT %s' % self.name)

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            if not self.store.usable() or not self.store.in_transaction:
                return  # the whole transaction is gone (SQLITE_FULL, SQLITE_IOERR, a lost server connection): the caller sees the error
            self.store.execute('ROLLBACK TO %s' % self.name)
        self.store.execute('RELEASE %s' % self.name)
