# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one retry policy: bounded attempts, exponential backoff with jitter, ``Retry-After`` honoured.

Every client of the collection that retries uses it: the node's webhook sender, the Redfish
connection, the receiver client of the ``provision_job*`` modules and the firmware download of the
flasher step.  What is worth retrying stays the caller's decision (a 409 is final for one API and
"already delivered" for another); how long to wait between attempts is decided here, once.

The wait before retry ``n`` (0-based) is ``min(backoff * factor**n, max_delay)``, drawn uniformly
from its upper ``jitter`` part (``jitter=0.5``: between half and all of it) so that a thousand nodes
retrying after one outage do not arrive together.  A server's ``Retry-After`` (seconds or an HTTP
date) replaces the computed wait, capped at ``max_delay``.
"""

from __future__ import annotations

import email.utils
import random
import time
import typing as t
from dataclasses import dataclass, field, replace


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= 10:  # no "²", no 5,000-digit values
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all (so ``attempts - 1`` retries); ``sleep`` and ``random`` are injectable for tests."""

    attempts: int = 4
    backoff: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.5
    sleep: t.Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    random: t.Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError('attempts must be at least 1, not %r' % self.attempts)
        if self.backoff < 0 or self.max_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError('backoff and max_delay must not be negative, jitter must be within 0..1')

    @property
    def retries(self) -> int:
        return self.attempts - 1

    def with_attempts(self, attempts: int) -> RetryPolicy:
        return replace(self, attempts=attempts)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based: after the first failed try)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        ceiling = min(self.backoff * (self.factor ** attempt), self.max_delay)
        return ceiling * (1 - self.jitter) + ceiling * self.jitter * self.random()

    def wait(self, attempt: int, retry_after: float | None = None) -> None:
        self.sleep(self.delay(attempt, retry_after))

    def should_retry(self, attempt: int) -> bool:
        """Whether try number ``attempt`` (0-based) may be followed by another."""
        return attempt + 1 < self.attempts
