# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded registry with real clients: skopeo (copy in and out, inspect, the layout read offline),
podman (push, pull, run), the collection's own l3metal_oci and oras-py; each against a receiver process
started with ``--oci-layout`` on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import oras.client
import pytest

from fixtures.registry_receiver import PUSH_PASSWORD, PUSH_USER, TINY_REF, skopeo
from l3metal_lab.archives import rootfs_members, write_tar
from l3metal_oci.errors import AuthenticationError
from l3metal_oci.pull import pull_and_unpack, pull_to_directory
from l3metal_oci.push import PushFile, push_artifact

CREDS = '%s:%s' % (PUSH_USER, PUSH_PASSWORD)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def index_of(layout: Path) -> dict:
    return json.loads((layout / 'index.json').read_text())


def test_skopeo_copies_in_and_out_and_the_stored_layout_reads_offline(oci_receiver, tiny_layout, tmp_path):
    host = oci_receiver.host
    source_manifest = index_of(tiny_layout)['manifests'][0]
    refused = skopeo('copy', 'oci:%s:%s' % (tiny_layout, TINY_REF), 'docker://%s/%s' % (host, TINY_REF), home=tmp_path)
    assert refused.returncode != 0 and 'unauthorized' in refused.stderr.lower()  # push needs credentials
    ok(skopeo('copy', '--dest-creds', CREDS, 'oci:%s:%s' % (tiny_layout, TINY_REF), 'docker://%s/%s' % (host, TINY_REF), home=tmp_path))

    inspected = json.loads(ok(skopeo('inspect', 'docker://%s/%s' % (host, TINY_REF), home=tmp_path)).stdout)
    assert inspected['Digest'] == source_manifest['digest'] and inspected['RepoTags'] == ['1.0']
    raw = ok(skopeo('inspect', '--raw', 'docker://%s/%s' % (host, TINY_REF), home=tmp_path)).stdout.encode()
    assert 'sha256:' + hashlib.sha256(raw).hexdigest() == source_manifest['digest']

    out = tmp_path / 'out'
    ok(skopeo('copy', 'docker://%s/%s' % (host, TINY_REF), 'oci:%s:copy' % out, home=tmp_path))
    assert index_of(out)['manifests'][0]['digest'] == source_manifest['digest']

    # What the receiver stored is an OCI layout skopeo reads without the receiver: the tag is REPO:TAG.
    stored = index_of(oci_receiver.oci_layout)
    assert [m['annotations']['org.opencontainers.image.ref.name'] for m in stored['manifests']] == [TINY_REF]
    offline = json.loads(ok(skopeo('inspect', 'oci:%s:%s' % (oci_receiver.oci_layout, TINY_REF), home=tmp_path)).stdout)
    assert offline['Digest'] == source_manifest['digest']
    check = subprocess.run([sys.executable, '-m', 'l3metal_receiver.registry', 'verify', str(oci_receiver.oci_layout)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_layout_written_by_skopeo_is_served_as_it_is(oci_receiver_factory, tiny_layout, tmp_path):
    layout = tmp_path / 'served'
    subprocess.run(['cp', '-a', str(tiny_layout), str(layout)], check=True)
    before = {p.name: p.read_bytes() for p in (layout / 'blobs' / 'sha256').iterdir()}
    server = oci_receiver_factory(layout=layout)
    tags = subprocess.run(['skopeo', 'list-tags', '--tls-verify=false', 'docker://%s/tools/tiny' % server.host], capture_output=True, text=True,
                          env={'HOME': str(tmp_path), 'PATH': '/usr/bin:/bin'}, check=False)
    assert json.loads(ok(tags).stdout)['Tags'] == ['1.0']
    ok(skopeo('copy', 'docker://%s/%s' % (server.host, TINY_REF), 'oci:%s:again' % (tmp_path / 'again'), home=tmp_path))
    assert index_of(tmp_path / 'again')['manifests'][0]['digest'] == index_of(layout)['manifests'][0]['digest']
    assert {p.name: p.read_bytes() for p in (layout / 'blobs' / 'sha256').iterdir()} == before  # serving changed nothing

    # skopeo writing a bare tag into the layout while the receiver runs: served under --oci-default-repository only.
    ok(skopeo('copy', 'oci:%s:%s' % (tiny_layout, TINY_REF), 'oci:%s:bare' % layout, home=tmp_path))
    assert skopeo('inspect', 'docker://%s/tools/tiny:bare' % server.host, home=tmp_path).returncode != 0
    with_default = oci_receiver_factory(layout=layout, extra=['--oci-default-repository', 'library/base'])
    ok(skopeo('inspect', 'docker://%s/library/base:bare' % with_default.host, home=tmp_path))


def test_podman_pushes_pulls_and_runs_a_tool_image(oci_receiver, podman_store, tmp_path):
    target = '%s/tools/tiny:podman' % oci_receiver.host
    podman_store('push', '--tls-verify=false', '--creds', CREDS, 'localhost/tiny:latest', target)
    podman_store('rmi', '-f', 'localhost/tiny:latest')
    try:
        podman_store('pull', '--tls-verify=false', target)
        out = podman_store('run', '--rm', target, 'cat', '/etc/tiny-release').stdout
        assert out == 'tiny 1.0\n'
    finally:
        podman_store('tag', target, 'localhost/tiny:latest', check=False)
        podman_store('rmi', target, check=False)
    wrong = podman_store('push', '--tls-verify=false', '--creds', PUSH_USER + ':wrong', 'localhost/tiny:latest', target + '-x', check=False)
    assert wrong.returncode != 0 and 'unauthorized' in (wrong.stderr + wrong.stdout).lower()


def test_collection_client_pushes_and_pulls_an_artifact(oci_receiver, tmp_path):
    rootfs = write_tar(tmp_path / 'rootfs.tar.gz', rootfs_members(), 'gzip')
    ref = '%s/os-images/ubuntu-rootfs:22.04' % oci_receiver.host
    with pytest.raises(AuthenticationError):
        push_artifact(ref, [PushFile(str(rootfs))], insecure=True)
    pushed = push_artifact(ref, [PushFile(str(rootfs))], artifact_type='application/vnd.l3metal.rootfs.v1+tar', insecure=True,
                           username=PUSH_USER, password=PUSH_PASSWORD)
    assert pushed.changed
    again = push_artifact(ref, [PushFile(str(rootfs))], artifact_type='application/vnd.l3metal.rootfs.v1+tar', insecure=True,
                          username=PUSH_USER, password=PUSH_PASSWORD)
    assert not again.changed and again.digest == pushed.digest

    dest = tmp_path / 'root'
    result = pull_and_unpack(ref, str(dest), insecure=True)  # open pull: no credentials
    assert result.digest == pushed.digest
    assert (dest / 'etc' / 'hostname').read_text() == 'node01\n'
    files = tmp_path / 'files'
    pull_to_directory(ref, str(files), insecure=True)
    assert (files / 'rootfs.tar.gz').read_bytes() == rootfs.read_bytes()


def test_oras_py_pushes_and_pulls(oci_receiver, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('HOME', str(tmp_path))
    Path('payload.bin').write_bytes(b'\x00\x01payload' * 1000)
    client = oras.client.OrasClient(hostname=oci_receiver.host, insecure=True, auth_backend='basic')
    client.auth.set_basic_auth(PUSH_USER, PUSH_PASSWORD)
    ref = '%s/test/artifact:v1' % oci_receiver.host
    response = client.push(target=ref, files=['payload.bin'], manifest_annotations={'org.example.k': 'v'})
    assert response.status_code == 201
    assert client.get_tags('%s/test/artifact' % oci_receiver.host) == ['v1']
    pulled = client.pull(target=ref, outdir='out')
    assert [Path(p).read_bytes() for p in pulled] == [Path('payload.bin').read_bytes()]
    client.delete_tag('%s/test/artifact' % oci_receiver.host, 'v1')
    assert oci_receiver.oci_layout.joinpath('index.json').read_text().count('test/artifact') == 0


def test_tls_as_the_rest_of_the_service(oci_receiver_factory, tls_files, tiny_layout, tmp_path):
    """--tls-cert/--tls-key cover /v2/ too: skopeo with the CA in a cert dir, our client with ca_path; no CA: refused."""
    server = oci_receiver_factory(tls=tls_files)
    certs = tmp_path / 'certs'
    certs.mkdir()
    (certs / 'ca.crt').write_bytes(Path(tls_files[2]).read_bytes())
    target = 'docker://%s/%s' % (server.host, TINY_REF)
    env = {'HOME': str(tmp_path), 'PATH': '/usr/bin:/bin'}
    copy = subprocess.run(['skopeo', '--insecure-policy', 'copy', '--dest-cert-dir', str(certs), '--dest-creds', CREDS,
                           'oci:%s:%s' % (tiny_layout, TINY_REF), target], capture_output=True, text=True, env=env, check=False)
    assert copy.returncode == 0, copy.stderr
    untrusted = subprocess.run(['skopeo', 'inspect', target], capture_output=True, text=True, env=env, check=False)
    assert untrusted.returncode != 0 and 'certificate' in untrusted.stderr
    (tmp_path / 'a.txt').write_text('over TLS\n')
    ref = '%s/files/a:1' % server.host
    push_artifact(ref, [PushFile(str(tmp_path / 'a.txt'))], ca_path=tls_files[2], username=PUSH_USER, password=PUSH_PASSWORD)
    pull_to_directory(ref, str(tmp_path / 'out'), ca_path=tls_files[2])
    assert (tmp_path / 'out' / 'a.txt').read_text() == 'over TLS\n'
