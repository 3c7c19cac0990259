# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Decompress a layer's stream with bounded memory, in a thread of its own.

Standard library only (``zstandard`` optional, for zstd), no Ansible imports: the maintenance OS
image steps run this same file.  ``unpack.py`` reads the decompressed stream with ``tarfile``.

gzip (several members in a row allowed, as pigz -i, bgzip or ``cat a.gz b.gz`` write), zstd and xz
are chosen by magic bytes, since media types are often wrong.  The decompressor runs in a thread:
zlib, lzma and zstd release the GIL, so it overlaps with tarfile's parsing and the writing.  No step
produces more than ``OUT_CHUNK`` bytes at once, and at most ``QUEUE_DEPTH`` chunks wait, so memory
stays flat whatever the size or compression ratio (a "zip bomb" included).

Why not tarfile's own decompression (``r|*``): it reads only the first member of a gzip stream, not
zstd before Python 3.14, and decompresses in the thread that parses and writes (docs/oci.md,
"Benchmark").
"""

from __future__ import annotations

import lzma
import queue
import threading
import time
import typing as t
import zlib

from .errors import CorruptStreamError, UnsupportedError

try:
    import zstandard as _zstd
    HAS_ZSTANDARD = True
except ImportError:  # pragma: no cover - depends on the host
    _zstd = None  # type: ignore[assignment]
    HAS_ZSTANDARD = False

CHUNK = 1024 * 1024
OUT_CHUNK = 1024 * 1024
QUEUE_DEPTH = 4
_GZIP_MAGIC = b'\x1f\x8b'
_ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
_XZ_MAGIC = b'\xfd7zXZ\x00'
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, lzma.LZMAError) + ((_zstd.ZstdError,) if _zstd is not None else ())


class Readable(t.Protocol):
    def read(self, size: int = -1) -> bytes: ...


def compression_of(head: bytes) -> str:
    """``gzip``, ``zstd``, ``xz`` or ``none`` from the first bytes of a blob (media types lie: oras-py pushes
    every file as ``...layer.v1.tar``)."""
    if head.startswith(_GZIP_MAGIC):
        return 'gzip'
    if head.startswith(_ZSTD_MAGIC):
        return 'zstd'
    if head.startswith(_XZ_MAGIC):
        return 'xz'
    return 'none'


# -- decompression -----------------------------------------------------------------------------------

class _Plain:
    def __init__(self, source: Readable, first: bytes) -> None:
        self._source = source
        self._first: bytes | None = first

    def next(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            if first:
                return first
        return self._source.read(CHUNK)


class _Inflate:
    """gzip (several members in a row allowed, as pigz writes) and xz, at most ``OUT_CHUNK`` per step."""

    def __init__(self, source: Readable, first: bytes, kind: str) -> None:
        self._source = source
        self._kind = kind
        self._input = first
        self._source_done = False
        self._obj: t.Any = self._new()

    def _new(self) -> t.Any:
        return zlib.decompressobj(wbits=31) if self._kind == 'gzip' else lzma.LZMADecompressor()

    def _read(self) -> bytes:
        if self._source_done:
            return b''
        data = self._source.read(CHUNK)
        self._source_done = not data
        return data

    def _backlog(self) -> bytes | None:
        """Input the decompressor holds back because of the output limit (None: it wants new input)."""
        if self._kind == 'gzip':
            return self._obj.unconsumed_tail or None
        return None if self._obj.needs_input else b''

    def next(self) -> bytes:
        while True:
            if self._obj.eof:
                # Another member may follow; zero padding between or after members is skipped (tools write it).
                leftover = (self._obj.unused_data + self._input).lstrip(b'\0')
                self._input = b''
                while not leftover:
                    leftover = self._read()
                    if not leftover:
                        return b''
                    leftover = leftover.lstrip(b'\0')
                self._obj = self._new()
                self._input = leftover
                continue
            backlog = self._backlog()
            if backlog is not None:
                data = backlog
            elif self._input:
                data, self._input = self._input, b''
            else:
                data = self._read()
                if not data:
                    raise CorruptStreamError('the %s stream is truncated (no end-of-stream marker)' % self._kind)
            out = self._obj.decompress(data, OUT_CHUNK)
            if out:
                return out


class Prefixed:
    """``first``, then the rest of ``source``: a reader whose first bytes were already read (to see the magic bytes)."""

    def __init__(self, first: bytes, source: Readable) -> None:
        self._first = first
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if self._first:
            first, self._first = self._first, b''
            return first
        return self._source.read(size if size and size > 0 else CHUNK)


class _Zstd:
    def __init__(self, source: Readable, first: bytes) -> None:
        if _zstd is None:
            raise UnsupportedError('a zstd-compressed layer needs the Python package "zstandard" (pip install zstandard)')
        self._reader = _zstd.ZstdDecompressor().stream_reader(t.cast(t.IO[bytes], Prefixed(first, source)), read_size=CHUNK, read_across_frames=True)

    def next(self) -> bytes:
        return self._reader.read(OUT_CHUNK)


_END = object()


class DecompressedChunks:
    """Decompressed data of ``source`` as chunks, produced by a background thread.

    ``compression`` tells what the magic bytes said.  Errors in the thread (a damaged stream, a digest
    mismatch raised by the source) are raised by ``next_chunk`` in the caller's thread.
    """

    def __init__(self, source: Readable, threaded: bool = True) -> None:
        first = source.read(CHUNK)
        self.compression = compression_of(first)
        if self.compression == 'gzip' or self.compression == 'xz':
            self._decoder: _Plain | _Inflate | _Zstd = _Inflate(source, first, self.compression)
        elif self.compression == 'zstd':
            self._decoder = _Zstd(source, first)
        else:
            self._decoder = _Plain(source, first)
        self._queue: queue.Queue[t.Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._stop = threading.Event()
        self._done = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._pump, name='oci-decompress', daemon=True)
            self._thread.start()

    def _produce(self) -> bytes:
        try:
            return self._decoder.next()
        except _DECOMPRESS_ERRORS as exc:
            raise CorruptStreamError('corrupt %s stream: %s' % (self.compression, exc)) from None

    def _pump(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._produce()
                self._put(chunk if chunk else _END)
                if not chunk:
                    return
        except BaseException as exc:  # pylint: disable=broad-exception-caught  # handed to the consumer
            self._put(exc)

    def _put(self, item: t.Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def next_chunk(self) -> bytes:
        """The next chunk; ``b''`` once at the end."""
        if self._done:
            return b''
        if self._thread is None:
            chunk = self._produce()
        else:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            chunk = b'' if item is _END else item
        if not chunk:
            self._done = True
        return chunk

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread.  It may be inside a read of the source; that read returns within one chunk
        (or when the source is closed), so this waits at most ``timeout`` seconds."""
        self._stop.set()
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(timeout=0.05)


__all__ = ['CHUNK', 'HAS_ZSTANDARD', 'OUT_CHUNK', 'DecompressedChunks', 'Prefixed', 'Readable', 'compression_of']
