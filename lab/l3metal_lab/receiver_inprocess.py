# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The receiver in-process for many requests: ``create_app`` under aiohttp's test client (a real socket on
127.0.0.1), started once and driven from synchronous code (tests, hypothesis, bench/receiver_soak.py)
through ``InProcess.run``.  The subprocess twin is ``receiver.Receiver``.

``snapshot()`` reads every stored row straight from the database (another connection; SQLite file or PostgreSQL,
``l3metal_lab.store_view``), and
``invariants()`` checks what must hold after any request: one active job per serial, every job's
status equal to its last status event and reached through allowed transitions, at most one outcome
per job, delivery ids unique, a media directory for each active job and none for complete ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
import typing as t
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict

from l3metal_contract import webhook
from l3metal_contract.jobs import NODE_TRANSITIONS, OUTCOME_STATUSES, USER_TRANSITIONS
from l3metal_receiver.api import SERVICE_KEY
from l3metal_receiver.server import Settings, create_app

from .store_view import StoreView

API_TOKEN = 'in-process-api-token'
AUTH = {'Authorization': 'Bearer ' + API_TOKEN}
FIRMWARE = {'task_target': 'supermicro-update.target', 'firmware_url': 'http://firmware.example.com/bios.bin'}
SITE_KEY = 'in-process-site-node-key-0123456789abcdef'


class Answer(t.NamedTuple):
    status: int
    headers: t.Mapping[str, str]
    body: bytes

    @property
    def json(self) -> t.Any:
        return json.loads(self.body)


class ProcessLikeTestServer(TestServer):
    """aiohttp's test server as the receiver process runs it: a handler is not cancelled when its client goes away
    (the test client's default cancels it, which hides what a real disconnect does to a request half read)."""

    async def _make_runner(self, **kwargs: t.Any) -> web.BaseRunner:
        kwargs['handler_cancellation'] = False
        return web.AppRunner(self.app, **kwargs)


class StoreChecker:
    """The store's invariants, for a receiver in-process or a real process (a read-only connection to its database, on
    either backend: an SQLite file path or a PostgreSQL URL)."""

    def __init__(self, database: str | Path | StoreView, media_dir: Path) -> None:
        self.view = database if isinstance(database, StoreView) else StoreView(database)
        self.media_dir = media_dir
        self._checked_seq = 0
        self._checked_update = ''

    def check(self, full: bool = False) -> None:
        """What must hold after any request: one active job per serial, every job's status its last status event,
        reached through allowed transitions (a node's outcome only from provisioning), at most one outcome per job, a
        failed job with its step, delivery ids unique, no event without its job, a media directory for exactly the
        active jobs.  Incremental, so it can run after every fuzz case on thousands of jobs: the per-job rules are
        checked for the jobs with new events or a changed row since the last call (``full``: for all of them)."""
        with self.view.connection() as conn:
            self.view.begin_snapshot(conn)

            def rows(sql: str, *args: t.Any) -> list[t.Any]:
                return self.view.rows(conn, sql, *args)
            doubled = rows("SELECT server_serial FROM jobs WHERE status != 'complete' GROUP BY server_serial HAVING COUNT(*) > 1")
            assert not doubled, 'two active jobs for serial(s) %s' % doubled
            since = 0 if full else self._checked_seq
            last_seq = rows('SELECT COALESCE(MAX(seq), 0) FROM events')[0][0]
            assert not rows('SELECT seq FROM events WHERE seq > ? AND job_id NOT IN (SELECT job_id FROM jobs) LIMIT 1', since), 'an event of no job'
            assert not rows('SELECT a.seq FROM events a WHERE a.seq > ? AND a.delivery_id IS NOT NULL AND EXISTS '
                            '(SELECT 1 FROM events b WHERE b.delivery_id = a.delivery_id AND b.seq != a.seq) LIMIT 1', since), \
                'a delivery id is stored twice'
            # every write of the store sets last_update; full=True also catches one that would not
            recent = rows('SELECT job_id, status, failed_step, last_update FROM jobs WHERE ? OR last_update >= ?', full, self._checked_update)
            fingerprint = {row[0]: row[1:] for row in recent}
            changed = set(fingerprint)
            for job_id in {row[0] for row in rows('SELECT DISTINCT job_id FROM events WHERE seq > ?', since)} - changed:
                fingerprint[job_id] = tuple(rows('SELECT status, failed_step, last_update FROM jobs WHERE job_id = ?', job_id)[0])
                changed.add(job_id)
            if full:
                events = rows("SELECT job_id, source, status FROM events WHERE type = 'status' ORDER BY seq")
            else:
                events = []
                ordered = sorted(changed)
                for start in range(0, len(ordered), 500):  # a bounded number of placeholders per statement
                    chunk = ordered[start:start + 500]
                    events += rows("SELECT seq, job_id, source, status FROM events WHERE type = 'status' AND job_id IN (%s)"
                                   % ', '.join('?' * len(chunk)), *chunk)
                events = [row[1:] for row in sorted(events)]
            active = {row[0] for row in rows("SELECT job_id FROM jobs WHERE status != 'complete'")}
        paths: dict[str, list[tuple[str, str]]] = {job_id: [] for job_id in changed}
        for event_job, source, event_status in events:
            paths[event_job].append((source, event_status))
        for job_id, path in paths.items():
            status, failed_step, _last_update = fingerprint[job_id]
            assert path and path[0] == ('user', 'queued'), (job_id, path)
            assert path[-1][1] == status, 'job %s is %s but its last status event says %s' % (job_id, status, path[-1][1])
            for (_before_source, before), (source, after) in zip(path, path[1:], strict=False):
                table = USER_TRANSITIONS if source == 'user' else NODE_TRANSITIONS
                assert after in table[before], 'job %s: %s -> %s by %s is not an allowed transition' % (job_id, before, after, source)
                if source != 'user' and after in OUTCOME_STATUSES:
                    assert before == 'provisioning', 'job %s: a node outcome straight from %s' % (job_id, before)
            outcomes = [event_status for _source, event_status in path if event_status in OUTCOME_STATUSES]
            assert len(outcomes) <= 1, 'job %s has its outcome recorded %d times: %s' % (job_id, len(outcomes), outcomes)
            assert status != 'failed' or failed_step, 'job %s failed without a failed_step' % job_id
        self._checked_seq = last_seq
        self._checked_update = max([self._checked_update] + [value[2] for value in fingerprint.values()])
        media = set(sorted(os.listdir(self.media_dir / 'jobs')) if (self.media_dir / 'jobs').is_dir() else [])
        assert media == active, 'media directories without an active job: %s; active jobs without one: %s' % (
            sorted(media - active), sorted(active - media))


class StateMark:
    """A read snapshot pinned at the moment of ``InProcess.mark()`` (the writer goes on), and the store's version then."""

    def __init__(self, harness: InProcess) -> None:
        self.harness = harness
        self.conn: t.Any = harness.view.acquire()
        harness.view.begin_snapshot(self.conn)
        self.version = harness.data_version()
        self.media = harness._media()  # pylint: disable=protected-access

    def close(self) -> None:
        if self.conn is not None:
            self.harness.view.release(self.conn)
            self.conn = None

    def unchanged(self) -> bool:
        try:
            if self.harness.data_version() == self.version:
                return self.harness._media() == self.media  # pylint: disable=protected-access
            before: dict[str, t.Any] = self.harness.view.tables(self.conn)
            before['media'] = self.media
            return before == self.harness.snapshot()  # something may have committed: compare every row
        finally:
            self.close()


class InProcess:
    """One receiver app, its loop and its client; every method that talks HTTP is a coroutine, ``run`` drives one."""

    def __init__(self, tmp_path: Path, **changes: t.Any) -> None:
        values: dict[str, t.Any] = dict(host='127.0.0.1', port=0, data_dir=tmp_path / 'data', media_dir=tmp_path / 'media',
                                        api_token=API_TOKEN, site_keys=(SITE_KEY,))
        values.update(changes)
        self.settings = Settings(**values)
        self.loop = asyncio.new_event_loop()
        # skip_url_asserts: the fuzz suite sends paths such as //x that a client would take for another host
        self.app = create_app(self.settings)
        self.client = TestClient(ProcessLikeTestServer(self.app, skip_url_asserts=True), loop=self.loop)
        self.run(self.client.start_server())
        self.database = self.settings.data_dir / 'receiver.sqlite3'  # the SQLite file (also where there is none: the PostgreSQL backend)
        self.backend = 'postgresql' if self.settings.database_url else 'sqlite'
        self.view = StoreView(self.settings.database_url or self.database)
        self.serials = 0
        self.checker = StoreChecker(self.view, self.settings.media_dir)

    def run(self, awaitable: t.Awaitable[t.Any]) -> t.Any:
        return self.loop.run_until_complete(awaitable)

    def close(self) -> None:
        self.view.close()
        self.run(self.client.close())
        self.loop.close()

    @property
    def service(self) -> t.Any:
        return self.app[SERVICE_KEY]

    def serial(self, prefix: str = 'XF') -> str:
        self.serials += 1
        return '%s-%05d' % (prefix, self.serials)

    # ------------------------------------------------------------------ HTTP

    async def request(self, method: str, path: str, body: t.Any = None, raw: bytes | None = None, headers: t.Mapping[str, str] | None = None,
                      auth: bool = True, content_type: str | None = 'application/json') -> Answer:
        all_headers = dict(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None and content_type and 'Content-Type' not in all_headers:
            all_headers['Content-Type'] = content_type
        if auth and 'Authorization' not in all_headers:
            all_headers.update(AUTH)
        async with self.client.request(method, path, data=data, headers=all_headers) as response:
            return Answer(response.status, CIMultiDict(response.headers), await response.read())

    async def raw(self, data: bytes, hang_up: float | None = None, timeout: float = 5.0) -> bytes:
        """Send ``data`` on a new connection; return all the server answers until it closes (or ``timeout``).
        ``hang_up``: close that many seconds after sending, as a client that gives up in the middle of its body."""
        reader, writer = await asyncio.open_connection(self.client.server.host, self.client.server.port)
        answer = b''
        try:
            writer.write(data)
            await writer.drain()
            if hang_up is not None:
                await asyncio.sleep(hang_up)  # the handler is reading the body by then
                return b''
            try:
                answer = await asyncio.wait_for(reader.read(), timeout)
            except (TimeoutError, ConnectionError):
                pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
        for _turn in range(5):  # the server's side of the connection finishes (its handler, its log line)
            await asyncio.sleep(0.002)
        return answer

    async def create_job(self, serial: str | None = None, recipe: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
        answer = await self.request('POST', '/api/v1/jobs', {'server_serial': serial or self.serial(), 'recipe': dict(recipe or FIRMWARE)})
        assert answer.status == 202, answer.body
        return t.cast(dict[str, t.Any], answer.json)

    async def webhook(self, job: t.Mapping[str, t.Any], body: t.Mapping[str, t.Any] | bytes, delivery_id: str | None = None,
                      token: str | None = None, headers: t.Mapping[str, str] | None = None, serial: str | None = None) -> Answer:
        data = body if isinstance(body, bytes) else webhook.encode_body(body)
        # signed as a node signs, also for a delivery id that sign() would refuse (the receiver must refuse it: 401)
        stamp = str(int(time.time()))
        delivery = delivery_id or webhook.new_delivery_id()
        digest = hmac.new((token or job['token']).encode(), b'v1:%s:%s:' % (stamp.encode(), delivery.encode('utf-8', 'replace')) + data,
                          hashlib.sha256).hexdigest()
        signed = {webhook.TIMESTAMP_HEADER: stamp, webhook.DELIVERY_HEADER: delivery, webhook.SIGNATURE_HEADER: 'v1=' + digest,
                  'Content-Type': 'application/json'}
        signed.update(headers or {})
        return await self.request('POST', webhook.WEBHOOK_PATH + (serial or job['server_serial']), raw=data, headers=signed, auth=False)

    async def site_webhook(self, serial: str, body: t.Mapping[str, t.Any] | bytes, delivery_id: str | None = None) -> Answer:
        return await self.webhook({'server_serial': serial, 'token': webhook.site_signing_key(SITE_KEY, serial)}, body, delivery_id,
                                  headers={webhook.KEY_ID_HEADER: webhook.SITE_KEY_ID})

    async def job(self, job_id: str) -> dict[str, t.Any]:
        answer = await self.request('GET', '/api/v1/jobs/' + job_id)
        assert answer.status == 200, answer.body
        return t.cast(dict[str, t.Any], answer.json)

    async def events(self, job_id: str) -> list[dict[str, t.Any]]:
        answer = await self.request('GET', '/api/v1/jobs/%s/events' % job_id)
        assert answer.status == 200, answer.body
        return t.cast(list[dict[str, t.Any]], answer.json['events'])

    # ------------------------------------------------------------------ state

    def snapshot(self) -> dict[str, t.Any]:
        """Every stored row (``StoreView.snapshot``) and the per-job media directories: equal before and after a refused request."""
        tables: dict[str, t.Any] = self.view.snapshot()
        tables['media'] = self._media()
        return tables

    def _media(self) -> list[str]:
        jobs_dir = self.settings.media_dir / 'jobs'
        return sorted(os.listdir(jobs_dir)) if jobs_dir.is_dir() else []

    def mark(self) -> StateMark:
        """The stored state now, to ask after a request whether it changed: as exact as comparing two ``snapshot()``s,
        but costs one version query (``StoreView.version``) instead of reading every row when nothing was committed."""
        return StateMark(self)

    def data_version(self) -> str:
        return self.view.version()

    def invariants(self, full: bool = False) -> None:
        """``StoreChecker.check`` on this receiver's database and media directory."""
        self.checker.check(full)
