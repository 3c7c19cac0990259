# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook contract under hostile input (issue 15): text that is not valid Unicode, patterns that must match
the whole value, numbers that must be ASCII digits, and an audit that no input pattern anchors with "$"."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from l3metal_contract import jobs, recipe, recipe_schema, webhook

TOKEN = 'per-job-token-0123456789'


# ------------------------------------------------------------------------------------------------
# text that is not valid Unicode: replaced on the sender's side, kept with U+FFFD in a report

def test_scrub_replaces_each_lone_surrogate_with_one_replacement_character():
    assert webhook.scrub_text('ok \ud800 \udcff\udc80 end') == 'ok \ufffd \ufffd\ufffd end'
    assert webhook.scrub_text('already fine: é 😀') == 'already fine: é 😀'
    assert webhook.scrub({'a\udcff': ['\ud800', 1, None, {'b': '\udfff'}]}) == {'a\ufffd': ['\ufffd', 1, None, {'b': '\ufffd'}]}


def test_a_journal_line_with_bytes_that_are_not_utf8_is_sent_replaced():
    journal = b'BIOS vendor string \xff\xfe\x80 grub: error\n'.decode('utf-8', 'surrogateescape')  # what the C locale's stdin gives
    body = webhook.encode_body(webhook.failed_body('bootloader-linux.service', 'reason \udcff', webhook.trim_log_tail(journal)))
    assert body.isascii() and b'\\ud' not in body  # no lone surrogate escape: the receiver need not guess
    parsed = webhook.parse_body(body)
    assert parsed['log_tail'] == 'BIOS vendor string \ufffd\ufffd\ufffd grub: error\n' and parsed['reason'] == 'reason \ufffd'


def test_the_command_line_reads_a_log_tail_that_is_not_utf8(monkeypatch):
    monkeypatch.setattr(sys, 'stdin', io.TextIOWrapper(io.BytesIO(b'flash tool \xc3\x28 failed\n'), encoding='ascii', errors='strict'))
    assert webhook._read_text('-') == 'flash tool \ufffd( failed\n'  # pylint: disable=protected-access


@pytest.mark.parametrize('field', ['reason', 'log_tail'])
def test_parse_body_keeps_a_report_whose_text_is_not_valid_unicode(field):
    raw = ('{"status":"failed","failed_step":"a.service","%s":"x\\ud800y\\udc00"}' % field).encode()
    assert webhook.parse_body(raw)[field] == 'x\ufffdy\ufffd'


@pytest.mark.parametrize('field', ['reason', 'log_tail'])
def test_parse_body_keeps_a_report_with_a_nul_as_the_replacement_character(field):
    """PostgreSQL text holds no NUL: each becomes one U+FFFD when the body is read, before either store (the same text on both)."""
    raw = ('{"status":"failed","failed_step":"a.service","%s":"x\\u0000y\\u0000\\u0000\\ud800"}' % field).encode()
    assert webhook.parse_body(raw)[field] == 'x\ufffdy\ufffd\ufffd\ufffd'
    assert webhook.storable_text('no nul: \x01\t\n') == 'no nul: \x01\t\n'


@pytest.mark.parametrize('raw', [
    b'{"status":"failed","failed_step":"a.service\\u0000"}',
    b'{"status":"progress","step":"a\\u0000","state":"started"}',
    b'{"status":"success","job_id":"j\\u0000"}',
])
def test_parse_body_refuses_identifiers_with_a_nul(raw):
    with pytest.raises(webhook.BodyError):
        webhook.parse_body(raw)


@pytest.mark.parametrize('raw', [
    b'{"status":"failed","failed_step":"a.service\\ud800"}',
    b'{"status":"progress","step":"\\udcff","state":"started"}',
    b'{"status":"progress","step":"a.service","state":"started\\ud800"}',
    b'{"status":"success","job_id":"\\ud800"}',
    b'{"status":"success\\ud800"}',
])
def test_parse_body_refuses_identifiers_that_are_not_valid_unicode(raw):
    with pytest.raises(webhook.BodyError):
        webhook.parse_body(raw)


# ------------------------------------------------------------------------------------------------
# patterns: the whole value

@pytest.mark.parametrize('value', ['a.service\n', 'a.service\r\n', '\na.service', 'a.service\x00', 'a service'])
def test_a_step_must_be_the_whole_value(value):
    with pytest.raises(webhook.BodyError, match='failed_step'):
        webhook.parse_body(json.dumps({'status': 'failed', 'failed_step': value}).encode())
    with pytest.raises(webhook.BodyError, match='step'):
        webhook.parse_body(json.dumps({'status': 'progress', 'step': value, 'state': 'done'}).encode())


def test_a_delivery_id_with_a_trailing_newline_is_refused():
    body = b'{"status":"success"}'
    headers = webhook.sign(TOKEN, body, delivery_id='delivery-0001')
    headers[webhook.DELIVERY_HEADER] = 'delivery-0001\n'
    with pytest.raises(webhook.SignatureError, match='8-64 characters'):
        webhook.verify(TOKEN, body, headers)
    with pytest.raises(ValueError):
        webhook.sign(TOKEN, body, delivery_id='delivery-0001\n')


def test_the_webhook_job_id_pattern_is_the_schemas():
    schema = recipe_schema.RECIPE_SCHEMA['properties']['callback']['properties']['job_id']['pattern']
    for value in ('6ab57d87-277c-40c9-b168-1a35c2e1e4ec', 'a', 'a' * 64, 'a' * 65, 'a\n', 'a b', '', 'ü', 'a.b_c-d'):
        assert bool(webhook.JOB_ID_PATTERN.fullmatch(value)) == bool(recipe.compile_pattern(schema).search(value)), value


# ------------------------------------------------------------------------------------------------
# numbers: ASCII digits

@pytest.mark.parametrize('stamp', ['²', '١٧٠٠٠٠٠٠٠٠', '１７００００００００', '9' * 5000, '1700000000\n', '-1', '1e9'])
def test_a_timestamp_is_ascii_digits(stamp):
    body = b'{"status":"success"}'
    headers = webhook.sign(TOKEN, body, delivery_id='delivery-0001')
    headers[webhook.TIMESTAMP_HEADER] = stamp
    with pytest.raises(webhook.SignatureError, match='unix seconds'):
        webhook.verify(TOKEN, body, headers)


# ------------------------------------------------------------------------------------------------
# the audit: every input pattern matches the whole value

# One valid value per pattern of the recipe schema; a new pattern without a sample fails the audit below.
SCHEMA_SAMPLES = {
    recipe_schema.BASE64_PATTERN: 'aGVsbG8=',
    recipe_schema.FIRMWARE_TARGET_PATTERN: 'supermicro-update.target',
    recipe_schema.OCI_REFERENCE_PATTERN: 'registry.example.com:5000/os/rootfs:22.04',
    recipe_schema.SIZE_PATTERN: '512M',
    recipe_schema.TYPE_CODE_PATTERN: '8300',
    '^[a-z0-9][a-z0-9-]*\\.target$': 'install-linux.target',
    '^/dev(?:/(?!\\.\\.?(?:/|$))[A-Za-z0-9._:+@-]+)+$': '/dev/sda',
    '^https?://[^\\s/?#]+[^\\s]*$': 'http://fw.example.com/a.bin',
    '^[0-9a-fA-F]{64}$': '0' * 64,
    '^[A-Za-z0-9._-]{1,36}$': 'root',
    '^/(?:[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*)?$': '/boot/efi',
    '^https?://[^\\s/?#]+[^\\s?#]*$': 'https://ctl.example.com:8443',
    '^[A-Za-z0-9._-]{1,64}$': 'job-1',
    '^[A-Za-z0-9._:-]{1,128}$': 'XF-1',
}


def _schema_patterns(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'pattern' and isinstance(value, str):
                yield value
            else:
                yield from _schema_patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _schema_patterns(item)


def _anchors(pattern):
    """The "$" of a Python pattern outside character classes and escapes."""
    return '$' in re.sub(r'\\.|\[(?:\\.|[^\]])*\]', '', pattern)


def test_every_schema_pattern_refuses_a_trailing_newline():
    patterns = set(_schema_patterns(recipe_schema.RECIPE_SCHEMA))
    assert patterns <= set(SCHEMA_SAMPLES), 'add a sample for: %s' % sorted(patterns - set(SCHEMA_SAMPLES))
    for pattern in patterns:
        sample = SCHEMA_SAMPLES[pattern]
        compiled = recipe.compile_pattern(pattern)
        assert compiled.search(sample), (pattern, sample)
        for bad in (sample + '\n', sample + '\r\n'):
            assert not compiled.search(bad) or pattern == recipe_schema.BASE64_PATTERN, (pattern, bad)  # base64 may hold line breaks
        assert not _anchors(recipe.python_pattern(pattern)), pattern
        assert '\\d' not in pattern and '\\w' not in pattern, 'Unicode digits or letters in %s' % pattern


def test_the_validator_applies_ecma_semantics():
    # jsonschema's own "pattern" is Python's re.search: "$" before a final newline
    assert recipe.check_recipe({'task_target': 'supermicro-update.target\n', 'firmware_url': 'http://fw/a'})
    assert recipe.check_recipe({'task_target': 'supermicro-update.target', 'firmware_url': 'http://fw/a\n'})
    assert not recipe.check_recipe({'task_target': 'supermicro-update.target', 'firmware_url': 'http://fw/a'})


def test_no_input_pattern_anchors_with_a_dollar():
    """Every compiled pattern that validates input in the contract and the receiver ends with \\Z (or is used with fullmatch)."""
    from l3metal_receiver import api, media  # pylint: disable=import-outside-toplevel
    found = {}
    for module in (webhook, jobs, api, media):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found['%s.%s' % (module.__name__, name)] = value.pattern
    assert {'l3metal_contract.jobs.SERIAL_PATTERN', 'l3metal_contract.webhook.STEP_PATTERN', 'l3metal_receiver.media._BYTE_RANGE'} <= set(found)
    assert [name for name, pattern in found.items() if _anchors(pattern)] == []
    assert jobs.SERIAL_PATTERN.match('S1\n') is None and jobs.JOB_ID_PATTERN.match('j\n') is None
