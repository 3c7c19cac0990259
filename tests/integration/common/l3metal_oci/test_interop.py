# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Interop with another OCI client (skopeo, from Debian) and with oras-py's own pull, both directions."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import oras.client

from l3metal_oci.pull import pull_and_unpack, pull_blob_to_file
from l3metal_oci.push import PushFile, push_artifact
from l3metal_lab.archives import member, rootfs_members, snapshot, write_tar


def skopeo(registry, *args: str) -> subprocess.CompletedProcess:
    """Run skopeo against ``registry``: plain HTTP without verification, or its CA directory for TLS."""
    copy = args[0] == 'copy'
    if registry.tls:
        tls = ['--dest-cert-dir' if copy else '--cert-dir', str(registry.ca_path.parent)]
    else:
        tls = ['--src-tls-verify=false', '--dest-tls-verify=false'] if copy else ['--tls-verify=false']
    creds: list[str] = []
    if registry.auth:
        flag = '--creds' if not copy else '--dest-creds' if args[-1].startswith('docker://') else '--src-creds'
        creds = [flag, '%s:%s' % (registry.username, registry.password)]
    argv = ['skopeo', '--insecure-policy', args[0]] + tls + creds + list(args[1:])
    return subprocess.run(argv, capture_output=True, text=True, check=True, env=dict(os.environ, HOME=str(registry.directory)))


def layout_blob(layout: Path, digest: str) -> bytes:
    algorithm, value = digest.split(':')
    return (layout / 'blobs' / algorithm / value).read_bytes()


def test_ours_to_skopeo(registry, tmp_path):
    rootfs = write_tar(tmp_path / 'rootfs.tar.gz', rootfs_members(), 'gzip')
    (tmp_path / 'recipe.json').write_text('{"a": 1}')
    ref = '%s/os-images/rootfs:1' % registry.host
    pushed = push_artifact(ref, [PushFile(str(rootfs)), PushFile(str(tmp_path / 'recipe.json'))], artifact_type='application/vnd.l3metal.rootfs.v1+tar',
                           annotations={'org.opencontainers.image.version': '1'}, insecure=True)

    raw = skopeo(registry, 'inspect', '--raw', 'docker://' + ref).stdout.encode()
    assert 'sha256:' + hashlib.sha256(raw).hexdigest() == pushed.digest

    layout = tmp_path / 'layout'
    skopeo(registry, 'copy', '--preserve-digests', 'docker://' + ref, 'oci:%s:v1' % layout)
    index = json.loads((layout / 'index.json').read_text())
    assert index['manifests'][0]['digest'] == pushed.digest
    manifest = json.loads(layout_blob(layout, pushed.digest))
    assert manifest['artifactType'] == 'application/vnd.l3metal.rootfs.v1+tar'
    assert layout_blob(layout, manifest['layers'][0]['digest']) == rootfs.read_bytes()
    assert manifest['layers'][1]['annotations']['org.opencontainers.image.title'] == 'recipe.json'

    # oras-py's own pull reads what we pushed: layers by title, and (its convention) a tar+gzip layer extracted.
    out = tmp_path / 'oras-out'
    files = oras.client.OrasClient(hostname=registry.host, insecure=True).pull(target=ref, outdir=str(out))
    assert sorted(os.path.basename(f) for f in files) == ['recipe.json', 'rootfs.tar.gz']
    assert (out / 'recipe.json').read_text() == '{"a": 1}' and (out / 'etc/hostname').read_text() == 'node01\n'


def test_skopeo_and_oras_to_ours(registry, tmp_path):
    """skopeo copies an OCI layout written by hand (no code of ours) into the registry; oras-py pushes a file; we pull both."""
    rootfs = write_tar(tmp_path / 'layer.tar.gz', rootfs_members() + [member('etc/from', b'skopeo\n')], 'gzip').read_bytes()
    layout = tmp_path / 'layout'
    blobs = layout / 'blobs' / 'sha256'
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {'digest': 'sha256:' + digest, 'size': len(data)}

    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    manifest = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                           'config': dict(put(config), mediaType='application/vnd.oci.image.config.v1+json'),
                           'layers': [dict(put(rootfs), mediaType='application/vnd.oci.image.layer.v1.tar+gzip')]}).encode()
    descriptor = dict(put(manifest), mediaType='application/vnd.oci.image.manifest.v1+json',
                      annotations={'org.opencontainers.image.ref.name': 'v1'})
    (layout / 'oci-layout').write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / 'index.json').write_text(json.dumps({'schemaVersion': 2, 'manifests': [descriptor]}))
    ref = '%s/os-images/from-skopeo:v1' % registry.host
    skopeo(registry, 'copy', '--preserve-digests', 'oci:%s:v1' % layout, 'docker://' + ref)

    dest = tmp_path / 'root'
    result = pull_and_unpack(ref, str(dest), insecure=True)
    assert result.digest == descriptor['digest']
    assert (dest / 'etc/from').read_text() == 'skopeo\n' and snapshot(dest)['usr/bin/passwd'].mode == 0o4755

    wim = tmp_path / 'boot.wim'
    wim.write_bytes(os.urandom(100000))
    oras_ref = '%s/os-images/oras-pushed:1' % registry.host
    oras.client.OrasClient(hostname=registry.host, insecure=True).push(target=oras_ref, files=[str(wim)], disable_path_validation=True)
    got = pull_blob_to_file(oras_ref, str(tmp_path / 'fetched.wim'), insecure=True)
    assert got.layers[0].title == 'boot.wim' and (tmp_path / 'fetched.wim').read_bytes() == wim.read_bytes()


def test_skopeo_reads_from_the_tls_auth_registry(auth_registry, tmp_path):
    payload = write_tar(tmp_path / 'tool.tar', [member('bin/tool', b'x', mode=0o755)], 'none')
    ref = '%s/tools/t:1' % auth_registry.host
    pushed = push_artifact(ref, [PushFile(str(payload))], **auth_registry.client_options())
    raw = skopeo(auth_registry, 'inspect', '--raw', 'docker://' + ref).stdout.encode()
    assert 'sha256:' + hashlib.sha256(raw).hexdigest() == pushed.digest
