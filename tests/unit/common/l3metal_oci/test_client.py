# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline parts of the OCI client: challenges, docker config credentials, manifest parsing, push plans."""

from __future__ import annotations

import base64
import json

import pytest

from l3metal_oci import client as _oci
from l3metal_oci.errors import AuthenticationError, RegistryError, UnsupportedError
from l3metal_oci.push import PushFile, guess_media_type, plan_push

REF = _oci.parse_reference('registry.example.com/os/rootfs:1')
DIGEST = 'sha256:' + 'a' * 64


def test_bearer_challenge_parsing():
    scheme, params = _oci.parse_challenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
                                          'scope="repository:os/rootfs:pull,push",error="insufficient_scope"')
    assert scheme == 'bearer'
    assert params == {'realm': 'https://auth.example.com/token', 'service': 'registry.example.com',
                      'scope': 'repository:os/rootfs:pull,push', 'error': 'insufficient_scope'}
    assert _oci.parse_challenge('Basic realm="test-realm"') == ('basic', {'realm': 'test-realm'})


def test_docker_config_lookup(tmp_path):
    config = tmp_path / 'config.json'
    config.write_text(json.dumps({'auths': {
        'https://registry.example.com': {'auth': base64.b64encode(b'ci:pa:ss').decode()},
        'other.example.com:5000': {'username': 'u', 'password': 'p'},
        'token.example.com': {'identitytoken': 'x'},
    }}))
    creds = _oci.load_docker_config(str(config), 'registry.example.com')
    assert (creds.username, creds.password) == ('ci', 'pa:ss')
    assert _oci.load_docker_config(str(tmp_path), 'other.example.com:5000') == _oci.Credentials('u', 'p')  # the directory works too
    assert _oci.load_docker_config(str(config), 'unknown.example.com') is None
    with pytest.raises(AuthenticationError, match='identitytoken'):
        _oci.load_docker_config(str(config), 'token.example.com')
    with pytest.raises(AuthenticationError, match='does not exist'):
        _oci.load_docker_config(str(tmp_path / 'missing.json'), 'registry.example.com')


def test_manifest_parsing_and_artifact_type():
    raw = json.dumps({'schemaVersion': 2, 'mediaType': _oci.MEDIA_OCI_MANIFEST, 'artifactType': 'application/vnd.x',
                      'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': DIGEST, 'size': 2},
                      'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar+gzip', 'digest': DIGEST, 'size': 10,
                                  'annotations': {_oci.TITLE: 'rootfs.tar.gz'}}],
                      'annotations': {'k': 'v'}}).encode()
    manifest = _oci.Manifest.parse(REF, raw, '', _oci.digest_bytes(raw))
    assert manifest.artifact_type == 'application/vnd.x' and manifest.total_size == 12
    assert manifest.layers[0].title == 'rootfs.tar.gz' and _oci.is_tar_layer(manifest.layers[0])
    docker = json.dumps({'schemaVersion': 2, 'config': {'mediaType': 'application/vnd.docker.container.image.v1+json', 'digest': DIGEST,
                                                        'size': 5}, 'layers': []}).encode()
    parsed = _oci.Manifest.parse(REF, docker, _oci.MEDIA_DOCKER_MANIFEST + '; charset=utf-8', 'sha256:' + 'b' * 64)
    assert parsed.media_type == _oci.MEDIA_DOCKER_MANIFEST and parsed.artifact_type == 'application/vnd.docker.container.image.v1+json'
    with pytest.raises(UnsupportedError, match='index'):
        _oci.Manifest.parse(REF, json.dumps({'schemaVersion': 2, 'manifests': []}).encode(), _oci.MEDIA_OCI_INDEX, DIGEST)
    with pytest.raises(RegistryError, match='malformed descriptor'):
        _oci.Manifest.parse(REF, json.dumps({'schemaVersion': 2, 'mediaType': _oci.MEDIA_OCI_MANIFEST, 'config': {}, 'layers': []}).encode(),
                            '', DIGEST)


def test_push_plan_is_deterministic(tmp_path):
    (tmp_path / 'rootfs.tar.gz').write_bytes(b'x' * 100)
    (tmp_path / 'b.bin').write_bytes(b'y')
    files = [PushFile(str(tmp_path / 'rootfs.tar.gz')), PushFile(str(tmp_path / 'b.bin'), media_type='text/plain', title='B')]
    one = plan_push(files, 'application/vnd.l3metal.rootfs.v1+tar', {'b': '2', 'a': '1'})
    two = plan_push(files, 'application/vnd.l3metal.rootfs.v1+tar', {'a': '1', 'b': '2'})
    assert one.manifest == two.manifest and one.digest == _oci.digest_bytes(one.manifest)
    manifest = json.loads(one.manifest)
    assert manifest['config']['mediaType'] == 'application/vnd.oci.empty.v1+json' and manifest['config']['digest'] == _oci.EMPTY_BLOB_DIGEST
    assert [layer['mediaType'] for layer in manifest['layers']] == ['application/vnd.oci.image.layer.v1.tar+gzip', 'text/plain']
    assert plan_push(files).digest != one.digest
    assert json.loads(plan_push(files).manifest)['config']['mediaType'] == 'application/vnd.unknown.config.v1+json'
    assert guess_media_type('/x/install.WIM') == 'application/x-ms-wim' and guess_media_type('a.tar.zst').endswith('+zstd')
