# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reusable OCI core (what the maintenance OS imager imports) against real distribution registries."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from l3metal_oci.client import fetch_manifest
from l3metal_oci.errors import (
    AuthenticationError,
    DigestMismatchError,
    InvalidReferenceError,
    NotFoundError,
    RegistryError,
    UnsafeArchiveError,
    UnsupportedError,
)
from l3metal_oci.pull import RECORD_NAME, pull_and_unpack, pull_blob_to_file
from l3metal_oci.push import PushFile, push_artifact
from l3metal_oci.reference import parse_reference
from l3metal_lab.archives import MTIME, member, rootfs_members, snapshot, write_tar
from l3metal_lab.prerequisites import require

ROOTFS_TYPE = 'application/vnd.l3metal.rootfs.v1+tar'


def push(registry, repo: str, *paths: Path, **kwargs) -> str:
    result = push_artifact('%s/%s' % (registry.host, repo), [PushFile(str(p)) for p in paths], **dict(registry.client_options(), **kwargs))
    assert result.changed
    return result.digest


def leftovers(directory: Path) -> list[str]:
    """Staging or temporary entries a failed pull might have left."""
    return sorted(p.name for p in directory.iterdir() if p.name != RECORD_NAME and ('.oci-' in p.name or p.name.endswith('.part')))


def test_multi_layer_rootfs_round_trip_keeps_metadata(registry, tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    base = write_tar(src / 'rootfs.tar.gz', rootfs_members(), 'gzip')
    overlay = write_tar(src / 'overlay.tar.zst', [member('etc/hostname', b'node02\n'), member('etc/motd', b'hi\n')], 'zstd')
    (src / 'recipe.json').write_text('{"task_target": "install-linux.target"}')
    digest = push(registry, 'os-images/ubuntu:22.04', base, overlay, src / 'recipe.json', artifact_type=ROOTFS_TYPE,
                  annotations={'org.opencontainers.image.version': '22.04.5'})

    dest = tmp_path / 'target'
    result = pull_and_unpack('%s/os-images/ubuntu:22.04' % registry.host, str(dest), **registry.client_options())

    assert result.changed and result.digest == digest and result.artifact_type == ROOTFS_TYPE
    assert [(layer.title, layer.action, layer.compression) for layer in result.layers] == [
        ('rootfs.tar.gz', 'unpacked', 'gzip'), ('overlay.tar.zst', 'unpacked', 'zstd')]  # recipe.json is not a tar layer
    assert result.bytes_downloaded == base.stat().st_size + overlay.stat().st_size
    tree = snapshot(dest)
    assert (dest / 'etc/hostname').read_bytes() == b'node02\n'  # the later layer wins
    assert (dest / 'etc/motd').read_bytes() == b'hi\n'
    assert tree['usr/bin/passwd'].mode == 0o4755
    assert (tree['etc/shadow'].mode, tree['etc/shadow'].gid) == (0o640, 42)
    assert tree['usr/bin/vi'] == tree['usr/bin/vi']._replace(kind='link', link='/etc/alternatives/vi')
    assert tree['usr/bin/view'].link == 'vi'
    assert (tree['usr/bin/python3'].uid, tree['usr/bin/python3'].gid) == (1000, 1000)
    assert os.stat(dest / 'usr/bin/python3').st_ino == os.stat(dest / 'usr/bin/python3.11').st_ino
    assert os.getxattr(dest / 'usr/bin/ping', 'user.l3metal') == b'\xff\x00binary'
    assert os.getxattr(dest / 'usr/bin/ping', 'security.capability')[:4] == b'\x01\x00\x00\x02'
    assert tree['srv/ro'].mode == 0o555 and (dest / 'srv/ro/file').read_bytes() == b'inside a read-only dir\n'
    assert (tree['home/user'].mode, tree['home/user'].uid) == (0o700, 1000)
    assert tree['var/empty'].size == 0
    assert int(os.stat(dest / 'etc/shadow').st_mtime) == MTIME
    record = json.loads((dest / RECORD_NAME).read_text())
    assert record['digest'] == digest and [layer['title'] for layer in record['layers']] == ['rootfs.tar.gz', 'overlay.tar.zst']
    assert leftovers(tmp_path) == []

    again = pull_and_unpack('%s/os-images/ubuntu@%s' % (registry.host, digest), str(dest), **registry.client_options())
    assert not again.changed and again.bytes_downloaded == 0
    forced = pull_and_unpack('%s/os-images/ubuntu:22.04' % registry.host, str(dest), force=True, **registry.client_options())
    assert forced.changed and snapshot(dest) == tree


def test_tag_and_digest_resolve_to_the_same_manifest(registry, tmp_path):
    payload = write_tar(tmp_path / 'a.tar', [member('a', b'1')], 'none')
    digest = push(registry, 'tools/x:1.0', payload)
    by_tag = fetch_manifest('%s/tools/x:1.0' % registry.host, insecure=True)
    by_digest = fetch_manifest('%s/tools/x@%s' % (registry.host, digest), insecure=True)
    both = fetch_manifest('%s/tools/x:1.0@%s' % (registry.host, digest), insecure=True)
    assert by_tag.digest == by_digest.digest == both.digest == digest
    assert by_tag.raw == by_digest.raw
    raw, headers = registry.get_manifest_raw('tools/x', '1.0')  # what the registry stores, byte for byte
    assert raw == by_tag.raw and headers['Docker-Content-Digest'] == digest

    other = push(registry, 'tools/x:1.1', write_tar(tmp_path / 'b.tar', [member('b', b'2')], 'none'))
    assert fetch_manifest('%s/tools/x:1.1' % registry.host, insecure=True).digest == other != digest


def test_unknown_tag_and_digest_fail_cleanly(registry, tmp_path):
    push(registry, 'tools/x:1.0', write_tar(tmp_path / 'a.tar', [member('a', b'1')], 'none'))
    dest = tmp_path / 'dest'
    with pytest.raises(NotFoundError, match='tools/x:nope.*not found'):
        pull_and_unpack('%s/tools/x:nope' % registry.host, str(dest), insecure=True)
    with pytest.raises(NotFoundError):
        pull_and_unpack('%s/tools/x@sha256:%s' % (registry.host, 'ab' * 32), str(dest), insecure=True)
    with pytest.raises(NotFoundError):
        pull_and_unpack('%s/nothing/here:1' % registry.host, str(dest), insecure=True)
    assert not dest.exists() and leftovers(tmp_path) == []


def _tamper(registry, digest: str, offset: int) -> None:
    blob = registry.blob_path(digest)
    data = bytearray(blob.read_bytes())
    data[offset] ^= 0xFF  # same size, different content: only the digest can tell
    blob.write_bytes(bytes(data))


@pytest.mark.parametrize('compression', ['none', 'gzip'])
def test_tampered_blob_is_a_digest_error_and_leaves_nothing(registry, tmp_path, compression):
    big = os.urandom(3 * 1024 * 1024)
    layer = write_tar(tmp_path / ('rootfs.tar' + ('.gz' if compression == 'gzip' else '')),
                      [member('etc/hostname', b'new\n'), member('big.bin', big)], compression)
    push(registry, 'os/rootfs:1', layer)
    manifest = fetch_manifest('%s/os/rootfs:1' % registry.host, insecure=True)
    _tamper(registry, manifest.layers[0].digest, layer.stat().st_size - 4096)  # near the end: most of the tree is already written

    fresh = tmp_path / 'fresh'
    with pytest.raises(DigestMismatchError, match='expected %s' % manifest.layers[0].digest):
        pull_and_unpack('%s/os/rootfs:1' % registry.host, str(fresh), insecure=True)
    assert not fresh.exists() and leftovers(tmp_path) == []

    existing = tmp_path / 'mounted'
    (existing / 'etc').mkdir(parents=True)
    (existing / 'etc/hostname').write_text('old\n')
    before = snapshot(existing)
    with pytest.raises(DigestMismatchError):
        pull_and_unpack('%s/os/rootfs:1' % registry.host, str(existing), insecure=True)
    assert snapshot(existing) == before and (existing / 'etc/hostname').read_text() == 'old\n'

    target = tmp_path / 'rootfs.file'
    target.write_bytes(b'previous')
    with pytest.raises(DigestMismatchError):
        pull_blob_to_file('%s/os/rootfs:1' % registry.host, str(target), insecure=True)
    assert target.read_bytes() == b'previous' and leftovers(tmp_path) == []


def test_truncated_blob_is_refused(registry, tmp_path):
    layer = write_tar(tmp_path / 'x.tar', [member('a', os.urandom(200000))], 'none')
    push(registry, 'os/trunc:1', layer)
    manifest = fetch_manifest('%s/os/trunc:1' % registry.host, insecure=True)
    blob = registry.blob_path(manifest.layers[0].digest)
    blob.write_bytes(blob.read_bytes()[:100000])
    with pytest.raises(DigestMismatchError):
        pull_blob_to_file('%s/os/trunc:1' % registry.host, str(tmp_path / 'out'), insecure=True)
    assert not (tmp_path / 'out').exists()


UNSAFE = {
    'dotdot': [member('etc/ok', b'x'), member('../evil', b'pwned')],
    'nested-dotdot': [member('a/../../evil', b'pwned')],
    'absolute': [member('/tmp/evil-absolute', b'pwned')],
    'symlink-escape': [member('etc/link', type=tarfile.SYMTYPE, linkname='../../outside')],
    'write-through-symlink': [member('link', type=tarfile.SYMTYPE, linkname='/OUTSIDE'), member('link/evil', b'pwned')],
    'hardlink-out': [member('evil', type=tarfile.LNKTYPE, linkname='../outside/secret')],
    'hardlink-absolute': [member('evil', type=tarfile.LNKTYPE, linkname='/etc/passwd')],
}


@pytest.mark.parametrize('case', sorted(UNSAFE))
def test_path_traversal_is_refused(registry, tmp_path, case):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret').write_text('keep')
    members = [(info.replace(linkname=str(outside)) if info.linkname == '/OUTSIDE' else info, data) for info, data in UNSAFE[case]]
    push(registry, 'os/evil:1', write_tar(tmp_path / 'evil.tar.gz', members, 'gzip'))
    dest = tmp_path / 'work' / 'dest'
    dest.parent.mkdir()
    with pytest.raises(UnsafeArchiveError):
        pull_and_unpack('%s/os/evil:1' % registry.host, str(dest), insecure=True)
    assert not dest.exists() and sorted(os.listdir(dest.parent)) == []
    assert sorted(os.listdir(outside)) == ['secret'] and (outside / 'secret').read_text() == 'keep'
    assert not (tmp_path / 'evil').exists() and not Path('/tmp/evil-absolute').exists()


def test_absolute_symlinks_can_be_refused_too(registry, tmp_path):
    push(registry, 'os/abs:1', write_tar(tmp_path / 'a.tar', [member('bin/vi', type=tarfile.SYMTYPE, linkname='/etc/alternatives/vi')], 'none'))
    with pytest.raises(UnsafeArchiveError, match='absolute symlink'):
        pull_and_unpack('%s/os/abs:1' % registry.host, str(tmp_path / 'd'), insecure=True, allow_absolute_symlinks=False)


def test_unpack_into_existing_directory_merges_like_tar(registry, tmp_path):
    dest = tmp_path / 'mnt'
    (dest / 'etc').mkdir(parents=True)
    (dest / 'lost+found').mkdir()
    (dest / 'etc/hostname').write_text('old\n')
    (dest / 'etc/keep').write_text('mine\n')
    hard = dest / 'etc/hostname-link'
    os.link(dest / 'etc/hostname', hard)  # an existing hard link must not be written through
    push(registry, 'os/merge:1', write_tar(tmp_path / 'r.tar.gz', rootfs_members(), 'gzip'))
    result = pull_and_unpack('%s/os/merge:1' % registry.host, str(dest), insecure=True)
    assert result.changed
    assert (dest / 'etc/hostname').read_text() == 'node01\n'
    assert (dest / 'etc/keep').read_text() == 'mine\n' and hard.read_text() == 'old\n'
    assert (dest / 'lost+found').is_dir() and (dest / 'usr/bin/passwd').stat().st_mode & 0o7777 == 0o4755
    assert leftovers(dest) == []


def test_single_file_artifact_to_file_is_verified_and_idempotent(registry, tmp_path):
    wim = tmp_path / 'install.wim'
    wim.write_bytes(b'MSWIM\0\0\0' + os.urandom(512 * 1024))
    push(registry, 'os-images/windows-wim:2022', wim)
    out = tmp_path / 'out' / 'install.wim'
    out.parent.mkdir()
    first = pull_blob_to_file('%s/os-images/windows-wim:2022' % registry.host, str(out), insecure=True)
    assert first.changed and out.read_bytes() == wim.read_bytes() and first.layers[0].title == 'install.wim'
    second = pull_blob_to_file('%s/os-images/windows-wim:2022' % registry.host, str(out), insecure=True)
    assert not second.changed and second.bytes_downloaded == 0
    assert leftovers(out.parent) == []


@pytest.mark.filterwarnings('ignore::urllib3.exceptions.InsecureRequestWarning')  # validate_certs=false is tested on purpose
def test_htpasswd_over_tls(auth_registry, tmp_path):
    layer = write_tar(tmp_path / 'r.tar.gz', [member('etc/hostname', b'tls\n')], 'gzip')
    push(auth_registry, 'os/secure:1', layer)
    ref = '%s/os/secure:1' % auth_registry.host
    ca = str(auth_registry.ca_path)

    result = pull_and_unpack(ref, str(tmp_path / 'ok'), username='testuser', password='testpass', ca_path=ca)
    assert (tmp_path / 'ok/etc/hostname').read_text() == 'tls\n' and result.changed

    with pytest.raises(AuthenticationError, match='wrong username/password'):
        fetch_manifest(ref, username='testuser', password='wrong', ca_path=ca)
    with pytest.raises(AuthenticationError, match='needs credentials'):
        fetch_manifest(ref, ca_path=ca)
    with pytest.raises(RegistryError, match='TLS error.*ca_path'):
        fetch_manifest(ref, username='testuser', password='testpass')
    with pytest.raises(RegistryError, match='speaks HTTPS; drop insecure'):
        fetch_manifest(ref, username='testuser', password='testpass', insecure=True)  # plain HTTP to a TLS port
    assert fetch_manifest(ref, username='testuser', password='testpass', validate_certs=False).digest == result.digest

    config = tmp_path / 'docker' / 'config.json'
    config.parent.mkdir()
    config.write_text(json.dumps({'auths': {auth_registry.host: {'auth': base64.b64encode(b'testuser:testpass').decode()}}}))
    assert fetch_manifest(ref, docker_config=str(config.parent), ca_path=ca).digest == result.digest
    config.write_text(json.dumps({'auths': {'https://' + auth_registry.host: {'username': 'testuser', 'password': 'nope'}}}))
    with pytest.raises(AuthenticationError):
        fetch_manifest(ref, docker_config=str(config), ca_path=ca)


def test_bearer_token_flow(token_registry, tmp_path):
    layer = write_tar(tmp_path / 'r.tar.gz', [member('etc/hostname', b'token\n')], 'gzip')
    digest = push(token_registry, 'os/bearer:1', layer)
    ref = '%s/os/bearer:1' % token_registry.host
    options = token_registry.client_options()
    result = pull_and_unpack(ref, str(tmp_path / 'dest'), **options)
    assert result.digest == digest and (tmp_path / 'dest/etc/hostname').read_text() == 'token\n'
    served = token_registry.token_server.requests
    assert {'repository:os/bearer:pull,push', 'repository:os/bearer:pull'} <= {s for r in served for s in r['scope']}
    assert all(r['user'] == 'testuser' and r['ok'] for r in served)

    with pytest.raises(AuthenticationError, match='token service .* refused'):
        fetch_manifest(ref, username='testuser', password='wrong', ca_path=options['ca_path'])
    with pytest.raises(AuthenticationError, match='needs credentials'):  # anonymous token, no access
        fetch_manifest(ref, ca_path=options['ca_path'])


def test_docker_schema2_written_by_another_client(registry, tmp_path):
    """A manifest pushed through the plain HTTP API (no code of ours), with Docker media types."""
    layer = write_tar(tmp_path / 'l.tar.gz', [member('etc/os-release', b'ID=debian\n')], 'gzip').read_bytes()
    digest = registry.push_raw('library/debian', '12', [(layer, 'application/vnd.docker.image.rootfs.diff.tar.gzip', {})],
                               config=b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
                               config_media_type='application/vnd.docker.container.image.v1+json',
                               manifest_media_type='application/vnd.docker.distribution.manifest.v2+json')
    result = pull_and_unpack('%s/library/debian:12' % registry.host, str(tmp_path / 'd'), insecure=True)
    assert result.digest == digest and result.media_type == 'application/vnd.docker.distribution.manifest.v2+json'
    assert (tmp_path / 'd/etc/os-release').read_text() == 'ID=debian\n'


def test_an_index_is_refused_with_the_choices(registry, tmp_path):
    digest = registry.push_raw('multi/arch', 'tmp', [(b'x', 'application/octet-stream', {})])
    raw, _headers = registry.get_manifest_raw('multi/arch', 'tmp')
    index = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json', 'manifests': [
        {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': digest, 'size': len(raw),
         'platform': {'architecture': 'amd64', 'os': 'linux'}}]}).encode()
    session = registry.session()
    answer = session.put('%s/v2/multi/arch/manifests/latest' % registry.url, data=index,
                         headers={'Content-Type': 'application/vnd.oci.image.index.v1+json'}, timeout=10)
    assert answer.status_code == 201, answer.text
    with pytest.raises(UnsupportedError, match='is an index.*%s \\(amd64\\)' % digest):
        fetch_manifest('%s/multi/arch:latest' % registry.host, insecure=True)


def test_reference_parsing():
    ref = parse_reference('registry.example.com:5000/os-images/ubuntu-rootfs:22.04')
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == ('registry.example.com:5000', 'os-images/ubuntu-rootfs', '22.04', None)
    pinned = parse_reference('localhost/a/b@sha256:' + 'a' * 64)
    assert pinned.selector == 'sha256:' + 'a' * 64 and pinned.tag is None
    assert str(parse_reference('127.0.0.1:5000/x:1@sha256:' + 'b' * 64)) == '127.0.0.1:5000/x:1@sha256:' + 'b' * 64
    assert parse_reference('docker.io/library/debian:12').api_host == 'registry-1.docker.io'
    for bad in ('ubuntu:22.04', 'registry.example.com/Upper:1', 'r.example.com/x@sha256:short', 'r.example.com/x:bad tag', ''):
        with pytest.raises(InvalidReferenceError):
            parse_reference(bad)


@pytest.mark.root
def test_unpack_into_a_target_with_mounted_boot(registry, tmp_path):
    """The maintenance OS mounts /boot (and /boot/efi) before unpacking: files below them must land on
    those file systems, although the final rename cannot cross file systems."""
    require(os.geteuid() == 0, 'mounting a tmpfs needs root')
    members = rootfs_members() + [member('boot/', type=tarfile.DIRTYPE, mode=0o755), member('boot/vmlinuz', b'kernel', mode=0o600),
                                  member('boot/efi/', type=tarfile.DIRTYPE, mode=0o700), member('boot/efi/EFI/BOOT/BOOTX64.EFI', b'MZ'),
                                  member('boot/grub/grub.cfg', b'set timeout=1\n')]
    push(registry, 'os/boot:1', write_tar(tmp_path / 'r.tar.gz', members, 'gzip'))
    root = tmp_path / 'mnt'
    (root / 'boot').mkdir(parents=True)
    mounted = []
    try:
        for point in (root / 'boot', root / 'boot' / 'efi'):
            point.mkdir(exist_ok=True)
            subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'l3metal-test', str(point)], check=True)
            mounted.append(point)
        result = pull_and_unpack('%s/os/boot:1' % registry.host, str(root), insecure=True)
        assert result.changed
        assert (root / 'boot/vmlinuz').read_bytes() == b'kernel' and (root / 'boot/grub/grub.cfg').exists()
        assert os.stat(root / 'boot/vmlinuz').st_dev == os.stat(root / 'boot').st_dev != os.stat(root).st_dev
        assert os.stat(root / 'boot/efi/EFI/BOOT/BOOTX64.EFI').st_dev == os.stat(root / 'boot/efi').st_dev != os.stat(root / 'boot').st_dev
        assert os.stat(root / 'boot/efi').st_mode & 0o777 == 0o700 and os.stat(root / 'boot').st_mode & 0o777 == 0o755
        assert (root / 'etc/hostname').read_text() == 'node01\n'
        assert [p for p in ('.', 'boot', 'boot/efi') if any('.oci-unpack-' in n for n in os.listdir(root / p))] == []
    finally:
        for point in reversed(mounted):
            subprocess.run(['umount', str(point)], check=False)
