# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tar stream parser and decompressors against archives written by Python's tarfile and the
gzip/lzma/zstd libraries (no registry needed), and the extractor's path rules on a temp dir, with each
reader: tar.py's parser and the standard library's tarfile (over our decompression thread, and r|*)."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile

import pytest

from l3metal_lab.archives import rootfs_members, snapshot
from l3metal_lab.prerequisites import in_ci
from l3metal_oci.errors import CorruptStreamError, UnsafeArchiveError, UnsupportedError
from l3metal_oci.tar import OUT_CHUNK, DecompressedChunks, open_tar_stream
from l3metal_oci.unpack import MemberPolicy, TarExtractor, TarfileExtractor, member_parts, pax_xattrs

READERS = {
    'tar.py': TarExtractor,
    'tarfile': TarfileExtractor,
    'tarfile-r|*': lambda root, **kwargs: TarfileExtractor(root, decompression='tarfile', **kwargs),
}


@pytest.fixture(params=sorted(READERS))
def extractor(request):
    """A factory of extractors with one of the readers."""
    return READERS[request.param]


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


def members_of(raw: bytes, threaded: bool = True) -> list[tuple[str, bytes, int, int, int, str, bytes]]:
    stream, _reader, chunks = open_tar_stream(io.BytesIO(raw), threaded=threaded)
    found = []
    try:
        for member in stream:
            data = b''.join(bytes(piece) for piece in iter(lambda: stream.read_data(7), memoryview(b'')))
            found.append((member.name, data, member.mode, member.uid, member.size, member.linkname, member.type))
    finally:
        chunks.close()
    return found


@pytest.mark.parametrize('fmt', [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_formats_and_long_names(fmt):
    long_dir = '/'.join(['d%02d' % i for i in range(30)])  # 119 characters: needs the ustar prefix, GNU L or PAX path
    members = [info(long_dir + '/file', b'hello', mode=0o4755, uid=1000),
               info('link', kind=tarfile.SYMTYPE, linkname='target'),
               info('dir', kind=tarfile.DIRTYPE, mode=0o700),
               info('empty')]
    if fmt != tarfile.USTAR_FORMAT:
        members.append(info('x' * 150, b'long name'))
        members.append(info('l', kind=tarfile.SYMTYPE, linkname='y' * 150))
    found = members_of(archive(members, fmt))
    assert found[0] == (long_dir + '/file', b'hello', 0o4755, 1000, 5, '', b'0')
    assert found[1][5] == 'target' and found[1][6] == b'2'
    assert found[2][0] in ('dir', 'dir/') and found[2][2] == 0o700 and found[2][6] == b'5'
    assert found[3][:2] == ('empty', b'')
    if fmt != tarfile.USTAR_FORMAT:
        assert found[4][:2] == ('x' * 150, b'long name') and found[5][5] == 'y' * 150


def test_pax_overrides_xattrs_and_big_ids():
    item, data = info('f', b'abc', uid=3000000000, gid=7, mtime=1700000000.5)
    item.pax_headers = {'SCHILY.xattr.user.k': b'\xff\x00v'.decode('utf-8', 'surrogateescape'), 'LIBARCHIVE.xattr.user.b64': 'aGk'}
    stream, _reader, chunks = open_tar_stream(io.BytesIO(archive([(item, data)])))
    member = next(iter(stream))
    chunks.close()
    assert (member.uid, member.gid, member.mtime) == (3000000000, 7, 1700000000.5)
    assert pax_xattrs(member.pax) == {'user.k': b'\xff\x00v', 'user.b64': b'hi'}
    # tarfile gives the same records as text (surrogateescape for bytes that are not UTF-8): the same attributes
    with tarfile.open(fileobj=io.BytesIO(archive([(item, data)])), mode='r|', encoding='utf-8', errors='surrogateescape') as read:
        assert pax_xattrs(read.next().pax_headers) == {'user.k': b'\xff\x00v', 'user.b64': b'hi'}


def test_gnu_base256_numbers():
    item, data = info('big-uid', b'x', uid=2 ** 40)
    assert members_of(archive([(item, data)], tarfile.GNU_FORMAT))[0][3] == 2 ** 40


@pytest.mark.parametrize('compress', ['none', 'gzip', 'gzip-multi', 'xz', 'zstd'])
def test_decompression_by_magic_bytes(compress):
    raw = archive([info('a', os.urandom(100000)), info('b', b'b' * 300000)])
    if compress == 'gzip':
        blob = gzip.compress(raw)
    elif compress == 'gzip-multi':  # pigz and concatenated files write several members
        blob = gzip.compress(raw[:5000]) + b'\0' * 64 + gzip.compress(raw[5000:]) + b'\0' * 512
    elif compress == 'xz':
        blob = lzma.compress(raw)
    elif compress == 'zstd':
        zstandard = pytest.importorskip('zstandard') if not in_ci() else __import__('zstandard')  # a dev requirement: CI has it
        blob = zstandard.ZstdCompressor().compress(raw)
    else:
        blob = raw
    chunks = DecompressedChunks(io.BytesIO(blob))
    assert chunks.compression == compress.split('-')[0]
    assert b''.join(iter(chunks.next_chunk, b'')) == raw
    chunks.close()


def test_output_per_step_is_bounded():
    bomb = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros in ~64 KiB
    chunks = DecompressedChunks(io.BytesIO(bomb), threaded=False)
    sizes = [len(chunk) for chunk in iter(chunks.next_chunk, b'')]
    assert max(sizes) <= OUT_CHUNK and sum(sizes) == 64 * 1024 * 1024


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'bad-checksum'])
def test_damage_is_a_corrupt_stream_error(damage):
    raw = archive([info('a', os.urandom(50000))])
    if damage == 'truncated':
        blob = gzip.compress(raw)[:-100]
    elif damage == 'garbage':
        blob = b'\x1f\x8b' + os.urandom(5000)
    else:
        blob = raw[:100] + b'X' + raw[101:]
    with pytest.raises(CorruptStreamError):
        members_of(blob, threaded=False)


@pytest.mark.parametrize('damage', ['truncated', 'garbage', 'bad-checksum', 'cut-inside-a-member'])
def test_damage_is_a_corrupt_stream_error_for_every_reader(tmp_path, extractor, damage):
    raw = archive([info('a', os.urandom(50000))])
    blob = {'truncated': gzip.compress(raw)[:-100], 'garbage': b'\x1f\x8b' + os.urandom(5000), 'bad-checksum': raw[:100] + b'X' + raw[101:],
            'cut-inside-a-member': raw[:20000]}[damage]
    unpacker = extractor(str(tmp_path), preserve_owner=False)
    with pytest.raises(CorruptStreamError):
        unpacker.extract(io.BytesIO(blob))
    unpacker.close()


@pytest.mark.parametrize('reader', ['tar.py', 'tarfile'])
def test_gzip_with_several_members_is_read_whole(tmp_path, reader):
    """What pigz -i, bgzip or cat a.gz b.gz write.  (tarfile's own r|* decompression reads only the first member.)"""
    raw = archive([info('a', b'1' * 5000), info('b', b'2' * 5000)])
    unpacker = READERS[reader](str(tmp_path), preserve_owner=False)
    unpacker.extract(io.BytesIO(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:])))
    unpacker.finish()
    assert (tmp_path / 'a').read_bytes() == b'1' * 5000 and (tmp_path / 'b').read_bytes() == b'2' * 5000


def test_member_parts_rules():
    assert member_parts('./a//b/./c') == ('a', 'b', 'c')
    assert member_parts('./') == ()
    for bad in ('../x', 'a/../../x', '/etc/passwd', 'a/..', 'a\0b'):
        with pytest.raises(UnsafeArchiveError):
            member_parts(bad)


def test_extractor_never_writes_through_a_symlink(tmp_path, extractor):
    outside = tmp_path / 'outside'
    outside.mkdir()
    root = tmp_path / 'root'
    root.mkdir()
    raw = archive([info('l', kind=tarfile.SYMTYPE, linkname=str(outside)), info('l/pwned', b'x')])
    unpacker = extractor(str(root), preserve_owner=False)
    with pytest.raises(UnsafeArchiveError, match='symlink'):
        unpacker.extract(io.BytesIO(raw))
    unpacker.close()
    assert os.listdir(outside) == []


def test_extractor_replaces_instead_of_writing_through_hard_links(tmp_path, extractor):
    root = tmp_path / 'root'
    root.mkdir()
    raw = archive([info('a', b'first'), info('b', kind=tarfile.LNKTYPE, linkname='a'), info('b', b'second')])
    unpacker = extractor(str(root), preserve_owner=False)
    unpacker.extract(io.BytesIO(raw))
    unpacker.finish()
    assert (root / 'a').read_bytes() == b'first' and (root / 'b').read_bytes() == b'second'


def test_readers_unpack_the_same_tree(tmp_path):
    """Every reader gives the same tree (types, modes, owners, sizes, link targets, bytes) from one gzip layer."""
    raw = gzip.compress(archive(rootfs_members() + [info('big', os.urandom(3 * 1024 * 1024 + 17))]))
    trees = {}
    for name, make in READERS.items():
        root = tmp_path / name.replace('|', '').replace('*', '')
        root.mkdir()
        unpacker = make(str(root), preserve_owner=os.geteuid() == 0)
        stats = unpacker.extract(io.BytesIO(raw))
        unpacker.finish()
        assert (stats.compression, stats.files, stats.symlinks, stats.hardlinks) == ('gzip', 9, 2, 1)
        trees[name] = (snapshot(root), {p: (root / p).read_bytes() for p in ('big', 'usr/bin/python3', 'etc/shadow')},
                       os.getxattr(root / 'usr/bin/ping', 'user.l3metal'))
    assert trees['tarfile'] == trees['tar.py'] == trees['tarfile-r|*']
    assert trees['tar.py'][2] == b'\xff\x00binary'


@pytest.mark.parametrize('name,target,absolute_ok', [('a/l', '../../x', True), ('l', '..', True), ('abs', '/etc', False)])
def test_symlinks_out_of_the_tree_are_refused(tmp_path, extractor, name, target, absolute_ok):
    unpacker = extractor(str(tmp_path), preserve_owner=False, allow_absolute_symlinks=absolute_ok)
    with pytest.raises(UnsafeArchiveError, match='symlink'):
        unpacker.extract(io.BytesIO(archive([info(name, kind=tarfile.SYMTYPE, linkname=target)])))
    unpacker.close()
    assert not os.path.lexists(tmp_path / name)


def test_absolute_symlinks_are_kept_by_default(tmp_path, extractor):
    unpacker = extractor(str(tmp_path), preserve_owner=False)
    unpacker.extract(io.BytesIO(archive([info('usr/bin/vi', kind=tarfile.SYMTYPE, linkname='/etc/alternatives/vi')])))
    unpacker.finish()
    assert os.readlink(tmp_path / 'usr/bin/vi') == '/etc/alternatives/vi'


@pytest.mark.parametrize('name', ['../evil', '/etc/passwd', 'a/../../evil'])
def test_names_out_of_the_tree_are_refused(tmp_path, extractor, name):
    root = tmp_path / 'root'
    root.mkdir()
    unpacker = extractor(str(root), preserve_owner=False)
    with pytest.raises(UnsafeArchiveError):
        unpacker.extract(io.BytesIO(archive([info('ok', b'x'), info(name, b'evil')])))
    unpacker.close()
    assert sorted(os.listdir(tmp_path)) == ['root'] and os.listdir(root) == ['ok']


def test_a_damaged_header_after_the_first_member_is_an_error(tmp_path, extractor):
    """tarfile by itself reads a bad header after the first member as the end of the archive: the rest would be missing."""
    raw = bytearray(archive([info('a', b'x' * 600), info('b', b'second'), info('c', b'third')]))
    second = 512 + 1024  # header of a, two data blocks, then the header of b
    assert raw[second:second + 1] == b'b'
    raw[second + 100] ^= 0x01  # one bit of b's mode field: the checksum no longer matches
    with tarfile.open(fileobj=io.BytesIO(bytes(raw)), mode='r|') as plain:  # negative control: plain tarfile stops silently
        assert [m.name for m in plain] == ['a']
    unpacker = extractor(str(tmp_path), preserve_owner=False)
    with pytest.raises(CorruptStreamError):
        unpacker.extract(io.BytesIO(bytes(raw)))
    unpacker.close()


def test_an_empty_layer_is_an_empty_archive(tmp_path, extractor):
    unpacker = extractor(str(tmp_path), preserve_owner=False)
    stats = unpacker.extract(io.BytesIO(b''))
    unpacker.finish()
    assert stats.files == 0 and os.listdir(tmp_path) == []


def test_sparse_members_are_refused(tmp_path, extractor):
    sparse, _data = info('disk.img', kind=tarfile.GNUTYPE_SPARSE)
    unpacker = extractor(str(tmp_path), preserve_owner=False)
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


def test_stream_without_end_marker_is_accepted():
    raw = archive([info('a', b'data')])
    trimmed = raw[:512 + 512]  # header and data block, no end-of-archive blocks
    assert [m[0] for m in members_of(trimmed)] == ['a']


def test_tarstream_skips_unread_data():
    stream, _reader, chunks = open_tar_stream(io.BytesIO(archive([info('a', os.urandom(5000)), info('b', b'bee')])), threaded=False)
    iterator = iter(stream)
    assert next(iterator).name == 'a'  # data not read
    second = next(iterator)
    assert second.name == 'b' and bytes(stream.read_data(100)) == b'bee'
    chunks.close()
