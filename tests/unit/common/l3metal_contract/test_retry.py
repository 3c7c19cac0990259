# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one retry policy: bounded attempts, exponential backoff with jitter, Retry-After."""

from __future__ import annotations

import email.utils

import pytest

from l3metal_contract.retry import RetryPolicy, parse_retry_after


def test_backoff_doubles_up_to_the_cap_within_its_jitter_band():
    low = RetryPolicy(attempts=8, backoff=1.0, max_delay=10.0, jitter=0.5, random=lambda: 0.0)
    high = RetryPolicy(attempts=8, backoff=1.0, max_delay=10.0, jitter=0.5, random=lambda: 1.0)
    # the ceilings 1, 2, 4, 8, 10, 10: each wait between half of it and all of it
    assert [low.delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [high.delay(n) for n in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    exact = RetryPolicy(backoff=2.0, factor=3.0, max_delay=100.0, jitter=0.0)
    assert [exact.delay(n) for n in range(4)] == [2.0, 6.0, 18.0, 54.0]


def test_a_servers_retry_after_replaces_the_backoff_capped():
    policy = RetryPolicy(max_delay=30.0, random=lambda: 0.0)
    assert policy.delay(3, retry_after=7) == 7.0
    assert policy.delay(0, retry_after=120) == 30.0
    assert policy.delay(0, retry_after=0) == 0.0


def test_attempts_bound_the_retries_and_wait_sleeps_the_delay():
    slept = []
    policy = RetryPolicy(attempts=3, backoff=1.0, jitter=0.0, sleep=slept.append)
    assert policy.retries == 2
    assert [policy.should_retry(n) for n in range(3)] == [True, True, False]
    policy.wait(0)
    policy.wait(1, retry_after=5)
    assert slept == [1.0, 5.0]
    assert policy.with_attempts(5).attempts == 5 and policy.attempts == 3


@pytest.mark.parametrize('bad', [dict(attempts=0), dict(backoff=-1), dict(jitter=1.5), dict(max_delay=-2)])
def test_nonsense_settings_are_refused(bad):
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


def test_retry_after_as_seconds_or_http_date():
    assert parse_retry_after('5') == 5.0 and parse_retry_after(' 12 ') == 12.0
    assert parse_retry_after(None) is None and parse_retry_after('') is None and parse_retry_after('soon') is None
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0  # in the past: no wait


@pytest.mark.parametrize('hostile', ['²', '1' * 5000, '-5', '1e9', '0x10'])
def test_retry_after_that_is_not_plain_digits_is_ignored(hostile):
    assert parse_retry_after(hostile) is None
