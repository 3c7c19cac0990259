# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tar stream parser and decompressors against archives written by Python's tarfile and the
gzip/lzma/zstd libraries (no registry needed), and the extractor's path rules on a temp dir."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile

import pytest

from l3metal_lab.prerequisites import in_ci
from l3metal_oci.errors import CorruptStreamError, UnsafeArchiveError
from l3metal_oci.tar import OUT_CHUNK, DecompressedChunks, open_tar_stream
from l3metal_oci.unpack import TarExtractor, member_parts


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
    assert member.xattrs() == {'user.k': b'\xff\x00v', 'user.b64': b'hi'}


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
    extractor = TarExtractor(str(root), preserve_owner=False)
    with pytest.raises(UnsafeArchiveError, match='symlink'):
        extractor.extract(io.BytesIO(raw))
    extractor.close()
    assert os.listdir(outside) == []


def test_extractor_replaces_instead_of_writing_through_hard_links(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    raw = archive([info('a', b'first'), info('b', kind=tarfile.LNKTYPE, linkname='a'), info('b', b'second')])
    extractor = TarExtractor(str(root), preserve_owner=False)
    extractor.extract(io.BytesIO(raw))
    extractor.finish()
    assert (root / 'a').read_bytes() == b'first' and (root / 'b').read_bytes() == b'second'


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
