# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Group commit: every write runs in one writer thread, and all writes that arrive while a commit is
on its way to disk share the next commit (one fsync for many webhooks).

A caller awaits ``run(operation)``; it returns only after the transaction holding the operation is
committed (``PRAGMA synchronous=FULL``: on disk), so an HTTP 200 is never answered for a write
that a crash could still lose.  Each operation runs in a savepoint of its own: one that raises,
for whatever reason, is rolled back alone and the others in its batch still commit.

When the database cannot be written (the disk is full, an I/O error, a file system remounted
read-only, a lock held too long), every operation of the batch fails with ``StorageUnavailable``
(answered 503 with ``Retry-After``: nothing of it was stored, the sender retries) and the error is
logged at most once per second; the next batch tries again, so the receiver
recovers by itself once space is freed.

On PostgreSQL (``postgresql://``) the same holds with the server's words for it: a lost connection or
a server that refuses writes fails the batch with ``StorageUnavailable`` and the next batch connects
again.  A batch that PostgreSQL aborts to break a deadlock with another receiver's batch (row locks
taken in another order) or a serialization failure is rolled back and run again as a whole.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import queue
import sqlite3
import threading
import typing as t

from .logs import RateLimitedLog
from .store import BaseStore, Savepoint, open_store, redact_url

T = t.TypeVar('T')
LOG = logging.getLogger('l3metal_receiver.committer')

_Item = tuple[t.Callable[[BaseStore], t.Any], 'asyncio.Future[t.Any]']
# how often a batch that PostgreSQL aborted (deadlock, serialization failure) is run again
BATCH_RETRIES = 5
_STOP = object()


class CommitterStopped(RuntimeError):
    """The writer thread is not running (the service is shutting down)."""


class StorageUnavailable(Exception):
    """The database (or a directory the receiver writes) cannot be written right now; nothing was stored.

    ``reason`` is a short text such as "the disk is full"; the HTTP layer answers 503 with Retry-After.
    """

    def __init__(self, reason: str, where: str = '') -> None:
        self.reason = reason
        self.where = where
        super().__init__('%s%s: nothing was stored, retry later' % (reason, ' (%s)' % where if where else ''))


# SQLite result codes (the primary code: extended codes keep it in the low byte) that mean "cannot write now",
# with what an operator should read.  Python < 3.11 has no sqlite_errorcode: the message names the same error.
_STORAGE_ERRORS = {
    13: 'the disk is full',                         # SQLITE_FULL "database or disk is full"
    10: 'the disk failed an I/O operation',         # SQLITE_IOERR "disk I/O error"
    8: 'the database is read-only',                 # SQLITE_READONLY "attempt to write a readonly database"
    14: 'the database file cannot be opened',       # SQLITE_CANTOPEN "unable to open database file"
    5: 'the database is locked by another process',  # SQLITE_BUSY "database is locked"
}
_STORAGE_MESSAGES = {'database or disk is full': 13, 'disk i/o error': 10, 'attempt to write a readonly database': 8,
                     'unable to open database file': 14, 'database is locked': 5}
# errno values of the same kind, for the directories and files the receiver writes itself (per-job media)
STORAGE_ERRNOS = {errno.ENOSPC: 'the disk is full', errno.EDQUOT: 'the disk quota is exhausted', errno.EROFS: 'the file system is read-only',
                  errno.EIO: 'the disk failed an I/O operation', errno.EMFILE: 'the process has too many open files',
                  errno.ENFILE: 'the system has too many open files'}


# PostgreSQL SQLSTATE classes and codes that mean "cannot write now" (psycopg is only imported by a receiver on PostgreSQL)
_POSTGRES_STATES = {'08': 'the database server cannot be reached', '53': 'the database server is out of resources (disk, memory, connections)',
                    '57': 'the database server is shutting down or refuses connections', '25006': 'the database server is read-only (a standby)'}


def retry_batch(exc: BaseException) -> bool:
    """Whether PostgreSQL aborted the transaction to break a deadlock or a serialization conflict: run the batch again."""
    return type(exc).__module__.startswith('psycopg') and getattr(exc, 'sqlstate', None) in ('40001', '40P01')


def storage_reason(exc: BaseException) -> str | None:
    """What an exception says about storage ("the disk is full"), or None when it is not a storage condition."""
    if isinstance(exc, StorageUnavailable):
        return exc.reason
    if type(exc).__module__.startswith('psycopg'):
        state = getattr(exc, 'sqlstate', None) or ''
        reason = _POSTGRES_STATES.get(state) or _POSTGRES_STATES.get(state[:2])
        if reason is None and state == '' and type(exc).__name__ == 'OperationalError':
            reason = _POSTGRES_STATES['08']  # no SQLSTATE: the connection failed or was lost
        return reason
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, 'sqlite_errorcode', None)
        if code is None:
            code = _STORAGE_MESSAGES.get(str(exc).strip().lower())
        return _STORAGE_ERRORS.get(code & 0xff) if isinstance(code, int) else None
    if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)):
        return STORAGE_ERRNOS.get(exc.errno or 0)
    return None


class GroupCommitter:
    def __init__(self, path: str, max_batch: int = 1000) -> None:
        self.path = path  # an SQLite file or a postgresql:// URL (store.open_store)
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.commits = 0
        self.operations = 0
        self.failed_commits = 0
        self._storage_log = RateLimitedLog(LOG)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._main, name='l3metal-receiver-writer', daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Commit what is queued, then close the connection."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._thread = None

    async def run(self, operation: t.Callable[[BaseStore], T]) -> T:
        if self._thread is None or self._loop is None:
            raise CommitterStopped('the receiver is shutting down')
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((operation, future))
        return await future

    # ----------------------------------------------------------------------- writer thread

    def _main(self) -> None:
        try:
            store = open_store(self.path)
            store.migrate()
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                first = self._queue.get()
                stopping = first is _STOP
                batch: list[_Item] = [] if stopping else [first]
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        continue
                    batch.append(item)
                if batch:
                    self._commit(store, batch)
                if stopping:
                    return
        finally:
            store.close()

    def _commit(self, store: BaseStore, batch: list[_Item]) -> None:
        for attempt in range(BATCH_RETRIES + 1):
            try:
                outcomes = self._attempt(store, batch)
                break
            except Exception as exc:  # pylint: disable=broad-exception-caught
                if retry_batch(exc) and attempt < BATCH_RETRIES:
                    LOG.info('batch of %d operation(s) aborted by the database (%s); running it again', len(batch), exc)
                    self._rollback(store)
                    continue
                outcomes = self._failed(store, batch, exc)
                break
        if self._loop is not None:
            self._loop.call_soon_threadsafe(_resolve, outcomes)

    def _attempt(self, store: BaseStore, batch: list[_Item]) -> list[tuple[asyncio.Future[t.Any], t.Any, BaseException | None]]:
        outcomes: list[tuple[asyncio.Future[t.Any], t.Any, BaseException | None]] = []
        if not store.usable():
            store.reconnect()  # the server connection was lost during an earlier batch
        store.begin()
        for operation, future in batch:
            try:
                with Savepoint(store):
                    result = operation(store)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                if storage_reason(exc) is not None or retry_batch(exc) or not store.usable() or not store.in_transaction:
                    raise  # the transaction cannot go on: the whole batch fails (or runs again)
                outcomes.append((future, None, exc))
            else:
                outcomes.append((future, result, None))
        store.commit()
        self.commits += 1
        self.operations += len(batch)
        return outcomes

    @staticmethod
    def _rollback(store: BaseStore) -> None:
        try:
            if store.usable() and store.in_transaction:
                store.rollback()
        except Exception:  # pylint: disable=broad-exception-caught  # the connection is gone: reconnect() before the next batch
            pass

    def _failed(self, store: BaseStore, batch: list[_Item], exc: Exception) -> list[tuple[asyncio.Future[t.Any], t.Any, BaseException | None]]:
        self.failed_commits += 1
        self._rollback(store)
        reason = storage_reason(exc)
        if reason is not None:
            self._storage_log.log(logging.ERROR, 'cannot write %s: %s (%s); %d request(s) answered 503, nothing of them stored',
                                  redact_url(self.path), reason, exc, len(batch))
            error: BaseException = StorageUnavailable(reason, 'database')
        else:
            LOG.exception('commit of %d operations failed', len(batch))
            error = exc
        return [(future, None, error) for _operation, future in batch]


def _resolve(outcomes: list[tuple[asyncio.Future[t.Any], t.Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the request was cancelled (client went away); the write still happened
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
