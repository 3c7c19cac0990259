# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The media path check's split of a URL tail (``media._safe_relative``): a string split since issue 19, checked
against the pathlib rule it replaced on every short path over the characters that matter."""

from __future__ import annotations

import itertools
from pathlib import PurePosixPath

from l3metal_receiver.media import _safe_relative, public_media_path


def pathlib_rule(tail: str) -> tuple[str, ...] | None:
    """The rule as it was written with pathlib (before issue 19): the expected value, computed independently."""
    path = PurePosixPath(tail)
    if path.is_absolute() or not path.parts:
        return None
    for part in path.parts:
        if part in ('', '.', '..') or part.startswith('.') or '\\' in part or '\0' in part:
            return None
    return path.parts


def test_split_agrees_with_the_pathlib_rule_on_every_short_path():
    pieces = ['a', '/', '.', '..', 'b\\c', '\0', 'x.iso', '.h', 'jobs']
    checked = 0
    for length in range(1, 6):
        for combo in itertools.product(pieces, repeat=length):
            tail = ''.join(combo)
            assert _safe_relative(tail) == pathlib_rule(tail), tail
            checked += 1
    assert checked == sum(len(pieces) ** n for n in range(1, 6))


def test_split_keeps_what_a_bmc_asks_for_and_refuses_the_rest():
    assert _safe_relative('maintenance.iso') == ('maintenance.iso',)
    assert _safe_relative('isos//v2/./maintenance.iso') == ('isos', 'v2', 'maintenance.iso')  # as pathlib: empty and '.' dropped
    for unsafe in ('', '/', '/etc/passwd', '../data/receiver.sqlite3', 'a/../b', '.hidden', 'a/.git/config', 'a\\b', 'a\0b', './'):
        assert _safe_relative(unsafe) is None, unsafe
    assert public_media_path('maintenance.iso') == 'maintenance.iso'
