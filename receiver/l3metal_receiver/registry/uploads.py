# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Blob upload sessions (Distribution spec "Pushing blobs"): POST opens one, PATCH appends a chunk, PUT with
``digest`` closes it.

A session is a file ``DIR/.uploads/<id>`` and a running SHA-256 in memory.  The bytes are written and hashed
in a worker thread (hashlib releases the GIL), so the event loop keeps answering webhooks while a large blob
arrives; memory stays at one buffer per session whatever the blob size.  On PUT the file is fsynced, its
digest compared with the one the client claims, and only then renamed into ``blobs/`` (``Layout.commit_blob``);
a mismatch removes it.  Sessions live in this process: after a restart the start-up sweep removes their files
and a client gets ``BLOB_UPLOAD_UNKNOWN`` and starts again (the spec allows either resuming or that).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time
import typing as t
import uuid
from pathlib import Path

from .errors import RegistryError, digest_invalid, upload_unknown
from .layout import Layout, parse_digest

IDLE_SECONDS = 3600.0  # a session nobody touched for an hour is dropped


class UploadSession:
    """One upload in progress: its file, how many bytes it holds, their SHA-256 so far."""

    def __init__(self, directory: Path, repository: str) -> None:
        self.id = str(uuid.uuid4())
        self.repository = repository
        self.path = directory / self.id
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.offset = 0
        self.sha256 = hashlib.sha256()
        self.lock = asyncio.Lock()  # one request at a time per session
        self.broken = False  # a write failed: the file and the hash may disagree, the session must go
        self.touched = time.monotonic()

    def write(self, data: bytes | bytearray) -> None:
        """Append ``data`` (called in a worker thread)."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.sha256.update(data)
        self.offset += len(data)

    def digest(self, algorithm: str) -> str:
        if algorithm == 'sha256':
            return 'sha256:' + self.sha256.hexdigest()
        hasher = hashlib.new(algorithm)
        with open(self.path, 'rb') as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b''):
                hasher.update(chunk)
        return '%s:%s' % (algorithm, hasher.hexdigest())

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class Uploads:
    """The sessions of one layout."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.sessions: dict[str, UploadSession] = {}

    def start(self, repository: str) -> UploadSession:
        self._drop_idle()
        session = UploadSession(self.layout.uploads, repository)
        self.sessions[session.id] = session
        return session

    def get(self, repository: str, upload_id: str) -> UploadSession:
        session = self.sessions.get(upload_id)
        if session is None or session.repository != repository:
            raise upload_unknown(upload_id)
        session.touched = time.monotonic()
        return session

    def cancel(self, session: UploadSession) -> None:
        self.sessions.pop(session.id, None)
        session.discard()

    def _drop_idle(self) -> None:
        now = time.monotonic()
        for session in [s for s in self.sessions.values() if now - s.touched > IDLE_SECONDS and not s.lock.locked()]:
            self.cancel(session)

    async def append(self, session: UploadSession, chunks: t.AsyncIterator[bytes], buffer_size: int = 512 * 1024,
                     body_timeout: float = 0.0) -> int:
        """Append a request body to the session: buffered, written and hashed off the event loop; bytes added.

        One buffer per session, handed to the worker as it is (no copy); while the worker writes, aiohttp's
        reader stops reading the socket once its own small buffer is full, so the client is slowed, not memory.
        A body that breaks off (the client went away) or pauses longer than ``body_timeout`` (the receiver's
        ``--body-timeout``; 0: none) still leaves the session consistent: what arrived is a valid prefix,
        written before the error goes on, so the client can ask where it stands and resume.  A failed write
        (disk full) marks the session broken: its file and hash may disagree."""
        loop = asyncio.get_running_loop()
        added = 0
        buffer = bytearray()
        stall = _ReadStall(body_timeout)

        async def flush() -> None:
            nonlocal added, buffer
            try:
                await loop.run_in_executor(None, session.write, buffer)
            except BaseException:
                session.broken = True
                raise
            added += len(buffer)
            buffer = bytearray()

        try:
            stall.arm()
            async for chunk in chunks:
                stall.disarm()  # only reads are timed: a write in the worker is never cancelled halfway
                buffer += chunk
                if len(buffer) >= buffer_size:
                    await flush()
                stall.arm()
            stall.disarm()
        except (Exception, asyncio.CancelledError) as exc:
            stall.disarm()
            if isinstance(exc, asyncio.CancelledError) and not stall.took_back():
                raise  # a cancellation that is not ours
            if session.broken:
                raise
            if buffer:
                await flush()
            if stall.expired:
                raise RegistryError(408, 'BLOB_UPLOAD_INVALID', 'upload %s: the body paused for more than %g s (the body timeout) after '
                                    '%d bytes in all; resume from there' % (session.id, body_timeout, session.offset),
                                    headers={'Range': '0-%d' % max(session.offset - 1, 0)}) from None
            raise RegistryError(400, 'BLOB_UPLOAD_INVALID', 'upload %s: the body broke off (%s) after %d bytes in all; ask where it stands '
                                '(GET the upload) and resume' % (session.id, type(exc).__name__, session.offset),
                                headers={'Range': '0-%d' % max(session.offset - 1, 0)}) from None
        if buffer:
            await flush()
        session.touched = time.monotonic()
        return added

    async def finish(self, session: UploadSession, digest: str) -> None:
        """Check the session's bytes against ``digest``, then make them the blob; the session ends either way."""
        algorithm, _hex = parse_digest(digest)
        self.sessions.pop(session.id, None)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, os.fsync, session.fd)
            actual = await loop.run_in_executor(None, session.digest, algorithm)
            session.close()
            if actual != digest:
                raise digest_invalid('upload %s: the %d bytes received hash to %s, not %s; nothing was stored'
                                     % (session.id, session.offset, actual, digest))
            await loop.run_in_executor(None, self.layout.commit_blob, session.path, digest)
        except BaseException:
            session.discard()
            raise

    def close_all(self) -> None:
        for session in list(self.sessions.values()):
            self.cancel(session)


class _ReadStall:
    """Cancel the reading task when no body data came for ``timeout`` seconds (the receiver's body timeout, as
    ``api.read_body`` applies it to job bodies): one timer re-armed per chunk, no task per read."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.expired = False
        self._task = asyncio.current_task()
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        self.disarm()
        if self.timeout > 0:
            self._handle = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    def took_back(self) -> bool:
        """After a CancelledError: True when it was this timer's (the cancellation is then undone)."""
        if not self.expired:
            return False
        if sys.version_info >= (3, 11) and self._task is not None:
            self._task.uncancel()
        return True


def parse_content_range(value: str) -> tuple[int, int]:
    """(first, last) of a PATCH ``Content-Range`` (the spec's ``<start>-<end>``; ``bytes <start>-<end>/<size>`` accepted too)."""
    text = value.strip()
    if text.lower().startswith('bytes'):
        text = text[5:].lstrip(' =')
    text = text.partition('/')[0]
    first, sep, last = text.partition('-')
    if not sep or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise RegistryError(416, 'BLOB_UPLOAD_INVALID', 'Content-Range %r: expected <first byte>-<last byte>' % value)
    return int(first), int(last)
