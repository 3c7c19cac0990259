# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Poll with a deadline."""

from __future__ import annotations

import time
import typing as t

T = t.TypeVar('T')


class Timeout(AssertionError):
    """The condition did not become true before the deadline."""


def wait_for(condition: t.Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = 'condition') -> T:
    """Call ``condition`` until it returns something truthy and return that; raise ``Timeout`` after
    ``timeout`` seconds, naming ``what`` and the last exception the condition raised, if any."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-exception-caught
            last_error = exc
        if time.monotonic() >= deadline:
            detail = ' (last error: %r)' % last_error if last_error else ''
            raise Timeout('%s not reached within %.1f s%s' % (what, timeout, detail))
        time.sleep(interval)
