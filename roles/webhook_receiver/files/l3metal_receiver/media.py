# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Media for BMCs: the maintenance ISO and the per-job task media, with Range, HEAD and ETag.

aiohttp's ``FileResponse`` does the sending (``sendfile(2)`` on plain HTTP, conditional requests,
single byte ranges).  ``MediaFileResponse`` puts three rules in front of it, so BMC virtual-media
clients see what they see from nginx:

* a Range header is read as RFC 9110 says and as nginx does: ``bytes=-0``, ``bytes=5-2`` and other
  malformed byte ranges are 416; an unknown unit or an empty ``bytes=`` is ignored (200);
  several ranges are answered with the whole file (200, allowed by RFC 9110 section 14.2) instead
  of ``multipart/byteranges``, which virtual-media clients do not ask for;
* ``If-Range`` with an entity tag is honoured (aiohttp only reads the date form): a changed file
  is sent whole;
* ``Accept-Encoding`` is ignored, so a ``.gz`` file lying next to an ISO is never sent instead of it.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import typing as t
from pathlib import Path, PurePosixPath

from aiohttp import hdrs, web
from multidict import CIMultiDict

from .service import JOBS_MEDIA_DIR

_BYTE_RANGE = re.compile(r'^(\d*)-(\d*)$')


class RangeDecision(t.NamedTuple):
    header: str | None        # the Range header aiohttp gets (None: send the whole file)
    drop_if_range: bool       # If-Range was an entity tag and has been decided here


def etag_of(st: os.stat_result) -> str:
    """The entity tag aiohttp's FileResponse sends for a file (without quotes)."""
    return '%x-%x' % (st.st_mtime_ns, st.st_size)


def decide_range(range_header: str, if_range: str | None, st: os.stat_result) -> RangeDecision:
    size = st.st_size
    unsatisfiable = RangeDecision('bytes=%d-' % size, False)  # aiohttp answers 416 with "Content-Range: bytes */size"
    etag_condition = if_range is not None and if_range.strip().startswith(('"', 'W/'))
    if etag_condition:
        # a weak tag never matches for If-Range (RFC 9110 section 13.1.5)
        if if_range is None or if_range.strip() != '"%s"' % etag_of(st):
            return RangeDecision(None, True)
    value = range_header.strip()
    if not value.lower().startswith('bytes='):
        return RangeDecision(None, etag_condition)
    spec = value[len('bytes='):].strip()
    if not spec:
        return RangeDecision(None, etag_condition)
    if ',' in spec:
        return RangeDecision(None, etag_condition)
    match = _BYTE_RANGE.match(spec)
    if not match or (not match.group(1) and not match.group(2)):
        return unsatisfiable._replace(drop_if_range=etag_condition)
    first, last = match.group(1), match.group(2)
    if not first:
        if int(last) == 0:
            return unsatisfiable._replace(drop_if_range=etag_condition)
        return RangeDecision('bytes=-%d' % int(last), etag_condition)
    start = int(first)
    if last and int(last) < start:
        return unsatisfiable._replace(drop_if_range=etag_condition)
    if start >= size:
        return unsatisfiable._replace(drop_if_range=etag_condition)
    end = min(int(last), size - 1) if last else size - 1
    return RangeDecision('bytes=%d-%d' % (start, end), etag_condition)


class MediaFileResponse(web.FileResponse):
    """``FileResponse`` with the Range, If-Range and encoding rules of this module."""

    def __init__(self, path: Path, **kwargs: t.Any) -> None:
        super().__init__(path, **kwargs)
        self._media_path = path

    async def prepare(self, request: web.BaseRequest) -> t.Any:
        headers = CIMultiDict(request.headers)
        headers.popall(hdrs.ACCEPT_ENCODING, None)
        range_header = headers.get(hdrs.RANGE)
        if range_header is not None:
            try:
                st = await asyncio.get_running_loop().run_in_executor(None, os.stat, self._media_path)
            except OSError:
                st = None  # FileResponse answers 404/403
            if st is not None and stat.S_ISREG(st.st_mode):
                decision = decide_range(range_header, headers.get(hdrs.IF_RANGE), st)
                headers.popall(hdrs.RANGE, None)
                if decision.header is not None:
                    headers[hdrs.RANGE] = decision.header
                if decision.drop_if_range:
                    headers.popall(hdrs.IF_RANGE, None)
        return await super().prepare(request.clone(headers=headers))


def _safe_relative(tail: str) -> PurePosixPath | None:
    """``tail`` as a relative path without '..', empty or hidden components; None when unsafe."""
    path = PurePosixPath(tail)
    if path.is_absolute() or not path.parts:
        return None
    for part in path.parts:
        if part in ('', '.', '..') or part.startswith('.') or '\\' in part or '\0' in part:
            return None
    return path


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text='not found\n')


def media_response(root: Path, tail: str) -> web.StreamResponse:
    relative = _safe_relative(tail)
    if relative is None:
        raise _not_found()
    path = root.joinpath(*relative.parts)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise _not_found()
    except OSError:
        raise _not_found() from None
    # BMCs (and nginx's default) see ISO images as a generic binary download
    return MediaFileResponse(path, headers={hdrs.CONTENT_TYPE: 'application/octet-stream', hdrs.CACHE_CONTROL: 'no-cache'})


def public_media_path(tail: str) -> str:
    """Refuse the per-job tree under the public route: per-job media are only served with their key."""
    relative = _safe_relative(tail)
    if relative is None or relative.parts[0] == JOBS_MEDIA_DIR:
        raise _not_found()
    return tail
