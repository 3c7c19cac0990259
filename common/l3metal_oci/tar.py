# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read compressed tar streams: decompression with bounded memory, and a small tar header parser.

Standard library only (``zstandard`` optional, for zstd), no Ansible imports: the maintenance OS
image steps run this same file.

Why not ``tarfile``: in stream mode its header parsing and layered buffering cost several times what
the rest of an unpack costs for a root file system of many small files, and its extraction filters
(the ones that would refuse ``../``) exist only on recent Python patch releases.  This parser reads
POSIX ustar, PAX (per-file and global headers: long names, large sizes and ids, fractional mtimes,
``SCHILY.xattr.*``) and GNU long names/links, which covers GNU tar, bsdtar, Python's tarfile and
container layers.  GNU sparse members and multi-volume archives are refused as unsupported.

Decompression (gzip incl. multi-member, zstd, xz; chosen by magic bytes, since media types are often
wrong) runs in a thread of its own: zlib, lzma and zstd release the GIL, so it overlaps with parsing
and writing.  No step produces more than ``OUT_CHUNK`` bytes at once, and at most ``QUEUE_DEPTH``
chunks wait, so memory stays flat whatever the size or compression ratio (a "zip bomb" included).
"""

from __future__ import annotations

import lzma
import queue
import struct
import threading
import time
import typing as t
import zlib
from dataclasses import dataclass, field

from .errors import CorruptStreamError, OciError, UnsupportedError

try:
    import zstandard as _zstd
    HAS_ZSTANDARD = True
except ImportError:  # pragma: no cover - depends on the host
    _zstd = None  # type: ignore[assignment]
    HAS_ZSTANDARD = False

CHUNK = 1024 * 1024
OUT_CHUNK = 1024 * 1024
QUEUE_DEPTH = 4
BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_GZIP_MAGIC = b'\x1f\x8b'
_ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
_XZ_MAGIC = b'\xfd7zXZ\x00'
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, lzma.LZMAError) + ((_zstd.ZstdError,) if _zstd is not None else ())
_SIGNED_HEADER = struct.Struct('148b8x356b')

REGTYPE, AREGTYPE, LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE, CONTTYPE = b'0', b'\0', b'1', b'2', b'3', b'4', b'5', b'6', b'7'


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


class ByteReader:
    """Exact and bounded reads over a chunk source, slicing without joining where it can."""

    def __init__(self, chunks: DecompressedChunks) -> None:
        self._chunks = chunks
        self._buf = b''
        self._view = memoryview(self._buf)
        self._pos = 0

    def _refill(self) -> bool:
        chunk = self._chunks.next_chunk()
        if not chunk:
            return False
        self._buf, self._view, self._pos = chunk, memoryview(chunk), 0
        return True

    def read_up_to(self, size: int) -> memoryview:
        """Between 1 and ``size`` bytes (``size`` > 0), or an empty view at the end of the stream."""
        if self._pos >= len(self._buf) and not self._refill():
            return memoryview(b'')
        end = min(self._pos + size, len(self._buf))
        data = self._view[self._pos:end]
        self._pos = end
        return data

    def read_exact(self, size: int) -> bytes:
        """Exactly ``size`` bytes; ``b''`` if the stream is already at its end; error if it ends in between."""
        if self._pos + size <= len(self._buf):
            data = self._buf[self._pos:self._pos + size]
            self._pos += size
            return data
        parts = []
        missing = size
        while missing:
            piece = self.read_up_to(missing)
            if not piece:
                if missing == size:
                    return b''
                raise CorruptStreamError('the tar stream ends in the middle of a block')
            parts.append(bytes(piece))
            missing -= len(piece)
        return b''.join(parts)

    def skip(self, size: int) -> None:
        while size:
            piece = self.read_up_to(min(size, CHUNK))
            if not piece:
                raise CorruptStreamError('the tar stream ends inside a member')
            size -= len(piece)

    def drain(self) -> int:
        count = len(self._buf) - self._pos
        self._pos = len(self._buf)
        while self._refill():
            count += len(self._buf)
            self._pos = len(self._buf)
        return count


# -- tar headers -------------------------------------------------------------------------------------

def _text(raw: bytes) -> str:
    return raw.decode('utf-8', 'surrogateescape')


def _nts(field_: bytes) -> str:
    end = field_.find(b'\0')
    return _text(field_ if end < 0 else field_[:end])


def _nti(field_: bytes) -> int:
    if field_[:1] in (b'\x80', b'\xff'):  # GNU base-256 for values that do not fit in octal
        value = int.from_bytes(field_[1:], 'big')
        return value - (256 ** (len(field_) - 1)) if field_[0] == 0xff else value
    digits = field_.split(b'\0', 1)[0].strip()
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise CorruptStreamError('bad number %r in a tar header' % digits) from None


def _parse_pax(data: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos]:
        space = data.find(b' ', pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise CorruptStreamError('bad PAX record at offset %d' % pos) from None
        record = data[space + 1:pos + length]
        if length <= 0 or space < 0 or not record.endswith(b'\n'):
            raise CorruptStreamError('bad PAX record at offset %d' % pos)
        key, _sep, value = record[:-1].partition(b'=')
        records[_text(key)] = value
        pos += length
    return records


@dataclass
class TarMember:
    """One archive member, with PAX overrides applied."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    linkname: str = ''
    devmajor: int = 0
    devminor: int = 0
    pax: dict[str, bytes] = field(default_factory=dict)

    def isdir(self) -> bool:
        return self.type == DIRTYPE

    def isreg(self) -> bool:
        return self.type in (REGTYPE, AREGTYPE, CONTTYPE)

    def issym(self) -> bool:
        return self.type == SYMTYPE

    def islnk(self) -> bool:
        return self.type == LNKTYPE

    def isdev(self) -> bool:
        return self.type in (CHRTYPE, BLKTYPE, FIFOTYPE)


class TarStream:
    """Iterate over the members of a tar stream; read a regular member's data with ``read_data``
    before asking for the next member (what is left unread is skipped)."""

    def __init__(self, reader: ByteReader) -> None:
        self._reader = reader
        self._left = 0
        self._pad = 0

    def read_data(self, size: int) -> memoryview:
        """Up to ``size`` bytes of the current member's data (empty when it is all read)."""
        if not self._left:
            return memoryview(b'')
        data = self._reader.read_up_to(min(size, self._left))
        if not data:
            raise CorruptStreamError('the tar stream ends inside a member')
        self._left -= len(data)
        return data

    def _block_data(self, size: int) -> bytes:
        data = self._reader.read_exact(size + (-size % BLOCK))
        if len(data) < size:
            raise CorruptStreamError('the tar stream ends inside an extended header')
        return data[:size]

    def __iter__(self) -> t.Iterator[TarMember]:
        global_pax: dict[str, bytes] = {}
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            header = self._reader.read_exact(BLOCK)
            if not header or header == _ZERO_BLOCK:
                return  # end of archive (a missing end marker is accepted, as GNU tar and tarfile do)
            stored = _nti(header[148:156])
            if stored != sum(header) - sum(header[148:156]) + 256 and stored != sum(_SIGNED_HEADER.unpack(header)) + 256:
                raise CorruptStreamError('tar header checksum mismatch (not a tar archive, or a damaged one)')
            kind = header[156:157]
            size = _nti(header[124:136])
            if kind in (b'x', b'g'):
                records = _parse_pax(self._block_data(size))
                (pax if kind == b'x' else global_pax).update(records)
                continue
            if kind in (b'L', b'K'):
                value = self._block_data(size).rstrip(b'\0')
                if kind == b'L':
                    long_name = value
                else:
                    long_link = value
                continue
            if kind in (b'S', b'M'):
                raise UnsupportedError('GNU sparse or multi-volume tar members are not supported; write the archive without --sparse')
            attrs = dict(global_pax, **pax) if global_pax else pax
            name = _nts(header[0:100])
            if header[257:263] == b'ustar\0':  # POSIX: a prefix field extends the name
                prefix = _nts(header[345:500])
                if prefix:
                    name = prefix + '/' + name
            if long_name is not None:
                name = _text(long_name)
            linkname = _text(long_link) if long_link is not None else _nts(header[157:257])
            member = TarMember(name, kind, _nti(header[100:108]), _nti(header[108:116]), _nti(header[116:124]), size,
                               float(_nti(header[136:148])), linkname, _nti(header[329:337]), _nti(header[337:345]), attrs)
            try:
                if 'path' in attrs:
                    member.name = _text(attrs['path'])
                if 'linkpath' in attrs:
                    member.linkname = _text(attrs['linkpath'])
                for key in ('size', 'uid', 'gid'):
                    if key in attrs:
                        setattr(member, key, int(attrs[key]))
                if 'mtime' in attrs:
                    member.mtime = float(attrs['mtime'])
            except ValueError:
                raise CorruptStreamError('bad PAX value in the header of %r' % member.name) from None
            if kind in (REGTYPE, AREGTYPE) and member.name.endswith('/'):
                member.type = DIRTYPE  # old (pre-POSIX) archives mark directories by the trailing slash only
            pax = {}
            long_name = long_link = None
            # Regular files carry data; so do unknown types (skipped). Links, directories and devices do not,
            # whatever their size field says (tarfile and GNU tar read them the same way).
            has_data = member.isreg() or member.type not in (LNKTYPE, SYMTYPE, DIRTYPE, CHRTYPE, BLKTYPE, FIFOTYPE)
            self._left = member.size if has_data else 0
            self._pad = -member.size % BLOCK if has_data else 0
            yield member
            self._reader.skip(self._left + self._pad)
            self._left = self._pad = 0


def open_tar_stream(source: Readable, threaded: bool = True) -> tuple[TarStream, ByteReader, DecompressedChunks]:
    """A ``TarStream`` over a possibly compressed source, with the reader (for ``drain``) and the chunk
    producer (``close`` it when done)."""
    chunks = DecompressedChunks(source, threaded=threaded)
    reader = ByteReader(chunks)
    return TarStream(reader), reader, chunks


__all__ = ['CHUNK', 'HAS_ZSTANDARD', 'OciError', 'TarMember', 'TarStream', 'ByteReader', 'DecompressedChunks', 'compression_of',
           'open_tar_stream']
