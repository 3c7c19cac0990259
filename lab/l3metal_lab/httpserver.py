# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A static file server for tests: serves a directory with Range (206/416), HEAD and ETag.

BMC emulators download virtual media from it, so it must behave like a real web server for the
parts they use.  It records every request (method, path, Range header, status) so tests can count
downloads.  It runs in a thread of the test process and binds to 127.0.0.1 only.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import os
import re
import shutil
import threading
import typing as t
import urllib.parse
from pathlib import Path

from .ports import free_port

_RANGE = re.compile(r'^bytes=(\d*)-(\d*)$')


class RequestRecord(t.NamedTuple):
    method: str
    path: str
    range: str | None
    status: int


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> inclusive (start, end); None if unsatisfiable.

    Raises ValueError for a header that is not a single byte range (then the whole file is sent,
    as RFC 9110 allows a server to ignore a Range it does not support).
    """
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise ValueError(header)
    first, last = match.group(1), match.group(2)
    if not first:  # suffix range: the last n bytes
        length = int(last)
        if length == 0 or size == 0:
            return None
        return max(0, size - length), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or (last and end < start):
        return None
    return start, min(end, size - 1)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = 'HTTP/1.1'

    def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
        return  # requests are recorded, not printed

    def _record(self, status: int) -> None:
        self.server.requests.append(RequestRecord(self.command, self.path, self.headers.get('Range'), status))

    def _resolve(self) -> Path | None:
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip('/')
        path = (self.server.root / rel).resolve()
        if self.server.root not in path.parents and path != self.server.root:
            return None
        return path if path.is_file() else None

    def _error(self, status: int, extra: dict[str, str] | None = None) -> None:
        body = ('%d %s\n' % (status, http.HTTPStatus(status).phrase)).encode()
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self._record(status)
        if self.command != 'HEAD':
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = self._resolve()
        if path is None:
            self._error(404)
            return
        stat = path.stat()
        size = stat.st_size
        etag = '"%s"' % hashlib.sha1(('%s-%d-%d' % (path, size, stat.st_mtime_ns)).encode()).hexdigest()[:16]
        start, end, status = 0, size - 1, 200
        header = self.headers.get('Range')
        if_range = self.headers.get('If-Range')
        if header and (if_range is None or if_range == etag):
            try:
                span = parse_range(header, size)
            except ValueError:
                span = (0, size - 1)
            else:
                if span is None:
                    self._error(416, {'Content-Range': 'bytes */%d' % size})
                    return
                status = 206
            start, end = span
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(length))
        self.send_header('Accept-Ranges', 'bytes')
        self.send_header('ETag', etag)
        self.send_header('Last-Modified', email.utils.formatdate(stat.st_mtime, usegmt=True))
        if status == 206:
            self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, size))
        self.end_headers()
        # recorded before the body goes out: once a client has read the whole answer, it is in the log
        self._record(status)
        if self.command != 'HEAD' and length:
            with open(path, 'rb') as handle:
                handle.seek(start)
                remaining = length
                while remaining:
                    chunk = handle.read(min(1024 * 1024, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path) -> None:
        self.root = root.resolve()
        self.requests: list[RequestRecord] = []
        super().__init__(address, _Handler)


class FileServer:
    """Serve ``root`` on http://127.0.0.1:<free port>/ until ``stop()``."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._server = _Server(('127.0.0.1', self.port), self.root)
        self._thread = threading.Thread(target=self._server.serve_forever, name='file-server-%d' % self.port, daemon=True)

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    @property
    def requests(self) -> list[RequestRecord]:
        return self._server.requests

    def url_for(self, name: str) -> str:
        return '%s/%s' % (self.url, urllib.parse.quote(name))

    def add_file(self, name: str, data: bytes | None = None, source: Path | None = None) -> str:
        """Put a file under the served root (from bytes or by copying ``source``); return its URL."""
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is not None:
            shutil.copyfile(source, target)
        else:
            target.write_bytes(data or b'')
        return self.url_for(name)

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(os.fspath(path), 'rb') as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b''):
            digest.update(chunk)
    return digest.hexdigest()
