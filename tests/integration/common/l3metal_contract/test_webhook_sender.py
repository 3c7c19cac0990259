# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""WebhookSender against a real HTTP server that answers with a scripted sequence of statuses.

The server answers as the receiver does: a 2xx with the acknowledgement ``{"job_id", "status"}``, a 409 with a
problem document whose ``code`` says which conflict it is (``duplicate_delivery``: this delivery is stored).
"""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from l3metal_contract.webhook import DUPLICATE_DELIVERY_CODE, WebhookDeliveryError, WebhookSender, failed_body, verify
from l3metal_lab.ports import free_port

TOKEN = 'per-job-token-0123456789'


class ScriptedReceiver:
    """Answers POSTs with the next entry of ``script`` (then 200), verifying every signature.  An entry is a status,
    or (status, body bytes, headers) to answer something other than what the receiver would."""

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
                entry = outer.script.pop(0) if outer.script else 200
                status, answer, headers = entry if isinstance(entry, tuple) else (entry, None, {})
                if answer is None:
                    answer = receiver_answer(status)
                self.send_response(status)
                if retry_after and status in (429, 503):
                    self.send_header('Retry-After', retry_after)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header('Content-Length', str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def receiver_answer(status, code=None):
    """What the receiver answers with ``status``: its acknowledgement for a 2xx, a problem document otherwise."""
    if 200 <= status < 300:
        return json.dumps({'job_id': 'job-7', 'status': 'provisioning'}).encode()
    return json.dumps({'status': status, 'title': 'x', 'detail': 'scripted %d' % status, **({'code': code} if code else {})}).encode()


DUPLICATE = (409, receiver_answer(409, DUPLICATE_DELIVERY_CODE), {})


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


def test_409_for_a_stored_delivery_means_already_delivered(receiver_factory):
    receiver = receiver_factory([503, DUPLICATE])  # the first attempt was stored, its answer lost
    assert sender(receiver.port, []).send({'status': 'success'}) == 409
    assert len({delivery for _p, delivery, _b, _c in receiver.received}) == 1


@pytest.mark.parametrize('entry', [
    409,                                                          # no problem code (an older receiver, a proxy)
    (409, receiver_answer(409, 'outcome_recorded'), {}),          # the job already has its outcome
    (409, receiver_answer(409, 'transition_refused'), {}),
    (409, b'<html>conflict</html>', {}),
], ids=['no-code', 'outcome-recorded', 'transition-refused', 'not-json'])
def test_any_other_409_is_a_refusal_not_a_delivery(receiver_factory, entry):
    receiver = receiver_factory([entry])
    with pytest.raises(WebhookDeliveryError, match='the receiver did not take it') as info:
        sender(receiver.port, []).send({'status': 'success'})
    assert info.value.status == 409 and len(receiver.received) == 1


@pytest.mark.parametrize('entry', [
    (200, b'', {}),
    (200, b'<html>Welcome to the captive portal</html>', {}),
    (200, json.dumps({'job_id': 'another-job', 'status': 'provisioning'}).encode(), {}),
    (204, b'', {}),
], ids=['empty', 'html', 'another-job', 'no-content'])
def test_a_2xx_that_is_not_the_receivers_acknowledgement_is_not_a_delivery(receiver_factory, entry):
    receiver = receiver_factory([entry])
    with pytest.raises(WebhookDeliveryError, match="not the receiver's acknowledgement"):
        sender(receiver.port, []).send({'status': 'success'})


@pytest.mark.parametrize('status', [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(receiver_factory, status):
    # urllib would repeat a 301/302/303 as a GET without the body and report whatever that GET answers
    receiver = receiver_factory([(status, b'', {'Location': '/elsewhere'})])
    with pytest.raises(WebhookDeliveryError, match='not followed') as info:
        sender(receiver.port, []).send({'status': 'success'})
    assert info.value.status == status and len(receiver.received) == 1


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
