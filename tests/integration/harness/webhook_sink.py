# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A signature-checking webhook sink: a real HTTP server that accepts what the receiver would accept.

Stand-in for the webhook receiver until it exists: it checks every POST to
``/api/v1/status-webhook/<serial>`` with the shared ``_webhook.verify`` against the job's token,
rejects replays (409) and records each accepted body.  Tests use only ``url``, ``add_job`` and
``bodies``/``wait_for_bodies``, so the fixture can start the real receiver instead without test changes.
"""

from __future__ import annotations

import json
import threading
import typing as t
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ansible_collections.l3metal.provision.plugins.module_utils import _webhook

from .waiting import wait_for


class Delivery(t.NamedTuple):
    serial: str
    body: dict[str, t.Any]
    delivery_id: str


class WebhookSink:
    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, str]] = {}  # serial -> (job id, token)
        self.accepted: list[Delivery] = []
        self.rejected: list[tuple[int, str]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: t.Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                status, message = sink.handle(self.path, dict(self.headers.items()), self.rfile.read(int(self.headers.get('Content-Length') or 0)))
                payload = json.dumps({'message': message}).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.server.server_address[1]

    def start(self) -> WebhookSink:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_job(self, serial: str, job_id: str, token: str) -> None:
        self.jobs[serial] = (job_id, token)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, str]:
        with self._lock:
            if not path.startswith(_webhook.WEBHOOK_PATH):
                return self._reject(404, 'unknown path %s' % path)
            serial = urllib.parse.unquote(path[len(_webhook.WEBHOOK_PATH):])
            if serial not in self.jobs:
                return self._reject(404, 'no active job for %s' % serial)
            job_id, token = self.jobs[serial]
            if headers.get('Content-Type', '').split(';')[0].strip() != 'application/json':
                return self._reject(415, 'content type must be application/json')
            try:
                delivery_id, _stamp = _webhook.verify(token, raw, headers)
            except _webhook.SignatureError as exc:
                return self._reject(401, str(exc))
            if delivery_id in self._seen:
                return self._reject(409, 'delivery %s already accepted' % delivery_id)
            try:
                body = json.loads(raw)
            except ValueError:
                return self._reject(400, 'body is not JSON')
            if not isinstance(body, dict) or body.get('status') not in _webhook.STATUSES or body.get('job_id', job_id) != job_id:
                return self._reject(400, 'not a status body of this job')
            self._seen.add(delivery_id)
            self.accepted.append(Delivery(serial, body, delivery_id))
            return 200, 'stored'

    def _reject(self, status: int, message: str) -> tuple[int, str]:
        self.rejected.append((status, message))
        return status, message

    def bodies(self, serial: str | None = None) -> list[dict[str, t.Any]]:
        with self._lock:
            return [d.body for d in self.accepted if serial is None or d.serial == serial]

    def wait_for_bodies(self, predicate: t.Callable[[list[dict[str, t.Any]]], bool], serial: str | None = None,
                        timeout: float = 20.0) -> list[dict[str, t.Any]]:
        wait_for(lambda: predicate(self.bodies(serial)), timeout=timeout, what='webhook bodies')
        return self.bodies(serial)
