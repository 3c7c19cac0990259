# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""WebhookSender against a real HTTP server that answers with a scripted sequence of statuses."""

from __future__ import annotations

import http.server
import threading

import pytest

from l3metal_contract.webhook import WebhookDeliveryError, WebhookSender, failed_body, verify
from l3metal_lab.ports import free_port

TOKEN = 'per-job-token-0123456789'


class ScriptedReceiver:
    """Answers POSTs with the next status of ``script`` (then 200), verifying every signature."""

    def __init__(self, script, retry_after=None):
        self.script = list(script)
        self.received = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_POST(self):
                body = self.rfile.read(int(self.headers['Content-Length']))
                delivery, _stamp = verify(TOKEN, body, dict(self.headers))
                outer.received.append((self.path, delivery, body, self.headers['Content-Type']))
                status = outer.script.pop(0) if outer.script else 200
                self.send_response(status)
                if retry_after and status in (429, 503):
                    self.send_header('Retry-After', retry_after)
                self.send_header('Content-Length', '0')
                self.end_headers()

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made = []

    def make(script, retry_after=None):
        made.append(ScriptedReceiver(script, retry_after))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def sender(port, delays, attempts=5):
    return WebhookSender('http://127.0.0.1:%d/' % port, 'XF-1', TOKEN, job_id='job-7', attempts=attempts, backoff=0.01, sleep=delays.append)


def test_retries_transient_errors_with_one_delivery_id(receiver_factory):
    receiver = receiver_factory([503, 502, 429])
    delays = []
    assert sender(receiver.port, delays).send(failed_body('partition.service')) == 200
    assert len(receiver.received) == 4
    assert {delivery for _p, delivery, _b, _c in receiver.received} == {receiver.received[0][1]}
    assert receiver.received[0][0] == '/api/v1/status-webhook/XF-1'
    assert receiver.received[0][2] == b'{"failed_step":"partition.service","job_id":"job-7","status":"failed"}'
    assert receiver.received[0][3] == 'application/json'
    assert len(delays) == 3


def test_retry_after_is_honoured(receiver_factory):
    receiver = receiver_factory([503], retry_after='2')
    delays = []
    sender(receiver.port, delays).send({'status': 'success'})
    assert delays == [2.0]


def test_409_means_already_delivered(receiver_factory):
    receiver = receiver_factory([409])
    assert sender(receiver.port, []).send({'status': 'success'}) == 409


def test_client_errors_are_final(receiver_factory):
    receiver = receiver_factory([401, 200])
    with pytest.raises(WebhookDeliveryError, match='HTTP 401') as info:
        sender(receiver.port, []).send({'status': 'success'})
    assert info.value.status == 401
    assert len(receiver.received) == 1


def test_gives_up_after_the_attempt_budget(receiver_factory):
    receiver = receiver_factory([500] * 10)
    with pytest.raises(WebhookDeliveryError, match='gave up after 3 attempts: HTTP 500') as info:
        sender(receiver.port, [], attempts=3).send({'status': 'success'})
    assert info.value.status == 500
    assert len(receiver.received) == 3
