# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Push plans, offline: the manifest bytes (and so the digest) are deterministic."""

from __future__ import annotations

import json

from l3metal_oci.push import PushFile, guess_media_type, plan_push
from l3metal_oci.reference import EMPTY_BLOB_DIGEST, digest_bytes


def test_push_plan_is_deterministic(tmp_path):
    (tmp_path / 'rootfs.tar.gz').write_bytes(b'x' * 100)
    (tmp_path / 'b.bin').write_bytes(b'y')
    files = [PushFile(str(tmp_path / 'rootfs.tar.gz')), PushFile(str(tmp_path / 'b.bin'), media_type='text/plain', title='B')]
    one = plan_push(files, 'application/vnd.l3metal.rootfs.v1+tar', {'b': '2', 'a': '1'})
    two = plan_push(files, 'application/vnd.l3metal.rootfs.v1+tar', {'a': '1', 'b': '2'})
    assert one.manifest == two.manifest and one.digest == digest_bytes(one.manifest)
    manifest = json.loads(one.manifest)
    assert manifest['config']['mediaType'] == 'application/vnd.oci.empty.v1+json' and manifest['config']['digest'] == EMPTY_BLOB_DIGEST
    assert [layer['mediaType'] for layer in manifest['layers']] == ['application/vnd.oci.image.layer.v1.tar+gzip', 'text/plain']
    assert plan_push(files).digest != one.digest
    assert json.loads(plan_push(files).manifest)['config']['mediaType'] == 'application/vnd.unknown.config.v1+json'
    assert guess_media_type('/x/install.WIM') == 'application/x-ms-wim' and guess_media_type('a.tar.zst').endswith('+zstd')
