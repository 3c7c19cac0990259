# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM lab's view of the receiver's embedded registry: the push user's htpasswd, the layout read back from disk,
and the node's blob requests found in the receiver's access log (lines as the receiver wrote them in a real run)."""

from __future__ import annotations

import hashlib
import json

import bcrypt
import pytest

from l3metal_lab.embedded_registry import EmbeddedRegistry
from l3metal_lab.vmlab import VmLab, parse_blob_pulls

LAYER = 'sha256:f07ce8fc48b3076c6ad78edd74da8e9d09e56283d0adb293d91aa61573906e5a'
PREFIX = '2026-12-03 20:09:26,368 INFO l3metal_receiver.access: 127.0.0.1 [03/Dec/2026:20:09:26 +0000] '
OCI = '"-" "l3metal.provision-oci/1"'
LOG = '\n'.join(PREFIX + line for line in (
    '"HEAD /v2/os-images/debian-lab/blobs/%s HTTP/1.1" 404 199 %s' % (LAYER, OCI),
    '"POST /v2/os-images/debian-lab/blobs/uploads/ HTTP/1.1" 202 321 %s' % OCI,
    '"GET /v2/os-images/debian-lab/manifests/1 HTTP/1.1" 200 863 %s' % OCI,
    '"GET /v2/os-images/debian-lab/blobs/%s HTTP/1.1" 200 429 %s' % (LAYER, OCI),
    '"GET /v2/os-images/windows-lab/blobs/%s HTTP/1.1" 206 512 "-" "curl/7.88.1"' % LAYER,
    '"GET /media/blobs/x HTTP/1.1" 200 12 "-" "curl/7.88.1"',
)) + '\nreceiver: a line that is not an access log line\n'


def test_the_blob_requests_of_one_repository_are_found_and_nothing_else():
    pulls = parse_blob_pulls(LOG, 'os-images/debian-lab')
    assert [(p.method, p.status, p.agent) for p in pulls] == [('HEAD', 404, 'l3metal.provision-oci/1'), ('GET', 200, 'l3metal.provision-oci/1')]
    assert all(p.path.endswith(LAYER) for p in pulls)
    every = parse_blob_pulls(LOG)
    assert [p.status for p in every] == [404, 200, 206]  # no upload POST, no manifest, no /media/


def test_the_push_user_is_a_bcrypt_entry_of_a_random_password(tmp_path):
    one, two = EmbeddedRegistry(tmp_path / 'a', 1), EmbeddedRegistry(tmp_path / 'b', 1)
    assert one.password != two.password and len(one.password) >= 20
    user, _sep, hashed = one.htpasswd.read_text().strip().partition(':')
    assert user == 'ci' and hashed.startswith('$2b$') and bcrypt.checkpw(one.password.encode(), hashed.encode())
    assert not bcrypt.checkpw(two.password.encode(), hashed.encode())
    assert one.htpasswd.stat().st_mode & 0o777 == 0o600
    assert one.receiver_args() == ['--oci-layout', str(one.layout), '--oci-htpasswd', str(one.htpasswd)]
    assert one.client_options() == {'insecure': True, 'username': 'ci', 'password': one.password}


def test_a_tampered_layer_in_the_layout_is_reported(tmp_path):
    registry = EmbeddedRegistry(tmp_path, 1)
    blobs = registry.layout / 'blobs' / 'sha256'
    blobs.mkdir(parents=True)
    layer = b'layer bytes'
    digest = 'sha256:' + hashlib.sha256(layer).hexdigest()
    manifest = json.dumps({'schemaVersion': 2, 'layers': [{'digest': digest, 'size': len(layer)}]}).encode()
    manifest_digest = 'sha256:' + hashlib.sha256(manifest).hexdigest()
    (blobs / digest.split(':')[1]).write_bytes(layer)
    (blobs / manifest_digest.split(':')[1]).write_bytes(manifest)
    (registry.layout / 'index.json').write_text(json.dumps({'schemaVersion': 2, 'manifests': [
        {'digest': manifest_digest, 'annotations': {'org.opencontainers.image.ref.name': 'os-images/x:1'}}]}))
    assert registry.tags() == {'os-images/x:1': manifest_digest}
    assert registry.layer_digests('os-images/x:1') == [digest]
    (blobs / digest.split(':')[1]).write_bytes(b'layer bytez')
    with pytest.raises(AssertionError, match='hashes to'):
        registry.layer_digests('os-images/x:1')


def test_an_unknown_registry_kind_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ValueError, match="registry='harbor': use one of embedded, separate, both"):
        VmLab(tmp_path, [], images=None, registry='harbor')  # type: ignore[arg-type]
