# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Media for BMCs: the maintenance ISO and the per-job task media, with Range, HEAD and ETag.

``MediaResponse`` is an aiohttp ``StreamResponse`` whose body goes out with ``loop.sendfile()``
(``sendfile(2)`` on plain HTTP; asyncio falls back to reads for TLS).  It is not aiohttp's
``FileResponse`` because that one stats, opens and closes the file through the thread pool: two
thread hand-offs per request, which halved the throughput of BMC-style Range reads compared with
nginx.  Media are local files: opening one is a few microseconds, done on the event loop.

The HTTP rules, so that BMC virtual-media clients see what they see from nginx:

* conditional requests in RFC 9110 order: ``If-Match``/``If-Unmodified-Since`` (412), then
  ``If-None-Match``/``If-Modified-Since`` (304); the entity tag is ``"<mtime ns hex>-<size hex>"``;
* ``If-Range`` with an entity tag (strong comparison) or a date: a changed file is sent whole;
* a Range header read as RFC 9110 says and as nginx does: ``bytes=-0``, ``bytes=5-2`` and other
  malformed byte ranges are 416 with ``Content-Range: bytes */<size>``; an unknown unit or an empty
  ``bytes=`` is ignored (200); several ranges are answered with the whole file (200, allowed by
  RFC 9110 section 14.2) instead of ``multipart/byteranges``, which virtual-media clients do not use;
* ``Accept-Encoding`` is ignored: a ``.gz`` file next to an ISO is never sent instead of it.

What is served: only a regular file whose resolved location (symlinks followed) lies beneath the root
of its route (the media directory without ``jobs/``, or the one job's directory), never a hidden one;
anything else is 404.  Per-job directories are group-writable by design, so a symlink placed there (to
the database's WAL file, to another job's medium, to a FIFO or a device) must not be followed out.  The
check is done once per request on the file actually opened (``open_regular_file``): the path is opened
with ``O_PATH`` (which follows links but opens nothing: no FIFO blocks, no device acts), checked with
``fstat`` and the kernel's own name for it (``/proc/self/fd``), and only then reopened for reading
through that descriptor, so no rename or link swapped in between can change what is sent.  The send
itself is ``sendfile(2)`` until the socket buffer is full, then a wait for writability (``_send_file``).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import math
import os
import re
import socket
import stat
import time
import typing as t

from aiohttp import hdrs, web
from aiohttp.helpers import parse_http_date, rfc822_formatted_time  # what aiohttp's request.if_modified_since and its Date use
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_response import REASON_PHRASES

from .service import JOBS_MEDIA_DIR

if t.TYPE_CHECKING:  # the registry imports this module
    from .registry.layout import Layout

# ASCII digits ("\\d" also matches other scripts' digits, which int() accepts: "bytes=٣-" would be byte 3), at most
# 19 of them: more cannot be a file offset (nginx answers 416 for an offset that overflows off_t, so do we).
_BYTE_RANGE = re.compile(r'^([0-9]*)-([0-9]*)\Z')
_MAX_OFFSET_DIGITS = 19
_MAX_OFFSET = 2 ** 63 - 1
_ETAGS = re.compile(r'(W/)?("[^"]*"|\*)')


class Unsatisfiable(Exception):
    """The Range header names no byte of the file (416)."""


# The form virtual-media clients send (one range, both ends, no blanks), read by one match; at most 18 digits, so that
# neither end can exceed _MAX_OFFSET.  Every other form goes through the general reading below, which gives the same
# answer for this one (tests/unit/receiver/test_media_ranges.py compares them).
_SIMPLE_RANGE = re.compile(r'bytes=([0-9]{1,18})-([0-9]{1,18})\Z')


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte a Range header asks for, None to send the whole file, or
    ``Unsatisfiable``."""
    simple = _SIMPLE_RANGE.match(header)
    if simple is None:
        return _parse_range(header, size)
    return _simple_span(simple, size)


def _simple_span(simple: re.Match[str], size: int) -> tuple[int, int]:
    """``parse_range`` for a header ``_SIMPLE_RANGE`` matched (``simple``): the span, or ``Unsatisfiable``."""
    first, last = int(simple[1]), int(simple[2])
    if last < first or first >= size:
        raise Unsatisfiable(simple.string)
    return first, last if last < size else size - 1


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``parse_range`` for every form of the header."""
    value = header.strip()
    if not value.lower().startswith('bytes='):
        return None  # another unit: ignored
    spec = value[len('bytes='):].strip()
    if not spec or ',' in spec:
        return None  # empty, or several ranges: the whole file
    match = _BYTE_RANGE.fullmatch(spec)
    if not match or (not match.group(1) and not match.group(2)):
        raise Unsatisfiable(header)
    first, last = match.group(1), match.group(2)
    if len(first) > _MAX_OFFSET_DIGITS or len(last) > _MAX_OFFSET_DIGITS or int(first or 0) > _MAX_OFFSET or int(last or 0) > _MAX_OFFSET:
        raise Unsatisfiable(header)
    if not first:  # suffix: the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(0, size - length), size - 1
    start = int(first)
    if (last and int(last) < start) or start >= size:
        raise Unsatisfiable(header)
    return start, min(int(last), size - 1) if last else size - 1


@functools.lru_cache(maxsize=64)
def _http_date(seconds: int) -> str:
    """Last-Modified for ``seconds`` (what aiohttp's ``last_modified`` setter writes), formatted once per file version."""
    return time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(seconds))


def _tags(header: str) -> list[tuple[bool, str]]:
    return [(bool(weak), tag) for weak, tag in _ETAGS.findall(header)]


def _tag_matches(header: str, etag: str, weak: bool) -> bool:
    return any(tag == '*' or (tag == etag and (weak or not is_weak)) for is_weak, tag in _tags(header))


class MediaResponse(web.StreamResponse):
    """A file from the media directory, already open (``open_regular_file``); ``st`` is its ``fstat``.  The file is
    closed when the response is done, whatever its status."""

    # aiohttp >= 3.12 keeps the serialized headers until the first body write instead of sending them at once: a body
    # sent by sendfile(2) takes them (``_take_headers``) so that they leave in the body's first TCP segment.
    _send_headers_immediately = False

    def __init__(self, handle: t.BinaryIO, st: os.stat_result) -> None:
        super().__init__(headers={hdrs.CONTENT_TYPE: 'application/octet-stream', hdrs.CACHE_CONTROL: 'no-cache',
                                  hdrs.ACCEPT_RANGES: 'bytes'})
        self._handle = handle
        self._stat = st

    async def prepare(self, request: web.BaseRequest) -> t.Any:
        if self.prepared:
            return await super().prepare(request)
        try:
            return await self._prepare(request)
        finally:
            self._handle.close()

    async def _prepare(self, request: web.BaseRequest) -> t.Any:
        plan = plan_answer(self._stat, request.headers)
        for name, value in plan.headers:
            self.headers[name] = value
        self.set_status(plan.status)
        if plan.content_length is not None:
            self.content_length = plan.content_length
        writer = await super().prepare(request)
        if request.method == hdrs.METH_HEAD or not plan.body_bytes:
            return writer
        transport = request.transport
        if transport is None:
            raise ConnectionResetError('connection lost')
        await _send_file(transport, self._handle, plan.first, plan.body_bytes, _take_headers(writer))
        await super().write_eof()
        return writer


class Plan(t.NamedTuple):
    """What a media request is answered with: the status, the file version's ETag and Last-Modified (``validators``,
    one tuple per version), Content-Range (None: none), the Content-Length (None: none, 304) and the span of the file
    that is the body (``body_bytes`` 0: no body)."""

    status: int
    validators: tuple[tuple[str, str], tuple[str, str]]
    content_range: str | None
    content_length: int | None
    first: int
    body_bytes: int

    @property
    def headers(self) -> list[tuple[str, str]]:
        """The headers after ``BASE_HEADERS``, in the order they are written, Content-Length aside."""
        return list(self.validators) + ([(hdrs.CONTENT_RANGE, self.content_range)] if self.content_range is not None else [])


# The headers every media answer starts with, in this order (MediaResponse's own, then the plan's, then aiohttp's Date and Server).
BASE_HEADERS = ((hdrs.CONTENT_TYPE, 'application/octet-stream'), (hdrs.CACHE_CONTROL, 'no-cache'), (hdrs.ACCEPT_RANGES, 'bytes'))


# The request headers plan_answer reads, by lower-case name: what the fast path's plain dict holds, and what aiohttp's
# case-insensitive headers accept as well.
_IF_MATCH, _IF_UNMODIFIED_SINCE, _IF_NONE_MATCH, _IF_MODIFIED_SINCE, _RANGE, _IF_RANGE = (
    'if-match', 'if-unmodified-since', 'if-none-match', 'if-modified-since', 'range', 'if-range')


@functools.lru_cache(maxsize=64)
def _validators(mtime_ns: int, size: int, mtime: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """ETag and Last-Modified (``mtime``: whole seconds) of a file version, made once per version."""
    return (hdrs.ETAG, '"%x-%x"' % (mtime_ns, size)), (hdrs.LAST_MODIFIED, _http_date(mtime))


def plan_answer(st: os.stat_result, headers: t.Mapping[str, str]) -> Plan:
    """The answer to a GET or HEAD of the file whose ``fstat`` is ``st``, given the request's ``headers`` (aiohttp's, or a dict
    by lower-case name): conditional requests, then If-Range and Range.  One function for aiohttp's path
    (``MediaResponse``) and the connection layer's fast path (``connections.ReceiverProtocol``)."""
    size = st.st_size
    mtime = math.ceil(st.st_mtime)  # what Last-Modified says (whole seconds, rounded up as aiohttp does)
    validators = _validators(st.st_mtime_ns, size, mtime)
    if _has_precondition(headers):
        refused = _conditional_answer(headers, validators, mtime)
        if refused is not None:
            return refused
    range_header = headers.get(_RANGE)
    if range_header is not None:
        if_range = headers.get(_IF_RANGE)
        if if_range is None or _range_applies(if_range, validators[0][1], mtime):
            try:
                span = parse_range(range_header, size)
            except Unsatisfiable:
                return Plan(416, validators, 'bytes */%d' % size, 0, 0, 0)
            if span is not None:
                first, last = span
                length = last - first + 1
                return Plan(206, validators, f'bytes {first}-{last}/{size}', length, first, length)
    return Plan(200, validators, None, size, 0, size)


def _has_precondition(headers: t.Mapping[str, str]) -> bool:
    return _IF_MATCH in headers or _IF_UNMODIFIED_SINCE in headers or _IF_NONE_MATCH in headers or _IF_MODIFIED_SINCE in headers


def _conditional_answer(headers: t.Mapping[str, str], validators: tuple[tuple[str, str], tuple[str, str]], mtime: int) -> Plan | None:
    """412 or 304 when the request's preconditions say so (RFC 9110 section 13.2.2 order), None to go on."""
    etag = validators[0][1]
    if_match = headers.get(_IF_MATCH)
    if_unmodified = parse_http_date(headers.get(_IF_UNMODIFIED_SINCE)) if if_match is None else None
    if (if_match is not None and not _tag_matches(if_match, etag, weak=False)) or \
            (if_unmodified is not None and mtime > if_unmodified.timestamp()):
        return Plan(412, validators, None, 0, 0, 0)
    if_none_match = headers.get(_IF_NONE_MATCH)
    if_modified = parse_http_date(headers.get(_IF_MODIFIED_SINCE)) if if_none_match is None else None
    if (if_none_match is not None and _tag_matches(if_none_match, etag, weak=True)) or \
            (if_modified is not None and mtime <= if_modified.timestamp()):
        return Plan(304, validators, None, None, 0, 0)
    return None


def _range_applies(if_range: str | None, etag: str, mtime: int) -> bool:
    """If-Range: the range only for the representation the client already has (RFC 9110 section 13.1.5)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', 'W/')):
        return value == etag  # strong comparison: a weak tag never matches
    date = parse_http_date(if_range)
    return date is not None and mtime == int(date.timestamp())


def _take_headers(writer: t.Any) -> bytes:
    """The response's serialized headers when aiohttp still holds them (``_send_headers_immediately = False``), now
    owned by the caller, who sends them; empty when aiohttp already sent them (before 3.12) or has none."""
    head = getattr(writer, '_headers_buf', None)
    if not head or getattr(writer, '_headers_written', True):
        return b''
    writer._headers_buf = None
    writer._headers_written = True
    return bytes(head)


# Linux MSG_MORE: the headers' partial segment is held until the body's first sendfile(2) fills it (what nginx gets
# from tcp_nopush, without two setsockopt(TCP_CORK) calls per response).  Elsewhere the headers go alone.
_MSG_MORE = getattr(socket, 'MSG_MORE', 0)


def raw_socket(sock: t.Any) -> socket.socket | None:
    """The ``socket.socket`` behind what ``transport.get_extra_info('socket')`` returns (asyncio wraps it in a
    ``TransportSocket`` without ``send``), or None when there is none to be had."""
    raw = getattr(sock, '_sock', sock)
    return raw if isinstance(raw, socket.socket) else None


async def _send_file(transport: asyncio.BaseTransport, handle: t.BinaryIO, first: int, count: int, head: bytes = b'') -> None:
    """Send the response headers ``head`` (may be empty: already sent), then ``count`` bytes of ``handle`` from
    ``first`` with sendfile(2), as nginx does: again and again until the socket buffer is full, then wait until the
    socket is writable, until all is sent.

    The headers go out with ``send(MSG_MORE)``: the kernel holds their partial segment and the body's first
    sendfile(2) fills it, so they leave in the body's first segment instead of a segment of their own.  Under
    TCP_NODELAY (aiohttp sets it) a headers-only segment is one more packet through the client's (on loopback, the
    sender's own) receive path and one more client wake-up per response: the profile of 64 KiB Range reads put that
    ``send()`` of the headers at as much time as the ``sendfile(2)`` of the body.  (It was TCP_CORK set around the
    first sendfile(2): the same segments, two more system calls per response.)

    Not ``loop.sendfile()``: that one pauses reading and waits for the transport's buffer to be flushed before it
    starts, then after every successful sendfile(2) (the last one too) waits for the socket to become writable again,
    that is until the client has read part of what was sent: one more client wake-up per request and per buffer-full
    (it made 1 MiB Range reads 0.63x nginx).  Reading is paused only while waiting (as asyncio does for the whole
    send), so a peer that resets the connection is seen here, by sendfile(2), not by the transport closing under us.
    Under TLS, or with something queued in the transport, or on an event loop without asyncio's selector internals,
    ``loop.sendfile()`` does it (reads and writes for TLS).
    """
    loop = asyncio.get_running_loop()
    writable = t.cast(asyncio.WriteTransport, transport)
    sock = raw_socket(transport.get_extra_info('socket'))
    if sock is None or getattr(loop, '_add_writer', None) is None or transport.get_extra_info('sslcontext') is not None \
            or writable.get_write_buffer_size():
        if head:
            writable.write(head)
        await loop.sendfile(writable, handle, first, count)  # it waits for the transport's buffer to be empty first
        return
    offset = send_now(transport, sock, handle.fileno(), first, first + count, head)
    if offset < first + count:
        await send_rest(transport, handle.fileno(), offset, first + count)


def send_now(transport: asyncio.BaseTransport, sock: socket.socket, source: int, offset: int, end: int, head: bytes) -> int:
    """``_send_file`` without waiting: ``head`` and bytes ``offset`` to ``end`` of the file ``source`` by sendfile(2) on
    ``sock`` (the transport's plain socket, ``raw_socket``), until done or the socket is full; returns the offset
    reached (``end``: all sent).  ``head`` goes straight to the socket when the transport's buffer is empty; what the
    socket refuses of it (or all of it, behind something still queued) is queued in the transport and nothing of the
    body is sent: ``send_rest`` then uses ``loop.sendfile()``, which waits for that buffer first.  Raises what
    sendfile(2) raises."""
    if head:
        writable = t.cast(asyncio.WriteTransport, transport)
        if writable.get_write_buffer_size():
            writable.write(head)
            return offset
        try:
            sent = sock.send(head, _MSG_MORE if offset < end else 0)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(head):  # the socket is full (the previous answer is still unread): asyncio's way
            writable.write(head[sent:])
            return offset
    out = sock.fileno()
    while offset < end:
        try:
            sent = os.sendfile(out, source, offset, end - offset)
        except (BlockingIOError, InterruptedError):
            return offset
        if sent == 0:
            raise RuntimeError('the file ended %d bytes short of the response\'s Content-Length (it shrank while it was sent)'
                               % (end - offset))
        offset += sent
    return offset


async def send_rest(transport: asyncio.BaseTransport, source: int, offset: int, end: int) -> None:
    """The rest of a ``send_now``: wait until the socket is writable (reading paused meanwhile, as asyncio does for a
    whole send), sendfile(2) until it is full again, and so on until ``end``; ``loop.sendfile()`` when the headers are
    still queued in the transport."""
    loop = asyncio.get_running_loop()
    writable = t.cast(asyncio.WriteTransport, transport)
    if writable.get_write_buffer_size():
        with open(source, 'rb', buffering=0, closefd=False) as handle:
            await loop.sendfile(writable, handle, offset, end - offset)
        return
    sock = t.cast(socket.socket, raw_socket(transport.get_extra_info('socket')))
    selector_loop = t.cast(t.Any, loop)  # send_now ran: asyncio's selector loop (_send_file checked), its private writer calls
    add_writer, remove_writer = selector_loop._add_writer, selector_loop._remove_writer
    out = sock.fileno()
    reading = t.cast(asyncio.ReadTransport, transport)
    paused = False
    try:
        while offset < end:
            if not paused and reading.is_reading():
                reading.pause_reading()
                paused = True
            ready = loop.create_future()
            add_writer(out, _wake, ready)
            try:
                await ready
            finally:
                remove_writer(out)
            offset = send_now(transport, sock, source, offset, end, b'')
    finally:
        if paused and not transport.is_closing():
            reading.resume_reading()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _safe_relative(tail: str) -> tuple[str, ...] | None:
    """The components of ``tail``, a relative path without '..' or hidden components; None when unsafe.  Empty and
    '.' components are dropped, as ``PurePosixPath(tail).parts`` drops them (a string split: this runs twice per media
    request, and pathlib cost more than the rest of the path check)."""
    if tail.startswith('/'):
        return None
    parts = tuple(part for part in tail.split('/') if part and part != '.')
    if not parts:
        return None
    for part in parts:
        if part.startswith('.') or '\\' in part or '\0' in part:
            return None
    return parts


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text='not found\n')


# Linux: O_PATH descriptors and the kernel's name of an open file.  Elsewhere (or without /proc) the path is
# resolved first and the file opened without following a final link; the check is then not race-free.
_O_PATH = getattr(os, 'O_PATH', 0)
_PROC_FD = '/proc/self/fd/%d'
_HAS_PROC_FD = bool(_O_PATH) and os.path.isdir('/proc/self/fd')
_O_CLOEXEC = getattr(os, 'O_CLOEXEC', 0)
_O_NOFOLLOW = getattr(os, 'O_NOFOLLOW', 0)


# Out of descriptors or memory, an I/O error: not "no such file" but "cannot now" (503 with Retry-After, api.py).
_TRANSIENT_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EIO}


def _unless_transient(exc: OSError) -> None:
    if exc.errno in _TRANSIENT_ERRNOS:
        raise exc


def _beneath(real: str, root: str) -> bool:
    return real.startswith(root.rstrip('/') + '/')


def _allowed(real: str, root: str, exclude: str | None) -> bool:
    """``real`` lies beneath ``root`` (not in ``exclude``), and no component below the root is hidden."""
    if not _beneath(real, root) or (exclude is not None and (real == exclude or _beneath(real, exclude))):
        return False
    return not any(part.startswith('.') for part in real[len(root.rstrip('/')) + 1:].split('/'))


def open_regular_file(path: str, root: str, exclude: str | None = None) -> tuple[t.BinaryIO, os.stat_result] | None:
    """``path`` open for reading with its stat, when it is a regular file whose resolved location lies beneath
    ``root`` (a resolved directory) and not in ``exclude``; None otherwise.  Never opens anything else for reading."""
    opened = open_regular_fd(path, root, exclude)
    if opened is None:
        return None
    return t.cast(t.BinaryIO, open(opened[0], 'rb', buffering=0)), opened[1]  # unbuffered (FileIO): only its descriptor is used, or loop.sendfile()'s reads


def open_regular_fd(path: str, root: str, exclude: str | None = None) -> tuple[int, os.stat_result] | None:
    """``open_regular_file`` with a bare descriptor (the fast path's: no file object, no second fstat for it)."""
    if _HAS_PROC_FD:
        try:
            probe = os.open(path, _O_PATH | _O_CLOEXEC)
        except OSError as exc:
            _unless_transient(exc)
            return None
        try:
            st = os.fstat(probe)
            if not stat.S_ISREG(st.st_mode) or not _allowed(os.readlink(_PROC_FD % probe), root, exclude):
                return None
            fd = os.open(_PROC_FD % probe, os.O_RDONLY | _O_CLOEXEC)  # the same inode, whatever happened to the path since
        except OSError as exc:
            _unless_transient(exc)
            return None
        finally:
            os.close(probe)
    else:  # pragma: no cover - not Linux
        real = os.path.realpath(path)
        if not _allowed(real, root, exclude):
            return None
        try:
            fd = os.open(real, os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW | getattr(os, 'O_NONBLOCK', 0))
        except OSError as exc:
            _unless_transient(exc)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
    return fd, st


def open_media(root: str, tail: str, exclude: str | None = None) -> tuple[t.BinaryIO, os.stat_result] | None:
    """The file ``tail`` (a URL path below the route) of the resolved directory ``root`` open with its stat, or None."""
    relative = _safe_relative(tail)
    if relative is None:
        return None
    return open_regular_file(os.path.join(root, *relative), root, exclude)


def media_response(root: str, tail: str, exclude: str | None = None) -> web.StreamResponse:
    """The file ``tail`` (a URL path below the route) of the resolved directory ``root``, or 404."""
    opened = open_media(root, tail, exclude)
    if opened is None:
        raise _not_found()
    return MediaResponse(*opened)


def _refused_publicly(tail: str) -> bool:
    relative = _safe_relative(tail)
    return relative is None or relative[0] == JOBS_MEDIA_DIR


def public_media_path(tail: str) -> str:
    """Refuse the per-job tree under the public route: per-job media are only served with their key."""
    if _refused_publicly(tail):
        raise _not_found()
    return tail


class HeldFile(t.NamedTuple):
    """A public medium or blob open for a connection (``FastMedia.hold``), kept for its next request of the same
    ``target`` (``FastMedia.reuse``): ``path`` is where it was found, ``st`` its ``fstat`` when it was opened and
    checked."""

    target: str
    path: str
    fd: int
    st: os.stat_result


class FastMedia:
    """The public media (``/media/<tail>``, not ``jobs/``) and the embedded registry's blobs (``/v2/<name>/blobs/
    <digest>``, when pull is open) as the connection layer's fast path answers them (``connections.ReceiverProtocol``):
    the same checks, the same ``plan_answer`` and the same bytes on the wire as ``MediaResponse`` under aiohttp (and
    ``registry.handlers.Registry._blob_get``); only finding the request is done by the connection layer.

    ``blobs``: the registry's layout (opened), None when blobs are not served here (no registry, or pull needs
    credentials: aiohttp's path checks them)."""

    __slots__ = ('root', 'exclude', 'blobs', 'blobs_root')

    def __init__(self, root: str, exclude: str, blobs: Layout | None = None) -> None:
        self.root = root
        self.exclude = exclude
        self.blobs = blobs
        self.blobs_root = blobs.blobs_root() if blobs is not None else ''

    def hold(self, target: str, tail: str, digest: str = '') -> HeldFile | None:
        """What aiohttp's path would serve for the request of ``target``, open: the medium ``tail`` as
        ``api.public_media`` serves it (``public_media_path``, then ``media_response``), or the blob ``digest`` as the
        registry does (``Layout.blob_path`` beneath ``Layout.blobs_root``); None when it would not (404) or cannot (a
        transient error: aiohttp's path then answers it, 503).  The caller closes ``fd``."""
        if digest:
            if self.blobs is None:
                return None
            path, root, exclude = str(self.blobs.blob_path(digest)), self.blobs_root, None
        else:
            relative = _safe_relative(tail)
            if relative is None or relative[0] == JOBS_MEDIA_DIR:
                return None
            path, root, exclude = os.path.join(self.root, *relative), self.root, self.exclude
        try:
            opened = open_regular_fd(path, root, exclude)
        except OSError:
            return None
        return None if opened is None else HeldFile(target, path, opened[0], opened[1])

    @staticmethod
    def reuse(held: HeldFile) -> os.stat_result | None:
        """The stat of the file ``held`` when its path still names that very file, unchanged; None otherwise (the
        caller then closes it and ``hold`` checks the path afresh).  One ``stat(2)`` of the path instead of ``hold``'s
        five calls: a BMC reads an ISO in thousands of ranges on one connection.

        "Unchanged" is the same device, inode, size, modification and status-change time.  A rename or a new hard
        link of the file, a write, a truncation or a chmod all change its ctime, so a file that is still what the path
        names and has a ctime that did not move is still where ``hold`` found it (beneath the root, not hidden): only
        a rename of one of its directories leaves the file's ctime alone.  Such a rename is not seen by a connection
        that already holds the file (it goes on serving the file it served a moment before, until it asks for another
        path or closes); the next connection checks the path as ``hold`` does.  Per-job media never come here: the
        fast path does not serve them."""
        try:
            st = os.stat(held.path)
        except OSError:
            return None
        old = held.st
        if st.st_ino != old.st_ino or st.st_dev != old.st_dev or st.st_size != old.st_size or st.st_mtime_ns != old.st_mtime_ns \
                or st.st_ctime_ns != old.st_ctime_ns:
            return None
        return st


def answer_head(plan: Plan, extra: bytes = b'') -> bytes:
    """The status line and headers ``MediaResponse`` sends for ``plan`` over HTTP/1.1 keep-alive, as aiohttp serializes
    them: its own headers, ``extra`` (header lines set by the handler, a blob's: ``connections.blob_headers``), the plan's, Content-Length,
    then aiohttp's Date and Server.  What depends only on the status, ``extra`` and the file version is made once
    (``_head_start``)."""
    start = _head_start(plan.status, plan.validators, extra)
    if plan.content_range is not None:
        return start + ('Content-Range: %s\r\nContent-Length: %d\r\nDate: %s\r\n%s' % (
            plan.content_range, t.cast(int, plan.content_length), rfc822_formatted_time(), _HEAD_END)).encode('ascii')
    if plan.content_length is not None:
        return start + ('Content-Length: %d\r\nDate: %s\r\n%s' % (plan.content_length, rfc822_formatted_time(), _HEAD_END)).encode('ascii')
    return start + ('Date: %s\r\n%s' % (rfc822_formatted_time(), _HEAD_END)).encode('ascii')


def range_answer(st: os.stat_result, headers: t.Mapping[str, str], extra: bytes = b'') -> tuple[bytes, int, int] | None:
    """The answer to the request virtual-media clients send for almost every read of a CD, made in one step: a GET of
    one satisfiable range of the simple form (``_SIMPLE_RANGE``) with no precondition and no If-Range, which
    ``plan_answer`` answers 206 whatever the file.  Returns ``answer_head``'s bytes for that plan, its first byte and
    its length; None for any other request, which goes through ``plan_answer`` and ``answer_head``.  The same bytes as
    theirs (tests/unit/receiver/test_media_ranges.py compares them on random requests), without the Plan and five
    function calls: the fast path's cost per range."""
    if _IF_RANGE in headers or _has_precondition(headers):
        return None
    value = headers.get(_RANGE)
    simple = _SIMPLE_RANGE.match(value) if value is not None else None
    if simple is None:
        return None
    size = st.st_size
    try:
        first, last = _simple_span(simple, size)
    except Unsatisfiable:
        return None  # 416
    count = last - first + 1
    start = _head_start(206, _validators(st.st_mtime_ns, size, math.ceil(st.st_mtime)), extra)
    # an f-string: about half the instructions of %-formatting
    tail = f'Content-Range: bytes {first}-{last}/{size}\r\nContent-Length: {count}\r\nDate: {rfc822_formatted_time()}\r\n{_HEAD_END}'
    return start + tail.encode('ascii'), first, count


@functools.lru_cache(maxsize=256)
def _head_start(status: int, validators: tuple[tuple[str, str], tuple[str, str]], extra: bytes) -> bytes:
    lines = ['HTTP/1.1 %d %s' % (status, REASON_PHRASES[status])]
    lines.extend('%s: %s' % pair for pair in BASE_HEADERS)
    head = ('\r\n'.join(lines) + '\r\n').encode('ascii') + extra
    return head + ''.join('%s: %s\r\n' % pair for pair in validators).encode('ascii')


_HEAD_END = 'Server: %s\r\n\r\n' % SERVER_SOFTWARE
