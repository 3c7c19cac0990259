# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Streamed, safe tar extraction: the standard library's ``tarfile`` reads each layer, this file writes it below one directory.

Standard library only (``zstandard`` optional, for ``.tar.zst``), no Ansible imports: the
maintenance OS's image steps run this same file.  The layer is decompressed by ``decompress.py``
in a thread of its own and read by ``tarfile`` in stream mode (``r|``); every member goes through
``MemberPolicy`` (a tarfile extraction filter) and then through ``TarExtractor``'s writer, not
through ``TarFile.extract``: tarfile writes by path (it follows a symlink already in the target,
writes through an existing hard link) and restores no xattrs, which a filter, seeing only the
member, cannot change.  A tar parser of our own read the stream until issue 11; measured against
tarfile on the 1 GiB rootfs bench it was not 1.3 times faster on ext4, so it went (docs/oci.md,
"Benchmark").

Safety model (what ``TarExtractor`` guarantees):

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
import os
import re
import stat
import sys
import tarfile
import typing as t
import urllib.parse
from dataclasses import dataclass, field

from .decompress import CHUNK, DecompressedChunks, Readable
from .errors import CorruptStreamError, OciError, UnsafeArchiveError, UnsupportedError


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


class _Tree:
    """Directory handles below one root, opened without following symlinks and cached.

    ``mounts`` maps a directory of the archive (``('boot',)``) to another staging directory: the one made
    inside the file system mounted there in the target, so that what belongs below a mount point is
    written on that file system (a later ``rename`` cannot cross file systems).
    """

    def __init__(self, root: str, mounts: t.Mapping[tuple[str, ...], str] | None = None) -> None:
        self.root = root
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: dict[tuple[str, ...], int] = {(): self.root_fd}
        self.mounts = dict(mounts or {})
        for parts, path in self.mounts.items():
            self._cache[parts] = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)

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
            for key in [key for key in self._cache if key and key not in self.mounts]:
                os.close(self._cache.pop(key))

    def path(self, parts: tuple[str, ...]) -> str:
        """Where the entry ``parts`` lives in the staging: below the deepest mount staging that strictly
        contains it.  A mount point's own entry (its metadata) stays in its parent's staging, from where
        the merge applies it to the mount point."""
        for depth in range(len(parts) - 1, 0, -1):
            base = self.mounts.get(parts[:depth])
            if base is not None:
                return os.path.join(base, *parts[depth:])
        return os.path.join(self.root, *parts) if parts else self.root


def _remove_existing(name: str, parent_fd: int, member: str) -> None:
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise UnsafeArchiveError('member %r: a directory of that name already exists; refusing to replace it with a non-directory' % member)
    os.unlink(name, dir_fd=parent_fd)


def pax_xattrs(pax: t.Mapping[str, bytes | str]) -> dict[str, bytes]:
    """Extended attributes from PAX records: ``SCHILY.xattr.*`` (GNU tar ``--xattrs``, star) and
    ``LIBARCHIVE.xattr.*`` (bsdtar: URL-encoded name, base64 value).  Values given as ``str`` (tarfile
    decodes them, with ``surrogateescape`` for bytes that are not UTF-8) are encoded back to the bytes."""
    found: dict[str, bytes] = {}
    for key, value in pax.items():
        raw = value.encode('utf-8', 'surrogateescape') if isinstance(value, str) else value
        if key.startswith('SCHILY.xattr.'):
            found[key[len('SCHILY.xattr.'):]] = raw
        elif key.startswith('LIBARCHIVE.xattr.'):
            found[urllib.parse.unquote(key[len('LIBARCHIVE.xattr.'):])] = base64.b64decode(raw + b'=' * (-len(raw) % 4))
    return found


class MemberPolicy:
    """The archive's side of the safety policy, as a tarfile extraction filter: ``policy(member, dest_path)``
    returns the member unchanged or raises.

    - sparse and multi-volume members: ``UnsupportedError``;
    - names and hard-link targets: relative, no ``..``, no NUL (``member_parts``), else ``UnsafeArchiveError``;
      a hard link to the archive root is refused;
    - symlinks: a relative target that climbs above the tree is refused; an absolute target is kept
      (in a root file system it means the target's own root) unless ``allow_absolute_symlinks`` is false;
    - modes (setuid, setgid, sticky), numeric owners, xattrs and device nodes pass unchanged: the
      writer restores them (owners when running as root).

    The target's side (never follow a symlink while writing, unlink before writing, hard links only to
    earlier members and never to directories) needs the target's state; ``TarExtractor`` enforces it
    with directory descriptors.
    """

    def __init__(self, allow_absolute_symlinks: bool = True) -> None:
        self.allow_absolute_symlinks = allow_absolute_symlinks

    def __call__(self, member: tarfile.TarInfo, dest_path: str = '') -> tarfile.TarInfo:
        self.check(member)
        return member

    def check(self, member: tarfile.TarInfo) -> tuple[str, ...]:
        """Raise if ``member`` breaks the policy; its name's components otherwise."""
        if member.type in (tarfile.GNUTYPE_SPARSE, _GNU_MULTIVOLUME) or member.sparse is not None:
            raise UnsupportedError('member %r: GNU sparse or multi-volume tar members are not supported; write the archive without --sparse'
                                   % member.name)
        parts = member_parts(member.name)
        if member.issym():
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
        elif member.islnk() and not member_parts(member.linkname, 'hard link target of %r:' % member.name):
            raise UnsafeArchiveError('member %r: hard link to the archive root' % member.name)
        return parts


_GNU_MULTIVOLUME = b'M'  # tarfile has no name for it and would read it as a regular file
DataReader = t.Callable[[int], bytes]


class TarExtractor:
    """Extract tar streams below ``root``; call ``extract`` once per layer, then ``finish``.

    ``tarfile`` reads each layer in stream mode; every member goes through ``MemberPolicy``, then
    through ``write_member``.
    """

    def __init__(self, root: str, preserve_owner: bool | None = None, allow_absolute_symlinks: bool = True,
                 mounts: t.Mapping[tuple[str, ...], str] | None = None) -> None:
        self.tree = _Tree(root, mounts)
        self.preserve_owner = os.geteuid() == 0 if preserve_owner is None else preserve_owner
        # New files belong to us unless a setgid directory hands its group down: then always chown.
        # Skipping chown and chmod where they would change nothing saves two of six syscalls per file.
        self._creator = (os.geteuid(), os.getegid())
        self._always_chown = bool(os.stat(root).st_mode & stat.S_ISGID)
        self._umask = _current_umask()
        self.policy = MemberPolicy(allow_absolute_symlinks)
        self.dirs: dict[tuple[str, ...], _DirMeta] = {}
        self.stats = ExtractStats()

    # -- one archive -------------------------------------------------------------------------------
    def extract(self, fileobj: Readable) -> ExtractStats:
        """Extract one (possibly compressed) tar stream; returns its statistics.  The stream is read to
        its end, past the end-of-archive marker, so a wrapping digest check sees every byte."""
        source, mode, chunks, compression = self.tar_stream(fileobj)
        stats = ExtractStats(compression=compression)
        try:
            try:
                self._read_members(source, mode, stats)
            except tarfile.TarError as exc:  # ReadError, CompressionError, StreamError
                raise CorruptStreamError('the %s layer does not read as tar: %s' % (compression, exc)) from None
            for _chunk in iter(lambda: source.read(CHUNK), b''):
                pass
        finally:
            if chunks is not None:
                chunks.close()
        self.stats.add(stats)
        return stats

    def tar_stream(self, fileobj: Readable) -> tuple[Readable, t.Literal['r|', 'r|*'], DecompressedChunks | None, str]:
        """What tarfile reads, in which mode, the decompressor to close afterwards, and the compression found:
        ``r|`` over ``DecompressedChunks`` (the bench replaces this to measure tarfile's own decompression)."""
        chunks = DecompressedChunks(fileobj)
        return _ChunkFile(chunks), 'r|', chunks, chunks.compression

    def _read_members(self, source: Readable, mode: t.Literal['r|', 'r|*'], stats: ExtractStats) -> None:
        fileobj = t.cast(t.IO[bytes], source)
        try:
            # Python 3.13 caches no members in stream mode when asked (stream=True); earlier versions always
            # do, so the list is emptied after each member below: memory must not grow with the archive.
            if sys.version_info >= (3, 13):
                archive = tarfile.open(fileobj=fileobj, mode=mode, encoding='utf-8', errors='surrogateescape', tarinfo=_StrictTarInfo, stream=True)
            else:
                archive = tarfile.open(fileobj=fileobj, mode=mode, encoding='utf-8', errors='surrogateescape', tarinfo=_StrictTarInfo)
        except _EmptyArchive:
            return
        with archive:
            data = archive.fileobj  # the stream tarfile itself copies member data from (TarFile.makefile)
            while True:
                member = archive.next()
                if member is None:
                    return
                if sys.version_info < (3, 13):
                    archive.members.clear()  # type: ignore[attr-defined]  # the cache stream=True turns off on 3.13
                # tarfile.extractfile() would wrap each member in two file objects (1.79 s instead of 1.48 s for 16,689
                # files on tmpfs); the data of the member just read starts at the stream's position.
                if member.isreg() and data.tell() != member.offset_data:
                    raise CorruptStreamError('tarfile: member %r: data expected at offset %d, stream at %d'
                                             % (member.name, member.offset_data, data.tell()))
                self.write_member(member, pax_xattrs(member.pax_headers), data.read, stats)

    def write_member(self, member: tarfile.TarInfo, xattrs: dict[str, bytes], read: DataReader, stats: ExtractStats) -> None:
        """Check ``member`` against the policy and write it; ``read(n)`` gives up to ``n`` bytes of its data."""
        parts = self.policy.check(member)
        self.tree.trim()
        if not parts:
            if member.isdir():
                self.dirs[()] = _DirMeta((), member.mode, member.uid, member.gid, member.mtime, xattrs)
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
            self.dirs[parts] = _DirMeta(parts, member.mode, member.uid, member.gid, member.mtime, xattrs)
            stats.directories += 1
        elif member.isreg():
            self._write_file(member, xattrs, read, parent, leaf, stats)
        elif member.issym():
            _remove_existing(leaf, parent, member.name)
            os.symlink(member.linkname, leaf, dir_fd=parent)
            self._set_meta_at(member, xattrs, parent, leaf, symlink=True)
            stats.symlinks += 1
        elif member.islnk():
            self._hardlink(member, parent, leaf)
            stats.hardlinks += 1
        elif member.isdev():
            _remove_existing(leaf, parent, member.name)
            kind = {b'3': stat.S_IFCHR, b'4': stat.S_IFBLK}.get(member.type, stat.S_IFIFO)
            try:
                os.mknod(leaf, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
            except PermissionError:
                raise OciError('member %r: creating device nodes needs root' % member.name) from None
            self._set_meta_at(member, xattrs, parent, leaf)
            stats.devices += 1
        # Other types (GNU volume headers, ...) carry nothing to write.

    def _write_file(self, member: tarfile.TarInfo, xattrs: dict[str, bytes], read: DataReader, parent: int, leaf: str, stats: ExtractStats) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        created_mode = member.mode & 0o777  # the staging directory is 0700: nobody else sees the file yet
        try:
            fd = os.open(leaf, flags, created_mode, dir_fd=parent)
        except FileExistsError:  # a repeated member: never write through an existing (hard-linked) file
            _remove_existing(leaf, parent, member.name)
            fd = os.open(leaf, flags, created_mode, dir_fd=parent)
        try:
            left = member.size
            while left:
                view = memoryview(read(min(CHUNK, left)))
                if not view:
                    raise CorruptStreamError('the tar stream ends inside member %r' % member.name)
                left -= len(view)
                while view:
                    view = view[os.write(fd, view):]
            chowned = self._needs_chown(member)
            if chowned:
                os.fchown(fd, member.uid, member.gid)
            if chowned or member.mode & 0o7777 != created_mode & ~self._umask:
                os.fchmod(fd, member.mode & 0o7777)  # after chown, which clears setuid/setgid
            for key, value in xattrs.items():
                _setxattr(fd, key, value, member.name)
            os.utime(fd, ns=(int(member.mtime * 1e9),) * 2)
        finally:
            os.close(fd)
        stats.files += 1
        stats.bytes += member.size

    def _hardlink(self, member: tarfile.TarInfo, parent: int, leaf: str) -> None:
        source = member_parts(member.linkname, 'hard link target of %r:' % member.name)
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

    def _needs_chown(self, member: tarfile.TarInfo) -> bool:
        return self.preserve_owner and (self._always_chown or (member.uid, member.gid) != self._creator)

    def _set_meta_at(self, member: tarfile.TarInfo, xattrs: dict[str, bytes], parent: int, leaf: str, symlink: bool = False) -> None:
        if self._needs_chown(member):
            os.chown(leaf, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if not symlink:
            os.chmod(leaf, member.mode & 0o7777, dir_fd=parent)
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
                if self.preserve_owner and (self._always_chown or (meta.uid, meta.gid) != self._creator):
                    os.fchown(fd, meta.uid, meta.gid)
                os.fchmod(fd, meta.mode & 0o7777)  # always: directories are made 0700 while they fill
                for key, value in meta.xattrs.items():
                    _setxattr(fd, key, value, '/'.join(meta.parts) or '.')
                os.utime(fd, ns=(int(meta.mtime * 1e9),) * 2)
            finally:
                os.close(fd)
        self.tree.close()
        return self.stats

    def close(self) -> None:
        self.tree.close()


class _EmptyArchive(Exception):
    """Raised out of tarfile when the stream holds no header at all (an empty layer is an empty archive)."""


# tarfile's header errors for "a zero block" and "no bytes left", the two ends of an archive (in 3.9 to 3.13; not in typeshed).
_EOF_HEADER: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EMPTY_HEADER: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile reads a damaged header after the first member as the end of the archive (``TarFile.next``
    swallows ``InvalidHeaderError`` and ``TruncatedHeaderError`` at offsets above 0): the rest of the tree
    would be missing without an error.  Here they are errors; only a zero block or the
    end of the stream ends an archive, and a stream without any header is an empty archive."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _StrictTarInfo:  # pylint: disable=arguments-renamed  # 'tarfile' is the module
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            if isinstance(exc, _EMPTY_HEADER) and tarfile_.offset == 0:
                raise _EmptyArchive() from None
            if isinstance(exc, (_EOF_HEADER, _EMPTY_HEADER)):
                raise
            raise CorruptStreamError('damaged tar header near offset %d: %s' % (tarfile_.offset, exc)) from None


class _ChunkFile:
    """``read(n)`` over ``DecompressedChunks``, for tarfile's stream mode (``r|``)."""

    def __init__(self, chunks: DecompressedChunks) -> None:
        self._chunks = chunks
        self._buf = b''
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._buf):
            self._buf, self._pos = self._chunks.next_chunk(), 0
            if not self._buf:
                return b''
        end = len(self._buf) if size is None or size < 0 else self._pos + size
        data = self._buf[self._pos:end]
        self._pos += len(data)
        return data


def _current_umask() -> int:
    """The process umask without changing it (os.umask sets it, which races with other threads)."""
    try:
        with open('/proc/self/status', encoding='ascii') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _setxattr(target: int | str, key: str, value: bytes, member: str) -> None:
    try:
        if isinstance(target, int):
            os.setxattr(target, key, value)
        else:
            os.setxattr(target, key, value, follow_symlinks=False)
    except OSError as exc:
        raise OciError('member %r: cannot set extended attribute %s: %s (does the target file system support it?)'
                       % (member, key, exc.strerror)) from None


def mount_points_below(directory: str) -> list[str]:
    """Mount points strictly below ``directory`` (from /proc/self/mountinfo), shallowest first."""
    base = os.path.realpath(directory)
    found = []
    try:
        with open('/proc/self/mountinfo', encoding='utf-8', errors='surrogateescape') as mountinfo:
            for line in mountinfo:
                fields = line.split(' ')
                if len(fields) < 5:
                    continue
                # Field 5 is the mount point with space, tab, newline and backslash as octal escapes.
                point = re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), fields[4])
                if point.startswith(base.rstrip('/') + '/') and os.path.isdir(point):
                    found.append(point)
    except OSError:
        return []
    return sorted(set(found), key=lambda p: (p.count('/'), p))


def merge_tree(source: str, dest: str) -> None:
    """Move everything below ``source`` into ``dest`` (same file system) by renames, then remove ``source``.

    An entry missing in ``dest`` is renamed into place (a whole subtree at once); a directory present in
    both is merged recursively; any other entry in ``dest`` is replaced atomically by ``rename``.  An
    artifact file or symlink where ``dest`` has a directory raises ``OciError`` (entries moved before it
    stay moved; the rest stays in ``source`` for the caller to remove).
    """
    # The two top directories are the caller's (dest may well be a symlink to a mount point); below
    # them nothing is followed.
    src_fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dst_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
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
