# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The extractor against archives written by Python's tarfile (no registry needed): formats, metadata,
the safety policy on a temp dir, and what it adds to tarfile (damaged headers are errors, memory)."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from l3metal_lab.prerequisites import require
from l3metal_oci.errors import CorruptStreamError, UnsafeArchiveError, UnsupportedError
from l3metal_oci.unpack import MemberPolicy, TarExtractor, member_parts, pax_xattrs


def archive(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=fmt, encoding='utf-8', errors='surrogateescape') as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def info(name: str, data: bytes = b'', kind: bytes = tarfile.REGTYPE, **attrs) -> tuple[tarfile.TarInfo, bytes]:
    item = tarfile.TarInfo(name)
    item.type = kind
    item.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in attrs.items():
        setattr(item, key, value)
    return item, data


def unpack(root, raw: bytes, **kwargs):
    unpacker = TarExtractor(str(root), **dict({'preserve_owner': False}, **kwargs))
    stats = unpacker.extract(io.BytesIO(raw))
    unpacker.finish()
    return stats


@pytest.mark.parametrize('fmt', [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_formats_and_long_names(tmp_path, fmt):
    long_dir = '/'.join(['d%02d' % i for i in range(30)])  # 119 characters: needs the ustar prefix, GNU L or PAX path
    members = [info(long_dir + '/file', b'hello', mode=0o4755, uid=1000),
               info('link', kind=tarfile.SYMTYPE, linkname='target'),
               info('dir', kind=tarfile.DIRTYPE, mode=0o700),
               info('empty')]
    if fmt != tarfile.USTAR_FORMAT:
        members.append(info('x' * 150, b'long name'))
        members.append(info('l', kind=tarfile.SYMTYPE, linkname='y' * 150))
    unpack(tmp_path, archive(members, fmt))
    assert (tmp_path / long_dir / 'file').read_bytes() == b'hello' and (tmp_path / long_dir / 'file').stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(tmp_path / 'link') == 'target'
    assert (tmp_path / 'dir').is_dir() and (tmp_path / 'dir').stat().st_mode & 0o777 == 0o700
    assert (tmp_path / 'empty').read_bytes() == b''
    if fmt != tarfile.USTAR_FORMAT:
        assert (tmp_path / ('x' * 150)).read_bytes() == b'long name' and os.readlink(tmp_path / 'l') == 'y' * 150


def test_pax_records_fractional_mtimes_and_xattrs(tmp_path):
    item, data = info('f', b'abc', mtime=1700000000.5)
    item.pax_headers = {'SCHILY.xattr.user.k': b'\xff\x00v'.decode('utf-8', 'surrogateescape'), 'LIBARCHIVE.xattr.user.b64': 'aGk'}
    # tarfile hands the records over as text, with surrogateescape for bytes that are not UTF-8: pax_xattrs gives the bytes back
    with tarfile.open(fileobj=io.BytesIO(archive([(item, data)])), mode='r|', encoding='utf-8', errors='surrogateescape') as read:
        assert pax_xattrs(read.next().pax_headers) == {'user.k': b'\xff\x00v', 'user.b64': b'hi'}
    unpack(tmp_path, archive([(item, data)]))
    assert os.stat(tmp_path / 'f').st_mtime_ns == 1700000000500000000
    assert os.getxattr(tmp_path / 'f', 'user.k') == b'\xff\x00v' and os.getxattr(tmp_path / 'f', 'user.b64') == b'hi'


def test_numeric_owners_beyond_octal_fields_when_root(tmp_path):
    """A PAX uid above 2**32 / 2 and a GNU base-256 uid (above 8 octal digits) are restored as numbers."""
    require(os.geteuid() == 0, 'chown needs root')
    pax = archive([info('pax', b'x', uid=3000000000, gid=7)])
    gnu = archive([info('gnu', b'y', uid=3000000, gid=3000001)], tarfile.GNU_FORMAT)
    unpack(tmp_path, pax, preserve_owner=True)
    unpack(tmp_path, gnu, preserve_owner=True)
    assert (os.stat(tmp_path / 'pax').st_uid, os.stat(tmp_path / 'pax').st_gid) == (3000000000, 7)
    assert (os.stat(tmp_path / 'gnu').st_uid, os.stat(tmp_path / 'gnu').st_gid) == (3000000, 3000001)


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'bad-checksum', 'cut-inside-a-member'])
def test_damage_is_a_corrupt_stream_error(tmp_path, damage):
    raw = archive([info('a', os.urandom(50000))])
    blob = {'truncated': gzip.compress(raw)[:-100], 'garbage': b'\x1f\x8b' + os.urandom(5000), 'bad-checksum': raw[:100] + b'X' + raw[101:],
            'cut-inside-a-member': raw[:20000]}[damage]
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False)
    with pytest.raises(CorruptStreamError):
        unpacker.extract(io.BytesIO(blob))
    unpacker.close()


def test_gzip_with_several_members_is_read_whole(tmp_path):
    """What pigz -i, bgzip or cat a.gz b.gz write.  (tarfile's own r|* decompression reads only the first member.)"""
    raw = archive([info('a', b'1' * 5000), info('b', b'2' * 5000)])
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False)
    unpacker.extract(io.BytesIO(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:])))
    unpacker.finish()
    assert (tmp_path / 'a').read_bytes() == b'1' * 5000 and (tmp_path / 'b').read_bytes() == b'2' * 5000


def test_member_parts_rules():
    assert member_parts('./a//b/./c') == ('a', 'b', 'c')
    assert member_parts('./') == ()
    for bad in ('../x', 'a/../../x', '/etc/passwd', 'a/..', 'a\0b'):
        with pytest.raises(UnsafeArchiveError):
            member_parts(bad)


def test_extractor_never_writes_through_a_symlink(tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    root = tmp_path / 'root'
    root.mkdir()
    raw = archive([info('l', kind=tarfile.SYMTYPE, linkname=str(outside)), info('l/pwned', b'x')])
    unpacker = TarExtractor(str(root), preserve_owner=False)
    with pytest.raises(UnsafeArchiveError, match='symlink'):
        unpacker.extract(io.BytesIO(raw))
    unpacker.close()
    assert os.listdir(outside) == []


def test_extractor_replaces_instead_of_writing_through_hard_links(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    raw = archive([info('a', b'first'), info('b', kind=tarfile.LNKTYPE, linkname='a'), info('b', b'second')])
    unpacker = TarExtractor(str(root), preserve_owner=False)
    unpacker.extract(io.BytesIO(raw))
    unpacker.finish()
    assert (root / 'a').read_bytes() == b'first' and (root / 'b').read_bytes() == b'second'


@pytest.mark.parametrize('name,target,absolute_ok', [('a/l', '../../x', True), ('l', '..', True), ('abs', '/etc', False)])
def test_symlinks_out_of_the_tree_are_refused(tmp_path, name, target, absolute_ok):
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False, allow_absolute_symlinks=absolute_ok)
    with pytest.raises(UnsafeArchiveError, match='symlink'):
        unpacker.extract(io.BytesIO(archive([info(name, kind=tarfile.SYMTYPE, linkname=target)])))
    unpacker.close()
    assert not os.path.lexists(tmp_path / name)


def test_absolute_symlinks_are_kept_by_default(tmp_path):
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False)
    unpacker.extract(io.BytesIO(archive([info('usr/bin/vi', kind=tarfile.SYMTYPE, linkname='/etc/alternatives/vi')])))
    unpacker.finish()
    assert os.readlink(tmp_path / 'usr/bin/vi') == '/etc/alternatives/vi'


@pytest.mark.parametrize('name', ['../evil', '/etc/passwd', 'a/../../evil'])
def test_names_out_of_the_tree_are_refused(tmp_path, name):
    root = tmp_path / 'root'
    root.mkdir()
    unpacker = TarExtractor(str(root), preserve_owner=False)
    with pytest.raises(UnsafeArchiveError):
        unpacker.extract(io.BytesIO(archive([info('ok', b'x'), info(name, b'evil')])))
    unpacker.close()
    assert sorted(os.listdir(tmp_path)) == ['root'] and os.listdir(root) == ['ok']


def test_a_damaged_header_after_the_first_member_is_an_error(tmp_path):
    """tarfile by itself reads a bad header after the first member as the end of the archive: the rest would be missing."""
    raw = bytearray(archive([info('a', b'x' * 600), info('b', b'second'), info('c', b'third')]))
    second = 512 + 1024  # header of a, two data blocks, then the header of b
    assert raw[second:second + 1] == b'b'
    raw[second + 100] ^= 0x01  # one bit of b's mode field: the checksum no longer matches
    with tarfile.open(fileobj=io.BytesIO(bytes(raw)), mode='r|') as plain:  # negative control: plain tarfile stops silently
        assert [m.name for m in plain] == ['a']
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False)
    with pytest.raises(CorruptStreamError):
        unpacker.extract(io.BytesIO(bytes(raw)))
    unpacker.close()


def test_an_empty_layer_is_an_empty_archive(tmp_path):
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False)
    stats = unpacker.extract(io.BytesIO(b''))
    unpacker.finish()
    assert stats.files == 0 and os.listdir(tmp_path) == []


def test_sparse_members_are_refused(tmp_path):
    sparse, _data = info('disk.img', kind=tarfile.GNUTYPE_SPARSE)
    unpacker = TarExtractor(str(tmp_path), preserve_owner=False)
    with pytest.raises(UnsupportedError, match='sparse'):
        unpacker.extract(io.BytesIO(archive([(sparse, b'')], tarfile.GNU_FORMAT)))
    unpacker.close()


def test_the_policy_works_as_a_tarfile_filter(tmp_path):
    """MemberPolicy has the signature of tarfile's extraction filters: the member comes back, or an error."""
    policy = MemberPolicy(allow_absolute_symlinks=False)
    ok, _data = info('etc/hostname', b'x')
    assert policy(ok, str(tmp_path)) is ok
    for bad in (info('../x')[0], info('l', kind=tarfile.SYMTYPE, linkname='/etc')[0], info('h', kind=tarfile.LNKTYPE, linkname='./')[0]):
        with pytest.raises(UnsafeArchiveError):
            policy(bad, str(tmp_path))


def test_stream_without_end_marker_is_accepted(tmp_path):
    raw = archive([info('a', b'data')])
    unpack(tmp_path, raw[:512 + 512])  # header and data block, no end-of-archive blocks (GNU tar and tarfile accept it too)
    assert (tmp_path / 'a').read_bytes() == b'data'


def test_tarfile_keeps_no_list_of_members(tmp_path, monkeypatch):
    """Stream mode keeps every TarInfo before Python 3.13 (and on 3.13 unless stream=True): memory would grow with the archive."""
    seen = []
    next_member = tarfile.TarFile.next

    def counting_next(self):
        seen.append(len(self.members))
        return next_member(self)

    monkeypatch.setattr(tarfile.TarFile, 'next', counting_next)
    unpack(tmp_path, archive([info('f%04d' % index, b'x') for index in range(300)]))
    assert len(os.listdir(tmp_path)) == 300 and len(seen) > 300 and max(seen) <= 1
