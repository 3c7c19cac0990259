# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The signed webhook contract: signing, verification, strict bodies, log-tail trimming."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.l3metal.provision.plugins.module_utils import _webhook as wh

TOKEN = 'per-job-token-0123456789abcdef'


def test_signature_is_the_documented_hmac():
    body = b'{"status":"success"}'
    headers = wh.sign(TOKEN, body, delivery_id='delivery-0001', timestamp=1700000000)
    expected = hmac.new(TOKEN.encode(), b'v1:1700000000:delivery-0001:' + body, hashlib.sha256).hexdigest()
    assert headers == {'X-L3metal-Timestamp': '1700000000', 'X-L3metal-Delivery': 'delivery-0001', 'X-L3metal-Signature': 'v1=' + expected}
    assert wh.verify(TOKEN, body, headers, now=1700000100) == ('delivery-0001', 1700000000)
    # header names are case-insensitive
    assert wh.verify(TOKEN, body, {k.lower(): v for k, v in headers.items()}, now=1700000000)[0] == 'delivery-0001'


@pytest.mark.parametrize('change, message', [
    (lambda h, b: (dict(h, **{'X-L3metal-Signature': 'v1=' + '0' * 64}), b), 'does not match'),
    (lambda h, b: (h, b + b' '), 'does not match'),
    (lambda h, b: ({k: v for k, v in h.items() if k != 'X-L3metal-Delivery'}, b), 'missing header: X-L3metal-Delivery'),
    (lambda h, b: (dict(h, **{'X-L3metal-Timestamp': '17e8'}), b), 'unix seconds'),
    (lambda h, b: (dict(h, **{'X-L3metal-Delivery': 'short'}), b), '8-64 characters'),
])
def test_verify_refuses(change, message):
    body = b'{"status":"success"}'
    headers, body = change(wh.sign(TOKEN, body, timestamp=1700000000), body)
    with pytest.raises(wh.SignatureError, match=message):
        wh.verify(TOKEN, body, headers, now=1700000000)


def test_verify_refuses_stale_and_future_timestamps():
    headers = wh.sign(TOKEN, b'{}', timestamp=1700000000)
    for now in (1700000000 + wh.MAX_SKEW + 1, 1700000000 - wh.MAX_SKEW - 1):
        with pytest.raises(wh.SignatureError, match='away from the receiver clock'):
            wh.verify(TOKEN, b'{}', headers, now=now)


def test_parse_body_accepts_the_documented_forms():
    for body in (wh.success_body('job-1'), wh.failed_body('a.service', 'why', 'log\n'), wh.progress_body('dev-sda1.device', 'done'),
                 {'status': 'failed', 'failed_step': 'systemd-fsck@dev-disk-by\\x2dlabel-root.service'}):
        assert wh.parse_body(wh.encode_body(body)) == body


@pytest.mark.parametrize('raw, problem', [
    (b'', 'not valid JSON'),
    (b'[]', 'must be a JSON object'),
    (b'{"status": "success", "status": "success"}', 'duplicate key'),
    (b'{"status": "success", "x": Infinity}', 'Infinity is not valid JSON'),
    (b'{"status": "success", "x": 1}', 'x: unknown field'),
    (b'{"status": "failed", "failed_step": "two words"}', 'failed_step'),
    (b'{"status": "failed", "failed_step": "a.service", "reason": 7}', 'reason'),
    (b'{"status": "progress", "step": "a.service"}', 'state'),
    (b'{"status": "success", "job_id": ""}', 'job_id'),
])
def test_parse_body_names_the_problem(raw, problem):
    with pytest.raises(wh.BodyError) as info:
        wh.parse_body(raw)
    assert problem in str(info.value)


@given(st.text(max_size=3000))
def test_trimmed_log_tail_is_an_end_that_fits(text):
    limit = 500
    tail = wh.trim_log_tail(text, limit)
    assert text.endswith(tail)
    assert len(json.dumps(tail)) <= limit
    if len(json.dumps(text)) <= limit:
        assert tail == text


def test_command_line_without_a_token_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv('L3METAL_WEBHOOK_TOKEN', raising=False)
    assert wh.main(['--url', 'http://127.0.0.1:9', '--serial', 'XF-1', 'success']) == wh.EXIT_USAGE
    assert 'no token' in capsys.readouterr().err
