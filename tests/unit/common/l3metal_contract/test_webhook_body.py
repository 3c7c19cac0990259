# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook contract beyond signing (test_webhook.py covers that): strict bodies, log-tail trimming, the
command line for systemd units."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from l3metal_contract import webhook as wh


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
