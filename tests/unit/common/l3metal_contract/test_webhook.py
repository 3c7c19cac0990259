# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The signed-webhook contract (docs/webhooks.md)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from l3metal_contract.webhook import (
    KEY_ID_HEADER,
    MAX_REASON,
    SITE_KEY_STEP,
    SignatureError,
    WebhookDeliveryError,
    WebhookSender,
    encode_body,
    failed_body,
    key_id,
    parse_site_keys,
    progress_body,
    sign,
    site_key_allows,
    site_signing_key,
    success_body,
    verify,
)

TOKEN = 'per-job-token-0123456789'


def test_signature_is_the_documented_hmac():
    body = b'{"status":"success"}'
    headers = sign(TOKEN, body, delivery_id='delivery-0001', timestamp=1700000000)
    expected = hmac.new(TOKEN.encode(), b'v1:1700000000:delivery-0001:' + body, hashlib.sha256).hexdigest()
    assert headers == {'X-L3metal-Timestamp': '1700000000', 'X-L3metal-Delivery': 'delivery-0001', 'X-L3metal-Signature': 'v1=' + expected}
    assert verify(TOKEN, body, headers, now=1700000100) == ('delivery-0001', 1700000000)


def test_header_names_are_case_insensitive():
    body = b'{}'
    headers = {key.lower(): value for key, value in sign(TOKEN, body).items()}
    assert verify(TOKEN, body, headers)[0] == headers['x-l3metal-delivery']


@pytest.mark.parametrize('mutate, message', [
    (lambda h, b: ({}, b), 'missing headers: X-L3metal-Timestamp, X-L3metal-Delivery, X-L3metal-Signature'),
    (lambda h, b: (dict(h, **{'X-L3metal-Signature': 'v1=00'}), b), 'signature does not match'),
    (lambda h, b: (h, b + b' '), 'signature does not match'),
    (lambda h, b: (dict(h, **{'X-L3metal-Timestamp': 'yesterday'}), b), 'must be unix seconds'),
    (lambda h, b: (dict(h, **{'X-L3metal-Delivery': 'x'}), b), 'must be 8-64 characters'),
])
def test_bad_signatures_are_rejected(mutate, message):
    body = b'{"status":"failed","failed_step":"partition.service"}'
    headers, body = mutate(sign(TOKEN, body), body)
    with pytest.raises(SignatureError, match=message):
        verify(TOKEN, body, headers)


def test_wrong_token_and_stale_timestamp():
    body = b'{}'
    with pytest.raises(SignatureError, match='does not match'):
        verify('another-token-000000', body, sign(TOKEN, body))
    with pytest.raises(SignatureError, match='away from the receiver clock'):
        verify(TOKEN, body, sign(TOKEN, body, timestamp=1000), now=1000 + 301)


def test_bodies():
    assert success_body() == {'status': 'success'}
    assert failed_body('bootloader-linux.service', reason='boom', job_id='j1') == {
        'status': 'failed', 'failed_step': 'bootloader-linux.service', 'reason': 'boom', 'job_id': 'j1'}
    assert progress_body('partition.service', 'started') == {'status': 'progress', 'step': 'partition.service', 'state': 'started'}
    with pytest.raises(ValueError):
        progress_body('x.service', 'halfway')
    assert encode_body({'b': 1, 'a': 'x'}) == b'{"a":"x","b":1}'


def test_sender_gives_up_on_an_unreachable_receiver_after_bounded_attempts():
    delays = []
    sender = WebhookSender('http://127.0.0.1:9', 'SERIAL 1/2', TOKEN, attempts=3, backoff=0.5, timeout=0.5, sleep=delays.append)
    assert sender.url == 'http://127.0.0.1:9/api/v1/status-webhook/SERIAL%201%2F2'
    with pytest.raises(WebhookDeliveryError, match='gave up after 3 attempts: cannot reach'):
        sender.send(success_body())
    assert len(delays) == 2
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0


def test_sender_rejects_a_bad_url():
    with pytest.raises(ValueError, match='must start with http'):
        WebhookSender('ftp://x', 's', TOKEN)


# ---------------------------------------------------------------------------------------------------
# the site key (docs/webhooks.md, "Site key")

SITE_KEY = 's' * 64


def test_site_signing_key_is_bound_to_the_serial():
    expected = hmac.new(SITE_KEY.encode(), b'l3metal-site-report:v1:XF-1', hashlib.sha256).hexdigest()
    assert site_signing_key(SITE_KEY, 'XF-1') == expected
    assert site_signing_key(SITE_KEY, 'XF-2') != expected and site_signing_key('t' * 64, 'XF-1') != expected
    body = encode_body(failed_body(SITE_KEY_STEP, 'no task medium'))
    headers = sign(site_signing_key(SITE_KEY, 'XF-1'), body)
    verify(site_signing_key(SITE_KEY, 'XF-1'), body, headers)
    with pytest.raises(SignatureError):
        verify(site_signing_key(SITE_KEY, 'XF-2'), body, headers)


def test_key_id_header():
    assert key_id({}) == 'job' and key_id({'x-l3metal-key-id': 'Site'}) == 'site' and key_id({KEY_ID_HEADER: 'job'}) == 'job'
    with pytest.raises(SignatureError, match='must be job or site'):
        key_id({KEY_ID_HEADER: 'admin'})


@pytest.mark.parametrize('body,allowed', [
    (failed_body(SITE_KEY_STEP, 'no medium'), True),
    (failed_body(SITE_KEY_STEP), True),
    (failed_body('image-linux.service', 'x'), False),
    (success_body(), False),
    (progress_body(SITE_KEY_STEP, 'started'), False),
])
def test_a_site_key_may_only_report_the_dispatchers_failure(body, allowed):
    assert site_key_allows(body) is allowed


def test_node_key_files():
    assert parse_site_keys('# new first\n%s\n\n  %s  \n' % ('a' * 32, 'b' * 40)) == ['a' * 32, 'b' * 40]
    with pytest.raises(ValueError, match='holds no key'):
        parse_site_keys('# nothing\n')
    with pytest.raises(ValueError, match='key 2 is shorter than 32 characters'):
        parse_site_keys('%s\nshort\n' % ('a' * 32), 'k')


def test_a_long_reason_is_cut_to_what_the_receiver_accepts():
    body = failed_body('x.service', 'r' * 5000)
    assert len(body['reason']) == MAX_REASON and body['reason'].endswith('...')
    assert failed_body('x.service', 'r' * MAX_REASON)['reason'] == 'r' * MAX_REASON
