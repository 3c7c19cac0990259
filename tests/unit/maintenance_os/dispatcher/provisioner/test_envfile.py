# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""recipe.env quoting (a real systemd parses it in tests/integration/maintenance_os/systemd)."""

from __future__ import annotations

import pytest

from provisioner import envfile


@pytest.mark.parametrize('value,quoted', [
    ('plain', '"plain"'),
    ('with space', '"with space"'),
    ('say "hi"', '"say \\"hi\\""'),
    ('$HOME and ${X}', '"\\$HOME and \\${X}"'),
    ('back\\slash', '"back\\\\slash"'),
    ('`cmd`', '"\\`cmd\\`"'),
    ("it's", '"it\'s"'),
    ('two\nlines', '"two\nlines"'),
    ('', '""'),
])
def test_quote_value(value, quoted):
    assert envfile.quote_value(value) == quoted


def test_render_keeps_order_and_rejects_bad_names():
    assert envfile.render({'B': '1', 'A': 'x y'}, 'head\nline') == '# head\n# line\nB="1"\nA="x y"\n'
    with pytest.raises(ValueError, match='not a valid environment variable name'):
        envfile.render({'1BAD': 'x'})
    with pytest.raises(ValueError, match='NUL'):
        envfile.quote_value('a\0b')
