# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""receiver/l3metal_receiver/server.py's command line: ``--notsent-lowat`` (what the kernel does with it:
tests/integration/receiver/test_limits.py)."""

from __future__ import annotations

import pytest

from l3metal_receiver.connections import DEFAULT_NOTSENT_LOWAT
from l3metal_receiver.server import Settings, parse_args


@pytest.fixture(name='dirs')
def fixture_dirs(tmp_path):
    return ['--data-dir', str(tmp_path / 'data'), '--media-dir', str(tmp_path / 'media')]


def test_notsent_lowat_is_32_kib_unless_given(dirs, tmp_path):
    assert DEFAULT_NOTSENT_LOWAT == 32 << 10
    assert parse_args(dirs).notsent_lowat == DEFAULT_NOTSENT_LOWAT == Settings('127.0.0.1', 0, tmp_path, tmp_path).notsent_lowat
    assert parse_args(dirs + ['--notsent-lowat', '0']).notsent_lowat == 0
    assert parse_args(dirs + ['--notsent-lowat', '16384']).notsent_lowat == 16384
    assert parse_args(dirs + ['--notsent-lowat', str(1 << 30)]).notsent_lowat == 1 << 30


@pytest.mark.parametrize('value', ['-1', '128k', '1.5', '', ' 5', str((1 << 30) + 1), '99999999999', '１２'])
def test_a_bad_notsent_lowat_is_refused_naming_the_option(dirs, capsys, value):
    with pytest.raises(SystemExit) as stop:
        parse_args(dirs + ['--notsent-lowat', value])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert '--notsent-lowat' in err and 'whole number of bytes from 0 to 1073741824' in err, err
