# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manifest parsing, offline: OCI and Docker schema 2 manifests, artifact types, indexes refused."""

from __future__ import annotations

import json

import pytest

from l3metal_oci.errors import RegistryError, UnsupportedError
from l3metal_oci.manifest import Manifest, is_tar_layer
from l3metal_oci.reference import MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, TITLE, digest_bytes, parse_reference

REF = parse_reference('registry.example.com/os/rootfs:1')
DIGEST = 'sha256:' + 'a' * 64


def test_manifest_parsing_and_artifact_type():
    raw = json.dumps({'schemaVersion': 2, 'mediaType': MEDIA_OCI_MANIFEST, 'artifactType': 'application/vnd.x',
                      'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': DIGEST, 'size': 2},
                      'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': DIGEST, 'size': 10,
                                  'annotations': {TITLE: 'rootfs.tar.gz'}}],
                      'annotations': {'k': 'v'}}).encode()
    manifest = Manifest.parse(REF, raw, '', digest_bytes(raw))
    assert manifest.artifact_type == 'application/vnd.x' and manifest.total_size == 12
    assert manifest.layers[0].title == 'rootfs.tar.gz' and is_tar_layer(manifest.layers[0])
    docker = json.dumps({'schemaVersion': 2, 'config': {'mediaType': 'application/vnd.docker.container.image.v1+json', 'digest': DIGEST,
                                                        'size': 5}, 'layers': []}).encode()
    parsed = Manifest.parse(REF, docker, MEDIA_DOCKER_MANIFEST + '; charset=utf-8', 'sha256:' + 'b' * 64)
    assert parsed.media_type == MEDIA_DOCKER_MANIFEST and parsed.artifact_type == 'application/vnd.docker.container.image.v1+json'
    with pytest.raises(UnsupportedError, match='index'):
        Manifest.parse(REF, json.dumps({'schemaVersion': 2, 'manifests': []}).encode(), MEDIA_OCI_INDEX, DIGEST)
    with pytest.raises(RegistryError, match='malformed descriptor'):
        Manifest.parse(REF, json.dumps({'schemaVersion': 2, 'mediaType': MEDIA_OCI_MANIFEST, 'config': {}, 'layers': []}).encode(),
                       '', DIGEST)
