# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write environment files in the grammar of systemd's ``EnvironmentFile=`` (not the shell's).

systemd parses ``KEY="value"`` like this: inside double quotes a backslash escapes only ``"``, ``\\``,
backquote and ``$`` (before any other character the backslash is kept), a newline is part of the value,
and nothing is expanded.  Every value is therefore written double-quoted with exactly those four
characters escaped, which keeps spaces, quotes, newlines, tabs, ``$`` and backslashes intact.
``tests/integration/maintenance_os`` proves it with a real systemd reading such a file.

podman's ``--env-file`` has a grammar of its own, so Quadlet units read this file with
``[Service] EnvironmentFile=`` (systemd) and hand single variables to podman by name.
"""

from __future__ import annotations

import re
import typing as t

KEY_PATTERN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_NEEDS_ESCAPE = re.compile(r'(["\\`$])')


def quote_value(value: str) -> str:
    """``value`` as a double-quoted systemd environment-file value."""
    if '\0' in value:
        raise ValueError('environment values cannot contain NUL characters')
    value.encode('utf-8')  # systemd drops values that are not valid UTF-8; surrogates fail here first
    return '"' + _NEEDS_ESCAPE.sub(r'\\\1', value) + '"'


def render(variables: t.Mapping[str, str], header: str = '') -> str:
    """The file's text: an optional comment header, then one ``KEY="value"`` assignment per variable."""
    lines = ['# ' + line for line in header.splitlines()]
    for key, value in variables.items():
        if not KEY_PATTERN.match(key):
            raise ValueError('%r is not a valid environment variable name' % key)
        lines.append('%s=%s' % (key, quote_value(value)))
    return '\n'.join(lines) + '\n'
