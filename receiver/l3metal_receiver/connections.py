# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connections: how many, for how long, and what happens at the limits (docs/receiver.md, "Limits").

aiohttp gives an idle timeout (``keepalive_timeout``) and nothing else: no header timeout, no limit on
connections, and asyncio's accept loop logs a traceback for every ``accept()`` that fails with EMFILE.
This module adds, without touching the request path:

* ``ListeningSite``: its own accept loop per listening socket.  At ``max_connections`` it first closes
  the oldest idle keep-alive connection (as nginx reuses its keep-alive connections when it runs out),
  and when none is idle it stops accepting: new connections wait in the kernel's listen backlog
  (back-pressure, not refusal) until one closes.  ``accept()`` failing for lack of descriptors
  (EMFILE, ENFILE, ENOBUFS, ENOMEM) closes idle connections and retries within 0.1 s.  Each condition
  is logged at most once per second.
* ``ReceiverProtocol``: aiohttp's ``RequestHandler`` plus a header timeout (from a request's first byte
  to the end of its headers; also the TLS handshake), the send timeout (``TCP_USER_TIMEOUT``: a client
  that takes no data for that long is disconnected; one ``setsockopt`` per connection, nothing per
  write), and the idle/busy bookkeeping the limit needs (a request is busy from its first byte until
  its response is written; a long poll is busy while it waits).
* ``raise_open_file_limit``: the soft RLIMIT_NOFILE raised to the hard limit at start, and
  ``connection_limit`` derived from it when ``--max-connections`` is not given.

Body timeouts are the request handlers' (``api.read_body``).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import functools
import logging
import os
import re
import resource
import socket
import ssl
import typing as t

from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.web_protocol import RequestHandler

from .logs import CLIENT_LOG, RateLimitedLog
from .media import FastMedia, HeldFile, answer_head, plan_answer, range_answer, raw_socket, send_now, send_rest
from .registry.errors import API_VERSION, API_VERSION_HEADER
from .registry.layout import NAME_PATTERN as REGISTRY_NAME_PATTERN

LOG = logging.getLogger('l3metal_receiver.connections')

DEFAULT_HEADER_TIMEOUT = 10.0   # a BMC or node sends its headers in one packet; slowloris clients take forever
DEFAULT_IDLE_TIMEOUT = 75.0     # nginx's keepalive_timeout
DEFAULT_SEND_TIMEOUT = 60.0     # nginx's send_timeout: a client that reads nothing for a minute is gone
# TCP_NOTSENT_LOWAT: at most about this many bytes wait unsent in a connection's socket; sendfile(2) stops there and the
# socket reports writable again below it.  The window (what is sent and not yet acknowledged) is not limited by it.
# Without it a connection whose client reads slower than the receiver sends queues up to its whole send buffer (4 MiB)
# unsent, and each acknowledgement then sends from that queue in the acknowledging side's context: on loopback, the
# client's CPU (bench/receiver_media.py, docs/testing.md: 4 MiB random ranges on 8 connections ran 2x faster with it).
DEFAULT_NOTSENT_LOWAT = 32 << 10
_TCP_NOTSENT_LOWAT: int | None = getattr(socket, 'TCP_NOTSENT_LOWAT', None)  # Linux 3.12 and later, macOS
# Descriptors kept for everything but client connections: the database (2 connections x db, -wal, -shm), the
# listening sockets, the event loop, the log, standard streams, and headroom for the thread pool's work.
RESERVED_FILES = 64
# Each connection may hold two descriptors: its socket and the media file it is sending.
FILES_PER_CONNECTION = 2
_EXHAUSTED = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# An idle connection is closed to make room only once it has been idle this long: a connection accepted a moment ago
# whose request is still on its way is not taken for an idle one.
MIN_IDLE_TO_RECLAIM = 1.0
_RETRY_ACCEPT = 0.1
_REQUEST_TIMEOUT_RESPONSE = b'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'

# ------------------------------------------------------------------ the media fast path (docs/receiver.md, "Media")
# A request the fast path answers: GET or HEAD over HTTP/1.1 of /media/<path>, the path of unreserved characters only
# (no percent-encoding, no query, no empty or dot-led segment: aiohttp's URL handling cannot change it, and hidden
# files are 404 anyway), or of an embedded registry's blob, /v2/<name>/blobs/<digest> (the spec's name grammar, a
# sha256 or sha512 digest: the layout's), every header line a token, a colon and printable ASCII.  Anything else, and
# these headers, go to aiohttp untouched: a body (Content-Length, Transfer-Encoding), Expect, Upgrade, a Connection
# other than keep-alive, a header given twice, no Host.
_FAST_REQUEST_LINE = re.compile(r'(GET|HEAD) (/media/([A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*)|/v2/(?:%s)/blobs/(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}))'
                                r' HTTP/1\.1\r\n' % REGISTRY_NAME_PATTERN)
_FAST_MAX_HEAD = 8190       # aiohttp's max_line_size; a longer head without its end goes to aiohttp, which answers it
_FAST_MAX_HEADERS = 100
# What a header line may hold besides its end: bytes.translate() deletes them, leaving what is not allowed.
_FAST_LINE_BYTES = bytes(range(0x20, 0x7f)) + b'\t'
# The header lines (each with its CRLF): a token, a colon, printable ASCII and tabs, at most _FAST_MAX_HEADERS of them.
# Checked whole by one match, then split into name and value (without the spaces and tabs around it) by one findall:
# two passes in C per head instead of Python per line.  A bare CR or LF, a byte outside printable ASCII, obs-fold, a
# space before the colon or an empty line fails the match.  Both patterns are linear in the head's length (no lazy
# repetition before the trailing blanks, which a line of spaces would make quadratic).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_FAST_HEADER_LINES = re.compile(r'(?:%s:[\t\x20-\x7e]*\r\n){0,%d}\Z' % (_TOKEN, _FAST_MAX_HEADERS))
_FAST_HEADER_LINE = re.compile(r'(%s):[ \t]*((?:[\t\x20-\x7e]*[\x21-\x7e])?)[ \t]*\r\n' % _TOKEN)
# Headers after which the fast path does not answer: a body, or a change of the connection's course.
_FAST_REFUSED = frozenset(('content-length', 'transfer-encoding', 'expect', 'upgrade'))


class FastRequest(t.NamedTuple):
    method: str     # GET or HEAD
    target: str     # /media/...
    tail: str       # below /media/ ('' for a blob)
    digest: str     # a blob's digest ('' for a medium)
    headers: dict[str, str]  # by lower-case name


def fast_media_request(head: bytes) -> FastRequest | None:
    """``head`` (a request line and its header lines, without the empty line that ends them) as a request the fast
    path may answer, or None: aiohttp reads it."""
    text = head.decode('latin-1') + '\r\n'  # every byte one character; the patterns admit ASCII only
    match = _FAST_REQUEST_LINE.match(text)
    if match is None or '/.' in match[2]:
        return None
    lines = match.end()
    if _FAST_HEADER_LINES.match(text, lines) is None:
        return None
    pairs = _FAST_HEADER_LINE.findall(text, lines)
    headers = {name.lower(): value for name, value in pairs}
    if len(headers) != len(pairs) or 'host' not in headers or not _FAST_REFUSED.isdisjoint(headers):
        return None  # a header given twice, no Host (aiohttp's 400), a body, or a change of the connection's course
    connection = headers.get('connection')
    if connection is not None and connection.lower() != 'keep-alive':
        return None
    return FastRequest(match[1], match[2], match[3] or '', match[4] or '', headers)


class FastRequests:
    """``fast_media_request`` for one connection, remembering its last request: a BMC reads a CD in thousands of ranges
    on one connection, every request the same bytes but for the Range value, and parsing a head is about a quarter of
    what the fast path costs per range.

    The head without its Range value (the key; the header named ``Range`` or ``range``, as clients write it) is compared
    with the last one's: the same key means the same request line and the same other header lines, all already
    checked, and a value of printable ASCII cannot change whether the head is taken (its line is valid, its name the
    same), so the answer is the last request with the new Range value (the same object: what ``parse`` returns is valid
    until its next call).  Anything else is parsed whole (``fast_media_request``): the result is always the same
    (tests/unit/receiver/test_media_fast_requests.py compares the two on random sequences of heads)."""

    __slots__ = ('_key', '_request')

    def __init__(self) -> None:
        self._key = b''
        self._request: FastRequest | None = None

    def parse(self, head: bytes) -> FastRequest | None:
        at = head.find(b'\r\nRange:')
        if at < 0:
            at = head.find(b'\r\nrange:')
        if at < 0:
            self._key, self._request = b'', None
            return fast_media_request(head)
        start = at + 8
        end = head.find(b'\r\n', start)
        if end < 0:
            end = len(head)
        value = head[start:end]
        key = head[:start] + head[end:]
        last = self._request
        if last is not None and key == self._key and not value.translate(None, _FAST_LINE_BYTES):  # a valid line whatever the rest
            # the last request itself, with its new Range: a connection's requests are answered one after another
            # (``_serve_fast`` parses the next one once the last is sent and logged), so nothing reads it any more
            last.headers['range'] = value.strip(b' \t').decode('ascii')
            return last
        request = fast_media_request(head)
        self._key, self._request = (key, request) if request is not None else (b'', None)
        return request


@functools.lru_cache(maxsize=256)
def blob_headers(digest: str) -> bytes:
    """The header lines a blob's answer has besides a medium's (``answer_head``'s ``extra``), in the order aiohttp's path
    writes them: the blob handler's digest, then the registry's API version (``registry.handlers``)."""
    return ('Docker-Content-Digest: %s\r\n%s: %s\r\n' % (digest, API_VERSION_HEADER, API_VERSION)).encode('ascii')


class _LogHeaders(dict[str, str]):
    """A fast request's headers for the access logger: ``get`` takes any case (a log format's ``%{User-Agent}i``), as
    aiohttp's ``CIMultiDict`` does."""

    def get(self, name: str, default: t.Any = None) -> t.Any:
        return dict.get(self, name.lower(), default)


class _LoggedRequest:
    """What aiohttp's access logger reads of a request, for a request the fast path answered (made only when it logs)."""

    __slots__ = ('remote', 'method', 'path_qs', 'version', 'headers')

    def __init__(self, remote: str, request: FastRequest) -> None:
        self.remote = remote
        self.method = request.method
        self.path_qs = request.target
        self.version = HttpVersion11
        self.headers = _LogHeaders(request.headers)


class _LoggedResponse:
    __slots__ = ('status', 'body_length', 'headers')

    def __init__(self, status: int, body_length: int) -> None:
        self.status = status
        self.body_length = body_length
        self.headers = _LogHeaders()


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (capped at what the kernel allows); return (before, now)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY:
        try:
            with open('/proc/sys/fs/nr_open', encoding='ascii') as handle:
                target = int(handle.read().strip())
        except (OSError, ValueError):
            target = 1024 * 1024
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            LOG.warning('cannot raise the open-file limit from %d to %d: %s', soft, target, exc)
            return soft, soft
        return soft, target
    return soft, soft


def connection_limit(open_files: int, wanted: int | None = None) -> int:
    """The connection limit for ``open_files`` descriptors: ``wanted`` when they allow it, else what they allow."""
    allowed = max(1, (open_files - RESERVED_FILES) // FILES_PER_CONNECTION)
    if wanted is None:
        return allowed
    if wanted > allowed:
        LOG.warning('--max-connections %d needs %d open files, the limit is %d: using %d connections (raise LimitNOFILE= or ulimit -n)',
                    wanted, wanted * FILES_PER_CONNECTION + RESERVED_FILES, open_files, allowed)
        return allowed
    return wanted


class ConnectionLimiter:
    """Counts open connections, knows which are idle, and wakes the accept loops when there is room again."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.reclaimed = 0        # idle connections closed to make room
        self.waits = 0            # times accepting paused at the limit
        self.exhausted = 0        # accept() failures for lack of descriptors
        self._idle: collections.OrderedDict[ReceiverProtocol, float] = collections.OrderedDict()  # -> idle since (loop time)
        self._room = asyncio.Event()
        self.full_log = RateLimitedLog(LOG, 1.0)
        self.exhausted_log = RateLimitedLog(LOG, 1.0)

    @property
    def full(self) -> bool:
        return self.open >= self.limit

    @property
    def idle(self) -> int:
        return len(self._idle)

    def taken(self) -> None:
        self.open += 1

    def given_back(self) -> None:
        self.open -= 1
        self._room.set()

    def mark_idle(self, protocol: ReceiverProtocol, now: float) -> None:
        """``protocol``'s connection is idle since ``now`` (its loop's time)."""
        idle = self._idle
        idle[protocol] = now
        idle.move_to_end(protocol)  # the longest idle first (reclaim)
        if self.open >= self.limit:
            self._room.set()  # an accept loop waiting at the limit may now close this one to make room

    def mark_busy(self, protocol: ReceiverProtocol) -> None:
        self._idle.pop(protocol, None)

    def reclaim(self, count: int = 1) -> int:
        """Close up to ``count`` connections idle for at least ``MIN_IDLE_TO_RECLAIM`` s, the longest idle first; return how many."""
        closed = 0
        deadline = asyncio.get_running_loop().time() - MIN_IDLE_TO_RECLAIM
        while closed < count and self._idle:
            protocol, since = next(iter(self._idle.items()))
            if since > deadline:
                break
            del self._idle[protocol]
            protocol.force_close()
            closed += 1
        self.reclaimed += closed
        return closed

    async def wait_for_room(self, timeout: float) -> None:
        self._room.clear()
        try:
            await asyncio.wait_for(self._room.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def stats(self) -> dict[str, int]:
        return {'open': self.open, 'idle': self.idle, 'limit': self.limit, 'reclaimed': self.reclaimed, 'waits': self.waits,
                'exhausted': self.exhausted}


class ReceiverProtocol(RequestHandler):
    """aiohttp's protocol with a header timeout, a send timeout and idle/busy tracking for ``ConnectionLimiter``."""

    __slots__ = ('_limiter', '_header_timeout', '_send_timeout', '_notsent_lowat', '_header_timer', '_in_request', '_holds_slot',
                 '_client_log', '_fast', '_fast_buffer', '_fast_task', '_fast_file', '_fast_requests', '_socket')

    def __init__(self, manager: web.Server, *, loop: asyncio.AbstractEventLoop, limiter: ConnectionLimiter, header_timeout: float,
                 send_timeout: float, client_log: RateLimitedLog, fast_media: FastMedia | None = None,
                 notsent_lowat: int = DEFAULT_NOTSENT_LOWAT, **kwargs: t.Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        # The media fast path: while set, this connection's bytes are read here first (``_serve_fast``); None once they
        # go to aiohttp, for the rest of the connection.
        self._fast = fast_media
        self._fast_buffer = b''
        self._fast_requests = FastRequests()
        self._fast_task: asyncio.Task[None] | None = None
        # The file the last fast answer came from, kept open for this connection's next request of the same path
        # (``FastMedia.reuse``: a BMC reads one ISO in ranges on one connection); closed with the connection.
        self._fast_file: HeldFile | None = None
        self._socket: socket.socket | None = None
        self._limiter = limiter
        self._header_timeout = header_timeout
        self._send_timeout = send_timeout
        self._notsent_lowat = notsent_lowat
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_request = False
        self._holds_slot = True  # taken by the accept loop for this connection
        self._client_log = client_log

    def release_slot(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self._limiter.given_back()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info('socket')
        self._socket = raw_socket(sock)
        if self._socket is None:
            self._fast = None
        if sock is not None and self._send_timeout > 0 and hasattr(socket, 'TCP_USER_TIMEOUT'):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(self._send_timeout * 1000))
            except OSError:
                pass
        if sock is not None and self._notsent_lowat > 0 and _TCP_NOTSENT_LOWAT is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, self._notsent_lowat)
            except OSError:
                pass
        self._limiter.mark_idle(self, self._loop.time())

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_header_timer()
        self._fast_buffer = b''
        if self._fast_task is not None:
            self._fast_task.cancel()
        self._drop_fast_file()  # a cancelled send never touches it again
        self._limiter.mark_busy(self)
        self.release_slot()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._fast is not None:
            # no header timer for a request whose head is here whole (the usual case): _serve_fast starts it otherwise
            self._fast_buffer += data
            if self._fast_task is None:
                self._serve_fast()
            return
        if data and not self._in_request and self._header_timer is None:
            self._request_begins()
        super().data_received(data)

    def _request_begins(self) -> None:
        """The first bytes of a request: its headers must be complete within the header timeout."""
        self._limiter.mark_busy(self)
        if self._header_timeout > 0:
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_expired)

    def request_started(self) -> None:
        """Called by the app's middleware once a request's headers are read."""
        self._cancel_header_timer()
        self._in_request = True
        self._limiter.mark_busy(self)

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse, time: float | None) -> None:
        """Called by aiohttp once a response is written (every response, error ones included): idle again."""
        super().log_access(request, response, time)
        self._in_request = False
        if self.transport is not None:
            self._limiter.mark_idle(self, self._loop.time())

    # -------------------------------------------------------------- the media fast path

    def _serve_fast(self) -> None:
        """Answer the complete requests at the start of the buffer that the fast path may answer, until one it may not
        (that one and everything after it go to aiohttp), an incomplete one (wait for more), or one whose body waits for
        the socket (its task goes on from here when it is sent)."""
        fast = self._fast
        while fast is not None and self._fast_buffer:
            if self._force_close or self._close or self.transport is None:
                self._fast_buffer = b''
                return
            buffer = self._fast_buffer
            end = buffer.find(b'\r\n\r\n')
            if end < 0:
                if len(buffer) > _FAST_MAX_HEAD:
                    self._hand_over()
                elif not self._in_request and self._header_timer is None:
                    self._request_begins()
                return
            request = self._fast_requests.parse(buffer[:end])
            opened = self._open_fast(fast, request) if request is not None else None
            if request is None or opened is None:
                self._hand_over()
                return
            self._fast_buffer = buffer[end + 4:]
            if not self._answer_fast(request, *opened):
                return
            fast = self._fast

    def _open_fast(self, fast: FastMedia, request: FastRequest) -> tuple[int, os.stat_result] | None:
        """The file ``request`` asks for and its stat: the held one when it is still what the path names, else opened
        anew (and held); None when the fast path does not serve it (aiohttp's path then answers)."""
        held = self._fast_file
        if held is not None:
            if held.target == request.target:
                st = fast.reuse(held)
                if st is not None:
                    return held.fd, st
            self._drop_fast_file()
        held = self._fast_file = fast.hold(request.target, request.tail, request.digest)
        return None if held is None else (held.fd, held.st)

    def _drop_fast_file(self) -> None:
        held, self._fast_file = self._fast_file, None
        if held is not None:
            os.close(held.fd)

    def _hand_over(self) -> None:
        """From here on aiohttp reads this connection, starting with the bytes the fast path holds."""
        self._fast = None
        self._drop_fast_file()
        data, self._fast_buffer = self._fast_buffer, b''
        if data and not self._in_request and self._header_timer is None:
            self._request_begins()
        if data:
            super().data_received(data)

    def _answer_fast(self, request: FastRequest, source: int, st: t.Any) -> bool:
        """Answer ``request`` with the open file ``source`` (a descriptor, the held one: ``_open_fast``; ``st`` its
        stat) as ``MediaResponse`` would; True when it is all sent, False when a task sends the rest (or the connection
        is closed)."""
        # request_started(), without its calls (this runs once per range a BMC reads: no t.cast() either)
        if self._header_timer is not None:
            self._cancel_header_timer()
        self._in_request = True
        self._limiter.mark_busy(self)
        loop = self._loop
        started = loop.time() if self._logging_enabled else 0.0
        self._request_count += 1
        if self._manager is not None:
            self._manager.requests_count += 1
        transport: t.Any = self.transport  # a plain TCP transport (connection_made; None once lost: then the send raises)
        offset = end = 0
        logged = (200, 0)
        try:
            extra = blob_headers(request.digest) if request.digest else b''
            ranged = range_answer(st, request.headers, extra) if request.method == 'GET' else None
            if ranged is not None:  # the next range of a CD: plan_answer's 206 made in one step
                head, offset, length = ranged
                logged, end = (206, 0), offset + length
            else:
                plan = plan_answer(st, request.headers)
                head = answer_head(plan, extra)
                if request.method == 'HEAD' or not plan.body_bytes:
                    # aiohttp's access log says the bytes its writer wrote: the headers, or nothing when sendfile(2) took them
                    logged = (plan.status, len(head))
                    transport.write(head)
                else:
                    logged = (plan.status, 0)
                    offset, end = plan.first, plan.first + plan.body_bytes
            if end:  # a body (end is past its first byte): the headers with it
                offset = send_now(transport, self._socket, source, offset, end, head)  # type: ignore[arg-type]  # set with _fast
        except BaseException as exc:
            self._drop_fast_file()
            self._fast_failed(request, exc, started, logged)
            if not isinstance(exc, Exception):
                raise
            return False
        if offset < end:
            self._request_in_progress = True  # aiohttp's shutdown waits for it, as for a handler
            self._fast_task = loop.create_task(self._send_rest_fast(request, source, logged, offset, end, started))
            return False
        self._fast_answered(request, logged, started)
        return True

    async def _send_rest_fast(self, request: FastRequest, source: int, logged: tuple[int, int], offset: int, end: int,
                              started: float) -> None:
        try:
            try:
                await send_rest(t.cast(asyncio.Transport, self.transport), source, offset, end)
            except BaseException:
                self._drop_fast_file()  # failed or cancelled (the connection is gone): nothing more is read of it
                raise
            finally:
                self._fast_task = None
                self._request_in_progress = False
                if self._handler_waiter is not None and not self._handler_waiter.done():
                    self._handler_waiter.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught  # as aiohttp: logged, the connection closed
            self._fast_failed(request, exc, started, logged)
            return
        self._fast_answered(request, logged, started)
        self._serve_fast()

    def _fast_answered(self, request: FastRequest, logged: tuple[int, int], started: float) -> None:
        """What aiohttp does once a response is written: the access log, idle again, the keep-alive timer."""
        if self._logging_enabled and self.access_logger is not None:
            self._log_fast(request, logged, started)
        self._in_request = False
        if self.transport is None:
            self._drop_fast_file()
            return
        loop = self._loop
        now = loop.time()
        self._limiter.mark_idle(self, now)
        if self._keepalive and not self._close and not self._force_close:
            close_time = now + self._keepalive_timeout
            self._next_keepalive_close_time = close_time
            if self._keepalive_handle is None:
                self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)

    def _fast_failed(self, request: FastRequest, exc: BaseException, started: float, logged: tuple[int, int] = (200, 0)) -> None:
        """The client went away mid-answer (logged as aiohttp logs it), or the file failed us: the connection is closed."""
        if isinstance(exc, ConnectionError):
            if self._logging_enabled and self.access_logger is not None:
                self._log_fast(request, logged, started)
        elif isinstance(exc, Exception):
            self.log_exception('Error handling request', exc_info=exc)
        self._in_request = False
        self._drop_fast_file()
        self.force_close()

    def _log_fast(self, request: FastRequest, logged: tuple[int, int], started: float) -> None:
        assert self.access_logger is not None
        peer = self.transport.get_extra_info('peername') if self.transport is not None else None
        remote = str(peer[0]) if isinstance(peer, (list, tuple)) else str(peer)
        self.access_logger.log(t.cast(web.BaseRequest, _LoggedRequest(remote, request)), t.cast(web.StreamResponse, _LoggedResponse(*logged)),
                               self._loop.time() - started)

    def _process_keepalive(self) -> None:
        if self._fast_task is not None:  # a fast answer is being sent: not idle (aiohttp sees its own task waiting)
            self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout
            self._keepalive_handle = self._loop.call_at(self._next_keepalive_close_time, self._process_keepalive)
            return
        super()._process_keepalive()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self._in_request or self.transport is None:
            return
        peer = self.transport.get_extra_info('peername')
        self._client_log.log(logging.WARNING, 'closed a connection from %s: its request headers took more than %g s (the header timeout)',
                             peer[0] if isinstance(peer, tuple) else peer, self._header_timeout)
        try:
            self.transport.write(_REQUEST_TIMEOUT_RESPONSE)
        except (OSError, RuntimeError):
            pass
        self.force_close()


class _Listening(asyncio.AbstractServer):
    """What aiohttp's runner expects of a site's server: its sockets (``runner.addresses``) and ``close()``."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self._sockets = sockets

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def is_serving(self) -> bool:
        return bool(self._sockets)

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        raise NotImplementedError

    async def wait_closed(self) -> None:
        return None


class ListeningSite(web.BaseSite):
    """A TCP site (``host``, ``port``, optional TLS) whose accept loop enforces the connection limit."""

    __slots__ = ('_host', '_port', '_handler_args', 'limiter', '_header_timeout', '_send_timeout', '_notsent_lowat', '_tasks',
                 '_pending', '_client_log', '_fast_media')

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, handler_args: t.Mapping[str, t.Any], limiter: ConnectionLimiter,
                 header_timeout: float = DEFAULT_HEADER_TIMEOUT, send_timeout: float = DEFAULT_SEND_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None, backlog: int = 4096, fast_media: FastMedia | None = None,
                 notsent_lowat: int = DEFAULT_NOTSENT_LOWAT) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._handler_args = dict(handler_args)  # the same keyword arguments the runner gave aiohttp's own protocol
        self.limiter = limiter
        self._header_timeout = header_timeout
        self._send_timeout = send_timeout
        self._notsent_lowat = notsent_lowat
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._client_log = CLIENT_LOG
        self._fast_media = fast_media if ssl_context is None else None  # under TLS the bytes are the TLS layer's: aiohttp alone

    @property
    def name(self) -> str:
        return '%s://%s:%d' % ('https' if self._ssl_context else 'http', self._host, self._port)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        sockets = await _listening_sockets(loop, self._host, self._port, self._backlog)
        self._server = _Listening(sockets)
        self._tasks = [loop.create_task(self._accept_loop(sock)) for sock in sockets]

    async def stop(self) -> None:
        for task in self._tasks + list(self._pending):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._pending, return_exceptions=True)
        self._tasks = []
        await super().stop()

    def _protocol(self, holder: list[ReceiverProtocol]) -> ReceiverProtocol:
        server = self._runner.server
        assert server is not None
        protocol = ReceiverProtocol(server, loop=asyncio.get_running_loop(), limiter=self.limiter, header_timeout=self._header_timeout,
                                    send_timeout=self._send_timeout, client_log=self._client_log, fast_media=self._fast_media,
                                    notsent_lowat=self._notsent_lowat, **self._handler_args)
        holder.append(protocol)
        return protocol

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        limiter = self.limiter
        # asyncio's selector loops make a socket's transport with this (private; connect_accepted_socket's path without
        # the task and future); other event loops, and TLS, go through connect_accepted_socket
        make_transport = getattr(loop, '_make_socket_transport', None) if isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop) else None
        while True:
            if limiter.full:
                if not limiter.reclaim(1):
                    limiter.waits += 1
                    limiter.full_log.log(logging.WARNING, 'connection limit reached: %d connections open, none idle for %g s '
                                         '(--max-connections %d); new connections wait in the listen backlog',
                                         limiter.open, MIN_IDLE_TO_RECLAIM, limiter.limit)
                # until a connection closes (the one just closed, or another) or one becomes idle; at most a second
                await limiter.wait_for_room(MIN_IDLE_TO_RECLAIM)
                continue
            try:
                # returns without a loop iteration while connections wait in the backlog: several per wake-up already
                conn, address = await loop.sock_accept(sock)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    limiter.exhausted += 1
                    freed = limiter.reclaim(8)
                    limiter.exhausted_log.log(logging.ERROR, 'cannot accept connections: %s (%d connections open; closed %d idle ones); '
                                              'retrying every %g s', exc.strerror, limiter.open, freed, _RETRY_ACCEPT)
                    await limiter.wait_for_room(_RETRY_ACCEPT)
                    continue
                if exc.errno in (errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                limiter.exhausted_log.log(logging.ERROR, 'accept() failed: %s; retrying', exc)
                await asyncio.sleep(_RETRY_ACCEPT)
                continue
            limiter.taken()
            if self._ssl_context is None and make_transport is not None:
                self._connect_plain(make_transport, conn, address)
                continue
            task = loop.create_task(self._connect(loop, conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _connect_plain(self, make_transport: t.Callable[..., asyncio.Transport], conn: socket.socket, address: t.Any) -> None:
        """A plain-TCP connection's transport, made at once (what ``connect_accepted_socket`` does without its task, its
        waiter future and the loop iterations they cost: about a tenth of a webhook's time on a new connection); the
        transport calls ``connection_made`` on the next loop iteration, as asyncio's own servers do."""
        holder: list[ReceiverProtocol] = []
        try:
            conn.setblocking(False)
            make_transport(conn, self._protocol(holder), extra={'peername': address})
        except Exception as exc:  # pylint: disable=broad-exception-caught  # as _connect: one warning, the slot given back
            if holder:
                holder[0].release_slot()
            else:
                self.limiter.given_back()
            conn.close()
            self._client_log.log(logging.WARNING, 'connection not set up: %s: %s', type(exc).__name__, exc)

    async def _connect(self, loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
        holder: list[ReceiverProtocol] = []
        try:
            conn.setblocking(False)
            if self._ssl_context is not None:
                await loop.connect_accepted_socket(functools.partial(self._protocol, holder), conn, ssl=self._ssl_context,
                                                   ssl_handshake_timeout=self._header_timeout or None)
            else:
                await loop.connect_accepted_socket(functools.partial(self._protocol, holder), conn)
        except BaseException as exc:
            if holder:
                holder[0].release_slot()
            else:
                self.limiter.given_back()
            conn.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
            if isinstance(exc, Exception):
                self._client_log.log(logging.WARNING, 'connection not set up: %s: %s', type(exc).__name__, exc)


async def _listening_sockets(loop: asyncio.AbstractEventLoop, host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for ``host`` (as ``loop.create_server`` makes them: SO_REUSEADDR, IPv6 only on IPv6)."""
    infos = await loop.getaddrinfo(host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys((info[0], info[1], info[2], info[3], info[4]) for info in infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, 'IPPROTO_IPV6'):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(exc.errno, 'cannot listen on %s port %s: %s' % (address[0], port, (exc.strerror or str(exc)).lower())) from None
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
