# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Durable job state in SQLite (WAL): jobs, their events and the delivery ids already accepted.

No HTTP here.  ``JobStore`` wraps one connection; the write methods run inside a transaction the
caller opens (``GroupCommitter`` batches many of them into one commit, each operation in a savepoint
of its own, so one that raises leaves nothing behind).  Each write method checks everything first and
raises the domain errors below before its first write.  The rules of which status may follow which
live in ``l3metal_contract.jobs`` (shared with the modules); the outcome of a job (``succeeded`` or
``failed``) is recorded once.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sqlite3
import typing as t

from l3metal_contract.jobs import ACTIVE_STATUSES, FAILED, OUTCOME_STATUSES, PROVISIONING, QUEUED, SUCCEEDED, TransitionError, check_transition

SCHEMA_VERSION = 1

_SCHEMA = '''
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


class JobStore:
    """All SQL of the receiver.  One instance per connection; not thread-safe by itself."""

    def __init__(self, path: str) -> None:
        self.path = path
        new = not os.path.exists(path)
        if new:
            # the database holds per-job secrets: create it private
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.conn = connect(path)

    def migrate(self) -> None:
        version = self.conn.execute('PRAGMA user_version').fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError('%s was written by a newer receiver (schema %d, this one knows %d)' % (self.path, version, SCHEMA_VERSION))
        try:
            self.conn.executescript('BEGIN IMMEDIATE;' + _SCHEMA + 'PRAGMA user_version=%d; COMMIT;' % SCHEMA_VERSION)
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute('ROLLBACK')
            raise

    def close(self) -> None:
        self.conn.close()

    # -------------------------------------------------------------------------------- reads

    def _job(self, where: str, args: tuple[t.Any, ...]) -> Job | None:
        row = self.conn.execute('SELECT %s FROM jobs WHERE %s' % (_JOB_COLUMNS, where), args).fetchone()
        return Job(*row) if row else None

    def get_job(self, job_id: str) -> Job | None:
        return self._job('job_id = ?', (job_id,))

    def active_job(self, serial: str) -> Job | None:
        return self._job("server_serial = ? AND status != 'complete'", (serial,))

    def active_job_ids(self) -> set[str]:
        return {row[0] for row in self.conn.execute("SELECT job_id FROM jobs WHERE status != 'complete'")}

    def list_jobs(self, statuses: t.Sequence[str] = (), serial: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        clauses, args = [], []  # type: list[str], list[t.Any]
        if statuses:
            clauses.append('status IN (%s)' % ','.join('?' * len(statuses)))
            args.extend(statuses)
        if serial is not None:
            clauses.append('server_serial = ?')
            args.append(serial)
        where = ' WHERE ' + ' AND '.join(clauses) if clauses else ''
        rows = self.conn.execute('SELECT %s FROM jobs%s ORDER BY rowid DESC LIMIT ? OFFSET ?' % (_JOB_COLUMNS, where),
                                 args + [limit, offset]).fetchall()
        return [Job(*row) for row in rows]

    def events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        rows = self.conn.execute('SELECT %s FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?' % _EVENT_COLUMNS,
                                 (job_id, after, limit)).fetchall()
        return [Event(*row) for row in rows]

    def last_progress(self, job_id: str) -> Event | None:
        row = self.conn.execute("SELECT %s FROM events WHERE job_id = ? AND type = 'progress' ORDER BY seq DESC LIMIT 1" % _EVENT_COLUMNS,
                                (job_id,)).fetchone()
        return Event(*row) if row else None

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute('SELECT status, COUNT(*) FROM jobs GROUP BY status').fetchall())

    # -------------------------------------------------------------------------------- writes (inside a transaction)

    def _event(self, job_id: str, at: str, type_: str, source: str, status: str | None = None, step: str | None = None,
               state: str | None = None, delivery_id: str | None = None) -> None:
        self.conn.execute('INSERT INTO events (job_id, at, type, source, status, step, state, delivery_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                          (job_id, at, type_, source, status, step, state, delivery_id))

    def create_job(self, new: NewJob, at: str) -> Job:
        existing = self.active_job(new.server_serial)
        if existing is not None:
            raise ActiveJobExists(existing)
        self.conn.execute('INSERT INTO jobs (%s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)' % _JOB_COLUMNS,
                          (new.job_id, new.server_serial, QUEUED, new.recipe_json, new.recipe_sha256, new.token, new.media_key,
                           new.public_url, at, at))
        self._event(new.job_id, at, 'status', 'user', status=QUEUED)
        job = self.get_job(new.job_id)
        if job is None:  # pragma: no cover - just inserted
            raise JobNotFound(new.job_id)
        return job

    def transition(self, job_id: str, wanted: str, at: str, failed_step: str | None = None, reason: str | None = None) -> tuple[Job, bool]:
        """A user's status change; returns the job and whether anything changed (False: already there, nothing written)."""
        job = self.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        try:
            changed = check_transition(job.status, wanted, 'user')
        except TransitionError as exc:
            raise StatusRejected(job_id, exc) from None
        if changed:
            if wanted == FAILED:
                self.conn.execute('UPDATE jobs SET status = ?, failed_step = ?, reason = ?, last_update = ? WHERE job_id = ?',
                                  (wanted, failed_step, reason, at, job_id))
            else:
                self.conn.execute('UPDATE jobs SET status = ?, last_update = ? WHERE job_id = ?', (wanted, at, job_id))
            self._event(job_id, at, 'status', 'user', status=wanted)
        updated = self.get_job(job_id)
        return (updated or job), changed

    def signing_key(self, serial: str) -> tuple[str, str] | None:
        """(job id, token) of the serial's active job: what a webhook is verified with (no recipe read)."""
        row = self.conn.execute("SELECT job_id, token FROM jobs WHERE server_serial = ? AND status != 'complete'", (serial,)).fetchone()
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
        """
        row = self.conn.execute("SELECT job_id, status, token FROM jobs WHERE server_serial = ? AND status != 'complete'", (serial,)).fetchone()
        if row is None:
            raise NoActiveJob(serial)
        job_id, current, token = row
        if job_id != signed_for or token != signed_with:
            raise JobMismatch('the active job of serial %s or its token changed while the webhook was checked' % serial)
        if body.get('job_id') not in (None, job_id):
            raise JobMismatch('job_id %s is not the active job of serial %s' % (body.get('job_id'), serial))
        seen = self.conn.execute('SELECT job_id FROM events WHERE delivery_id = ?', (delivery_id,)).fetchone()
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
            self.conn.execute('UPDATE jobs SET status = ?, failed_step = ?, reason = ?, log_tail = ?, last_update = ? WHERE job_id = ?',
                              (wanted, body['failed_step'], body.get('reason'), body.get('log_tail'), at, job_id))
        elif changed:
            self.conn.execute('UPDATE jobs SET status = ?, last_update = ? WHERE job_id = ?', (wanted, at, job_id))
        else:
            self.conn.execute('UPDATE jobs SET last_update = ? WHERE job_id = ?', (at, job_id))
        return WebhookOutcome(job_id, serial, current, wanted, body.get('failed_step'))

    def reissue_token(self, job_id: str, token: str, at: str) -> Job:
        job = self.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.status != QUEUED:
            raise TokenNotReissuable(job)
        self.conn.execute('UPDATE jobs SET token = ?, last_update = ? WHERE job_id = ?', (token, at, job_id))
        updated = self.get_job(job_id)
        return updated or job


class Savepoint:
    """One operation inside the caller's (batched) transaction: released when it returns, rolled back alone when it
    raises, so a refused or failed request leaves no write behind whatever the exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute('SAVEPOINT op')

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            if not self.conn.in_transaction:
                return  # SQLite rolled the whole transaction back itself (SQLITE_FULL, SQLITE_IOERR): the caller sees the error
            self.conn.execute('ROLLBACK TO op')
        self.conn.execute('RELEASE op')
