# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The layer decompressor against streams written by the gzip/lzma/zstd libraries: chosen by magic bytes, bounded, strict."""

from __future__ import annotations

import gzip
import io
import lzma
import os

import pytest

from l3metal_lab.prerequisites import in_ci
from l3metal_oci.decompress import OUT_CHUNK, DecompressedChunks
from l3metal_oci.errors import CorruptStreamError


@pytest.mark.parametrize('compress', ['none', 'gzip', 'gzip-multi', 'xz', 'zstd'])
def test_decompression_by_magic_bytes(compress):
    raw = os.urandom(100000) + b'b' * 300000
    if compress == 'gzip':
        blob = gzip.compress(raw)
    elif compress == 'gzip-multi':  # pigz -i, bgzip and concatenated files write several members
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


@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_a_damaged_stream_is_a_corrupt_stream_error(damage):
    raw = os.urandom(50000)
    blob = gzip.compress(raw)[:-100] if damage == 'truncated' else b'\x1f\x8b' + os.urandom(5000)
    chunks = DecompressedChunks(io.BytesIO(blob), threaded=False)
    with pytest.raises(CorruptStreamError):
        while chunks.next_chunk():
            pass
