# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tar archives for unpack tests, written member by member (so tests can also write hostile ones)
and compressed with the real tools (gzip, zstd) where the format matters."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import typing as t
from pathlib import Path

MTIME = 1700000000


def member(name: str, data: bytes = b'', *, type: bytes = tarfile.REGTYPE, mode: int = 0o644, uid: int = 0, gid: int = 0,
           linkname: str = '', xattrs: t.Mapping[str, bytes] | None = None, mtime: int = MTIME) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = type
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ''
    info.mtime = mtime
    info.linkname = linkname
    info.size = len(data) if type == tarfile.REGTYPE else 0
    if xattrs:
        # GNU tar --xattrs writes SCHILY.xattr.<name>; tarfile encodes str values as UTF-8, so pass bytes through surrogateescape.
        info.pax_headers = {'SCHILY.xattr.' + key: value.decode('utf-8', 'surrogateescape') for key, value in xattrs.items()}
    return info, data


def write_tar(path: Path, members: t.Iterable[tuple[tarfile.TarInfo, bytes]], compression: str = 'gzip') -> Path:
    """Write the members as a PAX tar, compressed with ``gzip`` / ``zstd`` (the CLI tools) or not (``none``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT, encoding='utf-8', errors='surrogateescape') as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buffer.getvalue()
    if compression == 'gzip':
        raw = subprocess.run(['gzip', '-c', '-n', '-6'], input=raw, check=True, capture_output=True).stdout
    elif compression == 'zstd':
        raw = subprocess.run(['zstd', '-q', '-c', '-3'], input=raw, check=True, capture_output=True).stdout
    elif compression != 'none':
        raise ValueError(compression)
    path.write_bytes(raw)
    return path


# cap_net_raw+ep as setcap writes it (VFS_CAP_REVISION_2), and a user xattr with a non-UTF-8 value.
PING_XATTRS = {'security.capability': b'\x01\x00\x00\x02\x00\x20\x00\x00' + b'\x00' * 12, 'user.l3metal': b'\xff\x00binary'}


def rootfs_members() -> list[tuple[tarfile.TarInfo, bytes]]:
    """A small tree with what a root file system has: nested dirs, setuid binary, owners, symlinks
    (relative and absolute), a hard link, an xattr with a binary value, an empty file and a read-only dir."""
    return [
        member('./', type=tarfile.DIRTYPE, mode=0o755),
        member('etc/', type=tarfile.DIRTYPE, mode=0o755),
        member('etc/hostname', b'node01\n'),
        member('etc/shadow', b'root:*:19000:0:99999:7:::\n', mode=0o640, gid=42),
        member('usr/bin/passwd', b'\x7fELF passwd', mode=0o4755),
        member('usr/bin/ping', b'\x7fELF ping', mode=0o755, xattrs=PING_XATTRS),
        member('usr/bin/vi', type=tarfile.SYMTYPE, linkname='/etc/alternatives/vi'),
        member('usr/bin/view', type=tarfile.SYMTYPE, linkname='vi'),
        member('usr/bin/python3', b'#!python\n' * 100, mode=0o755, uid=1000, gid=1000),
        member('usr/bin/python3.11', type=tarfile.LNKTYPE, linkname='usr/bin/python3', mode=0o755, uid=1000, gid=1000),
        member('var/empty', b''),
        member('srv/ro/', type=tarfile.DIRTYPE, mode=0o555),
        member('srv/ro/file', b'inside a read-only dir\n', mode=0o444),
        member('home/user/', type=tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000),
        member('home/user/.profile', b'export PS1=x\n', uid=1000, gid=1000),
    ]


class Entry(t.NamedTuple):
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    link: str | None


def snapshot(root: Path) -> dict[str, Entry]:
    """Every path below root (without the root) with type, permission bits, owner, size and symlink target."""
    found: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            kind = 'dir' if stat.S_ISDIR(st.st_mode) else 'link' if stat.S_ISLNK(st.st_mode) else 'file'
            found[str(path.relative_to(root))] = Entry(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                                       st.st_size if kind == 'file' else 0, os.readlink(path) if kind == 'link' else None)
    return found
