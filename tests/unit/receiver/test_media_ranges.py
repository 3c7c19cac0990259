# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Range headers: the one-match reading of the form virtual-media clients send (``bytes=<first>-<last>``) gives what
the general reading gives, on every input; the answers themselves against nginx's: tests/integration/receiver/test_media.py."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from l3metal_receiver import media
from l3metal_receiver.media import Unsatisfiable, parse_range


def _answer(reader, header: str, size: int):
    try:
        return reader(header, size)
    except Unsatisfiable:
        return 'unsatisfiable'


_NUMBERS = st.one_of(st.integers(0, 2 ** 70), st.sampled_from([0, 1, 9, 10 ** 17, 10 ** 18 - 1, 10 ** 18, 2 ** 63 - 1, 2 ** 63]))
_SIMPLE_LOOKING = st.builds(lambda first, last, lead, trail: '%sbytes=%s-%s%s' % (lead, first, last, trail), _NUMBERS, _NUMBERS,
                            st.sampled_from(['', ' ', '\t']), st.sampled_from(['', ' ', ',', ',0-1', '\n']))
_ANY = st.text(alphabet='bytesBYTES=-,0123456789 \t٣', max_size=30)


@settings(max_examples=3000, deadline=None)
@given(header=st.one_of(_SIMPLE_LOOKING, _ANY), size=st.one_of(st.integers(0, 2 ** 64), st.sampled_from([0, 1, 10, 10 ** 18])))
@example(header='bytes=0-0', size=0)
@example(header='bytes=5-2', size=10)
@example(header='bytes=10-20', size=10)
@example(header='bytes=9-20', size=10)
@example(header='bytes=999999999999999999-999999999999999999', size=10 ** 18)
def test_the_one_match_reading_agrees_with_the_general_one(header, size):
    assert _answer(parse_range, header, size) == _answer(media._parse_range, header, size)


@pytest.mark.parametrize('header, size, expected', [
    ('bytes=0-1048575', 4 << 20, (0, 1048575)),
    ('bytes=1048576-9999999', 2 << 20, (1048576, (2 << 20) - 1)),   # clamped to the file
    ('bytes=5-2', 10, 'unsatisfiable'),
    ('bytes=10-20', 10, 'unsatisfiable'),
    ('bytes=0-0', 0, 'unsatisfiable'),
    ('bytes=1234567890123456789-1234567890123456789', 10, 'unsatisfiable'),  # 19 digits: the general reading
    (' bytes=0-9', 100, (0, 9)),
    ('Bytes=0-9', 100, (0, 9)),
    ('bytes=0-9,20-29', 100, None),
    ('bytes=٣-9', 100, 'unsatisfiable'),
])
def test_what_both_readings_answer(header, size, expected):
    assert _answer(parse_range, header, size) == expected


# ------------------------------------------------------------------ a BMC's next range in one step

_HEADER_VALUES = {
    'range': st.one_of(st.builds(lambda first, length: 'bytes=%d-%d' % (first, first + length), st.integers(0, 2 ** 34), st.integers(-5, 2 ** 24)),
                       st.sampled_from(['bytes=0-0', 'bytes=5-', 'bytes=-5', 'bytes=0-9,20-29', ' bytes=0-9', 'Bytes=0-9', 'items=0-9'])),
    'if-range': st.sampled_from(['"x"', 'W/"x"', 'Thu, 01 Jan 1970 00:00:01 GMT', 'junk']),
    'if-match': st.sampled_from(['*', '"x"']),
    'if-none-match': st.sampled_from(['*', '"x"']),
    'if-modified-since': st.sampled_from(['Thu, 01 Jan 1970 00:00:01 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'junk']),
    'if-unmodified-since': st.sampled_from(['Thu, 01 Jan 1970 00:00:01 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT']),
    'host': st.just('bmc'),
}
_REQUEST_HEADERS = st.fixed_dictionaries({'host': st.just('bmc'), 'range': _HEADER_VALUES['range']},
                                         optional={name: value for name, value in _HEADER_VALUES.items() if name not in ('host', 'range')})


class _Stat:
    def __init__(self, size: int, mtime_ns: int) -> None:
        self.st_size, self.st_mtime_ns, self.st_mtime = size, mtime_ns, mtime_ns / 1e9


def _planned(stat, headers, extra):
    plan = media.plan_answer(stat, headers)
    return plan.status, media.answer_head(plan, extra), plan.first, plan.body_bytes


@settings(max_examples=3000, deadline=None)
@given(headers=st.one_of(_REQUEST_HEADERS, st.fixed_dictionaries({'host': st.just('bmc'), 'range': _HEADER_VALUES['range']})),
       size=st.one_of(st.integers(0, 2 ** 35), st.sampled_from([0, 1, 1 << 20])),
       mtime_ns=st.integers(0, 2 ** 62), extra=st.sampled_from([b'', b'Docker-Content-Digest: sha256:00\r\n']))
def test_the_one_step_answer_is_what_plan_answer_and_answer_head_give(headers, size, mtime_ns, extra):
    stat = _Stat(size, mtime_ns)
    ranged = media.range_answer(stat, headers, extra)
    if ranged is not None:  # the Date header is the same second in both (its cache is per second): compared whole
        status, head, first, length = _planned(stat, headers, extra)
        if head != ranged[0]:  # the second changed between the two: once more
            status, head, first, length = _planned(stat, headers, extra)
            ranged = media.range_answer(stat, headers, extra)
        assert (206, ranged[0], ranged[1], ranged[2]) == (status, head, first, length)


def test_the_one_step_answer_is_given_and_left_to_the_plan_when_it_should_be():
    """The negative controls of the test above: the one-step answer exists for a plain range (so the comparison is
    not empty), and is None for every request plan_answer answers otherwise or decides with a header it does not read."""
    stat = _Stat(1 << 20, 10 ** 18)
    assert media.range_answer(stat, {'host': 'bmc', 'range': 'bytes=0-9'}) is not None
    for headers in ({'range': 'bytes=10-5'}, {'range': 'bytes=%d-' % (1 << 21) + '9' * 7}, {'range': 'bytes=0-9', 'if-range': '"x"'},
                    {'range': 'bytes=0-9', 'if-none-match': '*'}, {'range': 'bytes=0-9', 'if-match': '"x"'}, {'range': 'bytes=0-9,20-29'},
                    {'range': 'bytes=0-9', 'if-modified-since': 'junk'}, {'range': 'bytes=0-9', 'if-unmodified-since': 'junk'}, {}):
        assert media.range_answer(stat, dict(headers, host='bmc')) is None, headers
