# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streamed, safe tar extraction: decompress on the fly and write members below one directory.

Standard library only (``zstandard`` optional, for ``.tar.zst``), no Ansible imports: the
maintenance OS imports this file through a relative symlink.

Safety model (what ``extract_tar`` guarantees):

- Member names and hard-link targets must be relative and must not contain ``..``; an absolute
  name or a ``..`` component raises ``UnsafeArchiveError`` (GNU tar strips ``/``; we refuse, since a
  well-made rootfs tar never has one).
- Files are created relative to directory file descriptors opened with ``O_NOFOLLOW``, component by
  component: a symlink in the archive (or already in the target) is never followed while
  extracting, so ``link -> /etc`` followed by ``link/passwd`` is refused instead of writing
  ``/etc/passwd``.
- Relative symlink targets that climb out of the tree (``a/l -> ../../x``) are refused. Absolute
  symlink targets (``/usr/bin/vi -> /etc/alternatives/vi``) are kept, because in a root file system
  they mean the target's own root once booted or chrooted; pass ``allow_absolute_symlinks=False`` to
  refuse them too.
- Regular files are unlinked before they are written (never written through an existing hard link).
- Ownership (numeric uid/gid, like ``tar --numeric-owner``: the host's user names mean nothing for
  the target's files) is kept when running as root; modes including setuid/setgid/sticky,
  modification times, xattrs (``SCHILY.xattr.*`` as written by GNU tar ``--xattrs``, and
  ``LIBARCHIVE.xattr.*``) and device nodes are kept.  Directory metadata is applied at the end,
  deepest first, as tar does.
"""

from __future__ import annotations

import base64
import errno
import lzma
import os
import stat
import tarfile
import typing as t
import urllib.parse
import zlib
from dataclasses import dataclass, field

from ._oci_errors import CorruptStreamError, OciError, UnsafeArchiveError, UnsupportedError

try:
    import zstandard as _zstd
    HAS_ZSTANDARD = True
except ImportError:  # pragma: no cover - depends on the host
    _zstd = None
    HAS_ZSTANDARD = False

_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (zlib.error, lzma.LZMAError) + ((_zstd.ZstdError,) if _zstd is not None else ())

CHUNK = 1024 * 1024
_GZIP_MAGIC = b'\x1f\x8b'
_ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
_XZ_MAGIC = b'\xfd7zXZ\x00'


class Readable(t.Protocol):
    def read(self, size: int = -1) -> bytes: ...


class _Decompressor(t.Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b''


class _Gzip:
    """Multi-member gzip (``pigz`` and concatenated files write several members)."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj(wbits=31)

    def feed(self, data: bytes) -> bytes:
        out = [self._obj.decompress(data)]
        while self._obj.eof and self._obj.unused_data:
            rest = self._obj.unused_data
            self._obj = zlib.decompressobj(wbits=31)
            out.append(self._obj.decompress(rest))
        return b''.join(out)

    def flush(self) -> bytes:
        tail = self._obj.flush()
        if not self._obj.eof:
            raise CorruptStreamError('the gzip stream is truncated (no end-of-stream marker)')
        return tail


class _Xz:
    def __init__(self) -> None:
        self._obj = lzma.LZMADecompressor()

    def feed(self, data: bytes) -> bytes:
        return self._obj.decompress(data)

    def flush(self) -> bytes:
        if not self._obj.eof:
            raise CorruptStreamError('the xz stream is truncated (no end-of-stream marker)')
        return b''


class _Zstd:
    def __init__(self) -> None:
        if _zstd is None:
            raise UnsupportedError('a zstd-compressed layer needs the Python package "zstandard" (pip install zstandard)')
        self._dctx = _zstd.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()

    def feed(self, data: bytes) -> bytes:
        out = [self._obj.decompress(data)]
        # A stream may hold several frames (zstd --rsyncable, concatenation).
        while self._obj.eof and self._obj.unused_data:
            rest = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            out.append(self._obj.decompress(rest))
        return b''.join(out)

    def flush(self) -> bytes:
        return b''


def compression_of(head: bytes) -> str:
    """``gzip``, ``zstd``, ``xz`` or ``none`` from the first bytes of a blob (media types lie: oras pushes
    every file as ``...layer.v1.tar``)."""
    if head.startswith(_GZIP_MAGIC):
        return 'gzip'
    if head.startswith(_ZSTD_MAGIC):
        return 'zstd'
    if head.startswith(_XZ_MAGIC):
        return 'xz'
    return 'none'


class DecompressingReader:
    """A file-like ``read(n)`` over a compressed source: gzip, zstd or xz by magic bytes, else as is.

    Memory stays bounded by the source's chunk size times the compression ratio of one chunk; the
    decompressed buffer is consumed through an offset, so small reads (tar headers) cost no copies of
    the whole buffer.
    """

    def __init__(self, source: Readable, chunk_size: int = CHUNK) -> None:
        self._source = source
        self._chunk = chunk_size
        first = source.read(chunk_size)
        self.compression = compression_of(first)
        self._dec: _Decompressor = {'gzip': _Gzip, 'zstd': _Zstd, 'xz': _Xz}.get(self.compression, _Identity)()
        try:
            self._buf = self._dec.feed(first) if first else b''
        except _DECOMPRESS_ERRORS as exc:
            raise CorruptStreamError('corrupt %s stream: %s' % (self.compression, exc)) from None
        self._pos = 0
        self._eof = not first
        if self._eof:
            self._buf += self._dec.flush()

    def _fill(self) -> bool:
        while not self._eof:
            data = self._source.read(self._chunk)
            try:
                if not data:
                    self._eof = True
                    out = self._dec.flush()
                else:
                    out = self._dec.feed(data)
            except _DECOMPRESS_ERRORS as exc:
                raise CorruptStreamError('corrupt %s stream: %s' % (self.compression, exc)) from None
            if out:
                self._buf = self._buf[self._pos:] + out if self._pos < len(self._buf) else out
                self._pos = 0
                return True
        return False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buf[self._pos:]]
            self._buf, self._pos = b'', 0
            while self._fill():
                parts.append(self._buf)
                self._buf, self._pos = b'', 0
            return b''.join(parts)
        if self._pos >= len(self._buf) and not self._fill():
            return b''
        end = self._pos + size
        data = self._buf[self._pos:end]
        self._pos = min(end, len(self._buf))
        return data

    def drain(self) -> int:
        """Read to the end (so the source's digest covers every byte); return how many bytes were left."""
        left = len(self._buf) - self._pos
        self._buf, self._pos = b'', 0
        while self._fill():
            left += len(self._buf)
            self._buf, self._pos = b'', 0
        return left


@dataclass
class ExtractStats:
    """What one archive put into the tree."""

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    devices: int = 0
    bytes: int = 0
    compression: str = 'none'

    def add(self, other: ExtractStats) -> None:
        for name in ('files', 'directories', 'symlinks', 'hardlinks', 'devices', 'bytes'):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _DirMeta:
    parts: tuple[str, ...]
    mode: int
    uid: int
    gid: int
    mtime: float
    xattrs: dict[str, bytes] = field(default_factory=dict)


def member_parts(name: str, what: str = 'member') -> tuple[str, ...]:
    """Split an archive path into safe components; ``()`` is the archive root itself.

    Raises ``UnsafeArchiveError`` for absolute paths, ``..`` components and NUL bytes.
    """
    if '\0' in name:
        raise UnsafeArchiveError('%s %r contains a NUL byte' % (what, name))
    if name.startswith('/'):
        raise UnsafeArchiveError('%s %r is an absolute path; refusing to write outside the target' % (what, name))
    parts = tuple(part for part in name.split('/') if part not in ('', '.'))
    if '..' in parts:
        raise UnsafeArchiveError('%s %r contains "..": refusing to write outside the target' % (what, name))
    return parts


def _xattrs_of(member: tarfile.TarInfo) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith('SCHILY.xattr.'):
            # tarfile decodes non-name pax values as UTF-8 with surrogateescape: this gives the bytes back.
            found[key[len('SCHILY.xattr.'):]] = value.encode('utf-8', 'surrogateescape')
        elif key.startswith('LIBARCHIVE.xattr.'):
            found[urllib.parse.unquote(key[len('LIBARCHIVE.xattr.'):])] = base64.b64decode(value + '=' * (-len(value) % 4))
    return found


class _Tree:
    """Directory handles below one root, opened without following symlinks and cached."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: dict[tuple[str, ...], int] = {(): self.root_fd}

    def close(self) -> None:
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def dir_fd(self, parts: tuple[str, ...], create: bool, member: str) -> int:
        """fd of the directory ``parts`` (created 0700 when missing and ``create``); refuses symlinks."""
        cached = self._cache.get(parts)
        if cached is not None:
            return cached
        parent = self.dir_fd(parts[:-1], create, member)
        name = parts[-1]
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=parent)  # an implicit parent, as tar makes it (umask applies)
            fd = os.open(name, flags, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeArchiveError('member %r: %r is a symlink or not a directory; refusing to write through it'
                                         % (member, '/'.join(parts))) from None
            raise
        self._cache[parts] = fd
        return fd

    def trim(self, limit: int = 512) -> None:
        """Close cached handles beyond ``limit`` (keeping the root).  Called between members only, so
        handles a member is using stay open."""
        if len(self._cache) > limit:
            for key in [key for key in self._cache if key]:
                os.close(self._cache.pop(key))

    def path(self, parts: tuple[str, ...]) -> str:
        return os.path.join(self.root, *parts) if parts else self.root


def _remove_existing(name: str, parent_fd: int, member: str) -> None:
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeArchiveError('member %r: a directory of that name already exists; refusing to replace it with a non-directory' % member)
    os.unlink(name, dir_fd=parent_fd)


class TarExtractor:
    """Extract tar streams below ``root``; call ``extract`` once per layer, then ``finish``."""

    def __init__(self, root: str, preserve_owner: bool | None = None, allow_absolute_symlinks: bool = True) -> None:
        self.tree = _Tree(root)
        self.preserve_owner = os.geteuid() == 0 if preserve_owner is None else preserve_owner
        self.allow_absolute_symlinks = allow_absolute_symlinks
        self.dirs: dict[tuple[str, ...], _DirMeta] = {}
        self.stats = ExtractStats()

    # -- one archive -------------------------------------------------------------------------------
    def extract(self, fileobj: Readable) -> ExtractStats:
        """Extract one (possibly compressed) tar stream; returns its statistics.  The stream is read to
        its end, so a wrapping digest check sees every byte."""
        reader = DecompressingReader(fileobj)
        stats = ExtractStats(compression=reader.compression)
        try:
            archive = tarfile.open(fileobj=t.cast(t.IO[bytes], reader), mode='r|', errorlevel=2)
        except tarfile.ReadError as exc:
            raise CorruptStreamError('layer is not a tar archive (%s compression): %s' % (reader.compression, exc)) from None
        with archive:
            try:
                for member in archive:
                    self._extract_member(archive, member, stats)
            except (tarfile.TarError, EOFError) as exc:
                raise CorruptStreamError('corrupt tar stream: %s' % exc) from None
        reader.drain()
        self.stats.add(stats)
        return stats

    def _extract_member(self, archive: tarfile.TarFile, member: tarfile.TarInfo, stats: ExtractStats) -> None:
        parts = member_parts(member.name)
        self.tree.trim()
        if not parts:
            if member.isdir():
                self.dirs[()] = _DirMeta((), member.mode, member.uid, member.gid, member.mtime, _xattrs_of(member))
            return
        parent = self.tree.dir_fd(parts[:-1], True, member.name)
        leaf = parts[-1]
        if member.isdir():
            try:
                st = os.lstat(leaf, dir_fd=parent)
                if not stat.S_ISDIR(st.st_mode):
                    os.unlink(leaf, dir_fd=parent)
                    raise FileNotFoundError
            except FileNotFoundError:
                os.mkdir(leaf, 0o700, dir_fd=parent)
            self.dirs[parts] = _DirMeta(parts, member.mode, member.uid, member.gid, member.mtime, _xattrs_of(member))
            stats.directories += 1
        elif member.isreg():
            self._write_file(archive, member, parent, leaf, stats)
        elif member.issym():
            self._symlink(member, parts, parent, leaf)
            stats.symlinks += 1
        elif member.islnk():
            self._hardlink(member, parent, leaf)
            stats.hardlinks += 1
        elif member.ischr() or member.isblk() or member.isfifo():
            _remove_existing(leaf, parent, member.name)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            try:
                os.mknod(leaf, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
            except PermissionError:
                raise OciError('member %r: creating device nodes needs root' % member.name) from None
            self._set_meta_at(member, parent, leaf)
            stats.devices += 1
        # Other types (GNU volume headers, ...) carry nothing to write.

    def _write_file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, parent: int, leaf: str, stats: ExtractStats) -> None:
        _remove_existing(leaf, parent, member.name)
        fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            source = archive.extractfile(member)
            if source is not None:
                remaining = member.size
                while remaining > 0:
                    chunk = source.read(min(CHUNK, remaining))
                    if not chunk:
                        raise CorruptStreamError('member %r: archive ends inside the file' % member.name)
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    remaining -= len(chunk)
            if self.preserve_owner:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            for key, value in _xattrs_of(member).items():
                _setxattr(fd, key, value, member.name)
            os.utime(fd, ns=(int(member.mtime * 1e9),) * 2)
        finally:
            os.close(fd)
        stats.files += 1
        stats.bytes += member.size

    def _symlink(self, member: tarfile.TarInfo, parts: tuple[str, ...], parent: int, leaf: str) -> None:
        target = member.linkname
        if target.startswith('/'):
            if not self.allow_absolute_symlinks:
                raise UnsafeArchiveError('member %r: absolute symlink target %r refused' % (member.name, target))
        else:
            depth = len(parts) - 1
            for part in target.split('/'):
                if part == '..':
                    depth -= 1
                    if depth < 0:
                        raise UnsafeArchiveError('member %r: symlink target %r points outside the target directory' % (member.name, target))
                elif part not in ('', '.'):
                    depth += 1
        _remove_existing(leaf, parent, member.name)
        os.symlink(target, leaf, dir_fd=parent)
        self._set_meta_at(member, parent, leaf, symlink=True)

    def _hardlink(self, member: tarfile.TarInfo, parent: int, leaf: str) -> None:
        source = member_parts(member.linkname, 'hard link target of %r:' % member.name)
        if not source:
            raise UnsafeArchiveError('member %r: hard link to the archive root' % member.name)
        try:
            source_parent = self.tree.dir_fd(source[:-1], False, member.name)
            st = os.lstat(source[-1], dir_fd=source_parent)
        except FileNotFoundError:
            raise UnsafeArchiveError('member %r: hard link target %r is not an earlier member of the archive' % (member.name, member.linkname)) from None
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeArchiveError('member %r: hard link to directory %r' % (member.name, member.linkname))
        if (source_parent, source[-1]) == (parent, leaf):
            return
        _remove_existing(leaf, parent, member.name)
        os.link(source[-1], leaf, src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)

    def _set_meta_at(self, member: tarfile.TarInfo, parent: int, leaf: str, symlink: bool = False) -> None:
        if self.preserve_owner:
            os.chown(leaf, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if not symlink:
            os.chmod(leaf, member.mode & 0o7777, dir_fd=parent)
        xattrs = _xattrs_of(member)
        if xattrs:
            path = '/proc/self/fd/%d/%s' % (parent, leaf)
            for key, value in xattrs.items():
                _setxattr(path, key, value, member.name)
        os.utime(leaf, ns=(int(member.mtime * 1e9),) * 2, dir_fd=parent, follow_symlinks=False)

    # -- after the last archive ----------------------------------------------------------------------
    def finish(self) -> ExtractStats:
        """Apply directory metadata deepest first (a read-only directory must not block its own files)."""
        for meta in sorted(self.dirs.values(), key=lambda m: len(m.parts), reverse=True):
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.tree.path(meta.parts), flags)
            try:
                if self.preserve_owner:
                    os.fchown(fd, meta.uid, meta.gid)
                os.fchmod(fd, meta.mode & 0o7777)
                for key, value in meta.xattrs.items():
                    _setxattr(fd, key, value, '/'.join(meta.parts) or '.')
                os.utime(fd, ns=(int(meta.mtime * 1e9),) * 2)
            finally:
                os.close(fd)
        self.tree.close()
        return self.stats

    def close(self) -> None:
        self.tree.close()


def _setxattr(target: int | str, key: str, value: bytes, member: str) -> None:
    try:
        if isinstance(target, int):
            os.setxattr(target, key, value)
        else:
            os.setxattr(target, key, value, follow_symlinks=False)
    except OSError as exc:
        raise OciError('member %r: cannot set extended attribute %s: %s (does the target file system support it?)'
                       % (member, key, exc.strerror)) from None


def merge_tree(source: str, dest: str) -> None:
    """Move everything below ``source`` into ``dest`` (same file system) by renames, then remove ``source``.

    An entry missing in ``dest`` is renamed into place (a whole subtree at once); a directory present in
    both is merged recursively; any other entry in ``dest`` is replaced atomically by ``rename``.  An
    archive file where ``dest`` has a directory is refused before anything of that entry moves.
    """
    src_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    dst_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _merge_fds(src_fd, dst_fd, dest)
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    os.rmdir(source)


def _merge_fds(src_fd: int, dst_fd: int, where: str) -> None:
    for name in os.listdir(src_fd):
        st_src = os.lstat(name, dir_fd=src_fd)
        try:
            st_dst = os.lstat(name, dir_fd=dst_fd)
        except FileNotFoundError:
            os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            continue
        if stat.S_ISDIR(st_src.st_mode) and stat.S_ISDIR(st_dst.st_mode):
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            sub_src = os.open(name, flags, dir_fd=src_fd)
            sub_dst = os.open(name, flags, dir_fd=dst_fd)
            try:
                _merge_fds(sub_src, sub_dst, os.path.join(where, name))
                # The archive's directory metadata wins, as with tar over an existing tree.
                os.fchmod(sub_dst, stat.S_IMODE(st_src.st_mode))
                if (st_src.st_uid, st_src.st_gid) != (st_dst.st_uid, st_dst.st_gid):
                    os.fchown(sub_dst, st_src.st_uid, st_src.st_gid)
                os.utime(sub_dst, ns=(st_src.st_atime_ns, st_src.st_mtime_ns))
            finally:
                os.close(sub_src)
                os.close(sub_dst)
            os.rmdir(name, dir_fd=src_fd)
        elif stat.S_ISDIR(st_dst.st_mode):
            raise OciError('%s is a directory in the target but not in the artifact; remove it first'
                           % os.path.join(where, name))
        else:
            if stat.S_ISDIR(st_src.st_mode):  # rename() cannot put a directory over a file or symlink
                os.unlink(name, dir_fd=dst_fd)
            os.rename(name, name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
