# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Log lines that clients cannot multiply: rate limits, and one WARNING line per malformed request.

A receiver on a management network meets port scanners, half-open connections, clients that hang up
in the middle of a body and BMCs with odd HTTP stacks.  None of that is the receiver's error, and none
of it may cost more than a line: aiohttp and asyncio log such events at ERROR with a traceback
(``Error handling request``, ``SSL handshake failed``); ``ClientErrorFilter`` turns those into one
WARNING line, at most ``CLIENT_LINES_PER_SECOND`` of them, and a resource limit (open files, the
connection limit, a full disk) is reported at most once per second (``RateLimitedLog``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
import typing as t

from aiohttp import http_exceptions

CLIENT_LINES_PER_SECOND = 10
CLIENT_LOGGER = logging.getLogger('l3metal_receiver.client')
# Loggers whose client-caused errors are turned into one line (aiohttp's protocol, asyncio's transports).
NOISY_LOGGERS = ('aiohttp.server', 'asyncio')


class RateLimitedLog:
    """At most ``burst`` lines per ``interval`` seconds; the first line after a quiet spell says how many were left out."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0, burst: int = 1, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.burst = burst
        self.clock = clock
        self._window = -float('inf')
        self._count = 0
        self._suppressed = 0
        self._lock = threading.Lock()  # the writer thread logs through one of these too

    def allow(self) -> int | None:
        """None when the line must be left out, else how many were left out before it."""
        with self._lock:
            now = self.clock()
            if now - self._window >= self.interval:
                self._window, self._count = now, 0
            if self._count >= self.burst:
                self._suppressed += 1
                return None
            self._count += 1
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed

    def log(self, level: int, message: str, *args: t.Any) -> bool:
        suppressed = self.allow()
        if suppressed is None:
            return False
        if suppressed:
            message += ' (and %d more like it left out of the log)'
            args = args + (suppressed,)
        self.logger.log(level, message, *args)
        return True


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, shortened: what a client sent may hold newlines and control characters."""
    flat = ' '.join(''.join(ch if ch.isprintable() else ' ' for ch in text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + '...'


def client_caused(exc: BaseException | None) -> bool:
    """Whether an exception comes from what a client sent or did (malformed HTTP, a connection it dropped, TLS garbage)."""
    return isinstance(exc, (http_exceptions.HttpProcessingError, ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, EOFError,
                            TimeoutError, asyncio.TimeoutError))


# The one budget for lines about clients' faults (malformed requests, bodies broken off, header timeouts, TLS garbage):
# every source shares it, so a flood costs at most CLIENT_LINES_PER_SECOND lines a second in all.
CLIENT_LOG = RateLimitedLog(CLIENT_LOGGER, 1.0, CLIENT_LINES_PER_SECOND)


class ClientErrorFilter(logging.Filter):
    """Rewrite an ERROR-with-traceback about a client's fault into one WARNING line on ``l3metal_receiver.client``,
    rate-limited; everything else (a real fault of the receiver) passes unchanged, traceback and all."""

    def __init__(self, limiter: RateLimitedLog | None = None) -> None:
        super().__init__()
        self.limiter = limiter or CLIENT_LOG

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else record.__dict__.get('exception')
        if not isinstance(exc, BaseException) or not client_caused(exc):
            return True
        message = '%s: %s: %s' % (one_line(record.getMessage(), 200), type(exc).__name__, one_line(str(exc)) or 'no detail')
        self.limiter.log(logging.WARNING, '%s', message)
        return False  # the original record (ERROR, traceback) is dropped


_INSTALLED: dict[str, ClientErrorFilter] = {}
_INSTALL_LOCK = threading.Lock()


def install_client_error_filter() -> ClientErrorFilter:
    """Put one ``ClientErrorFilter`` on each of ``NOISY_LOGGERS`` (idempotent: every app of the process shares it)."""
    with _INSTALL_LOCK:
        shared = _INSTALLED.get('filter') or ClientErrorFilter()
        _INSTALLED['filter'] = shared
        for name in NOISY_LOGGERS:
            logger = logging.getLogger(name)
            if shared not in logger.filters:
                logger.addFilter(shared)
        return shared
