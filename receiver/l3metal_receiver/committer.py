# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Group commit: every write runs in one writer thread, and all writes that arrive while a commit is
on its way to disk share the next commit (one fsync for many webhooks).

A caller awaits ``run(operation)``; it returns only after the transaction holding the operation is
committed (``PRAGMA synchronous=FULL``: on disk), so an HTTP 200 is never answered for a write
that a crash could still lose.  An operation that raises is rolled back alone (a savepoint inside
``JobStore``); the others in its batch still commit.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import typing as t

from .store import JobStore

T = t.TypeVar('T')
LOG = logging.getLogger('l3metal_receiver.committer')

_Item = tuple[t.Callable[[JobStore], t.Any], 'asyncio.Future[t.Any]']
_STOP = object()


class CommitterStopped(RuntimeError):
    """The writer thread is not running (the service is shutting down)."""


class GroupCommitter:
    def __init__(self, path: str, max_batch: int = 1000) -> None:
        self.path = path
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[t.Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.commits = 0
        self.operations = 0

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

    async def run(self, operation: t.Callable[[JobStore], T]) -> T:
        if self._thread is None or self._loop is None:
            raise CommitterStopped('the receiver is shutting down')
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put((operation, future))
        return await future

    # ----------------------------------------------------------------------- writer thread

    def _main(self) -> None:
        try:
            store = JobStore(self.path)
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

    def _commit(self, store: JobStore, batch: list[_Item]) -> None:
        outcomes: list[tuple[asyncio.Future[t.Any], t.Any, BaseException | None]] = []
        try:
            store.conn.execute('BEGIN IMMEDIATE')
            for operation, future in batch:
                try:
                    outcomes.append((future, operation(store), None))
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    outcomes.append((future, None, exc))
            store.conn.execute('COMMIT')
            self.commits += 1
            self.operations += len(batch)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            LOG.exception('commit of %d operations failed', len(batch))
            try:
                store.conn.execute('ROLLBACK')
            except Exception:  # pylint: disable=broad-exception-caught
                pass
            outcomes = [(future, None, exc) for _operation, future in batch]
        if self._loop is not None:
            self._loop.call_soon_threadsafe(_resolve, outcomes)


def _resolve(outcomes: list[tuple[asyncio.Future[t.Any], t.Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.done():  # the request was cancelled (client went away); the write still happened
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
