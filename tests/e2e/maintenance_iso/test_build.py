# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance ISO built through the real role and module, then read back: its boot records, files, squashfs and image store.

Not booted here (test_preflight.py and the playbook e2e tests boot it); these tests prove what is in it and that a second
build of the same inputs builds nothing, while an edited dispatcher file rebuilds only what depends on it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from l3metal_lab import node_images
from l3metal_lab.media import pycdlib_tree
from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.receiver import NODE_KEY

pytestmark = pytest.mark.timeout(2400)
BUILD_TASK = 'l3metal.provision.maintenance_iso : Build the maintenance ISO (nothing is built when no input changed)'
STAGES = ('base', 'toolbase', 'tools', 'image', 'initramfs', 'squashfs', 'iso')
TOOLS_REGISTRY = 'registry.example.com/l3metal/tools'


def run(*argv: str, stderr: int = subprocess.PIPE) -> str:
    return subprocess.run(list(argv), check=True, stdout=subprocess.PIPE, stderr=stderr, text=True).stdout


@pytest.fixture(scope='module')
def squashfs(lab_iso: node_images.MaintenanceIso, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LiveOS/squashfs.img out of the ISO (xorriso), as the initramfs reads it."""
    out = tmp_path_factory.mktemp('squashfs') / 'squashfs.img'
    run('xorriso', '-osirrox', 'on', '-indev', str(lab_iso.path), '-extract', '/LiveOS/squashfs.img', str(out))
    return out


@pytest.fixture(scope='module')
def listing(squashfs: Path) -> dict[str, str]:
    """{path: 'mode owner size ... -> target'} of the squashfs (unsquashfs -lls)."""
    entries = {}
    for line in run('unsquashfs', '-lls', '-d', '', str(squashfs)).splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith('/'):
            path = parts[5].split(' -> ')[0]
            entries[path] = line
    return entries


def cat(squashfs: Path, path: str) -> bytes:
    return subprocess.run(['unsquashfs', '-cat', str(squashfs), path], check=True, capture_output=True).stdout


def test_the_iso_is_named_after_its_inputs_with_a_checksum_file(lab_iso):
    result = lab_iso.result
    assert lab_iso.path.name == '%s-%s.iso' % (node_images.ISO_NAME, result['inputs_digest'][:16])
    checksum = Path(result['sha256_file']).read_text()
    assert checksum == '%s  %s\n' % (lab_iso.sha256, lab_iso.path.name)
    assert run('sha256sum', str(lab_iso.path)).split()[0] == lab_iso.sha256
    assert lab_iso.size == lab_iso.path.stat().st_size
    assert lab_iso.path.stat().st_mode & 0o777 == 0o600   # it holds the site node key
    print('ISO %s: %.1f MiB, stages %s' % (lab_iso.path.name, lab_iso.size / 2**20, json.dumps(result['stages'])))


def test_a_second_build_of_the_same_inputs_builds_nothing(lab_iso, receiver_port):
    again = node_images.maintenance_iso(receiver_port)
    assert again.changed is False
    assert again.path == lab_iso.path and again.sha256 == lab_iso.sha256
    assert again.result['rebuilt'] == [] and again.result['reused'] == ['iso']
    assert again.result['durations']['total'] < 10, again.result['durations']


def test_check_mode_reports_no_change_for_the_built_iso(lab_iso, receiver_port):
    planned = node_images.maintenance_iso(receiver_port, check=True)
    assert planned.changed is False and planned.path == lab_iso.path and planned.result['reused'] == ['iso']


def test_the_iso_boots_from_bios_and_uefi_with_the_label_and_command_line(lab_iso):
    torito = run('xorriso', '-indev', str(lab_iso.path), '-report_el_torito', 'plain', stderr=subprocess.STDOUT)
    entries = [line for line in torito.splitlines() if line.startswith('El Torito boot img :')]
    platforms = [line.split()[6] for line in entries]
    assert platforms == ['BIOS', 'UEFI'], torito
    assert '/boot/grub/i386-pc/eltorito.img' in torito and '/efi.img' in torito
    with open(lab_iso.path, 'rb') as raw:
        head = raw.read(1024)
    assert head[510:512] == b'\x55\xaa' and head[512:520] == b'EFI PART'   # hybrid: MBR and GPT for a disk/USB boot too
    pvd = run('xorriso', '-indev', str(lab_iso.path), '-pvd_info', stderr=subprocess.STDOUT)
    assert "Volume Id    : %s" % lab_iso.result['label'] in pvd
    files = pycdlib_tree(lab_iso.path, 'rr')
    for path in ('LiveOS/squashfs.img', 'boot/vmlinuz', 'boot/initrd.img', 'boot/grub/grub.cfg'):
        assert path in files, sorted(files)[:20]
    grub = files['boot/grub/grub.cfg'].decode()
    cmdline = lab_iso.result['kernel_cmdline']
    assert '    linux /boot/vmlinuz %s\n' % cmdline in grub
    assert cmdline.startswith('root=live:CDLABEL=%s rd.live.image rd.live.ram=1 rd.live.overlay.overlayfs=1 ' % lab_iso.result['label'])
    assert 'l3metal.receiver=%s' % lab_iso.receiver_url in cmdline
    assert files['boot/vmlinuz'][0x202:0x206] == b'HdrS'       # a bzImage (the x86 boot protocol header)


def test_the_squashfs_holds_what_the_containerfiles_install(lab_iso, squashfs, listing):
    source = COLLECTION_ROOT
    for package, target in (('maintenance_os/dispatcher/provisioner', '/usr/lib/l3metal/python/provisioner'),
                            ('common/l3metal_contract', '/usr/lib/l3metal/python/l3metal_contract')):
        for path in sorted((source / package).glob('*.py')):
            assert target + '/' + path.name in listing, path
        first = sorted((source / package).glob('*.py'))[-1]
        assert cat(squashfs, target + '/' + first.name) == first.read_bytes()
        assert any(name.startswith(target + '/__pycache__/') for name in listing)   # compiled at build time (/usr is read-only)
    assert listing['/usr/sbin/provisioner'].startswith('-rwxr-xr-x')
    assert cat(squashfs, '/usr/sbin/provisioner') == (source / 'maintenance_os/dispatcher/bin/provisioner').read_bytes()
    for unit in sorted((source / 'maintenance_os' / 'systemd').iterdir()):
        if unit.name == 'supermicro-update.target':
            assert '/usr/lib/systemd/system/' + unit.name not in listing   # its step's image needs Supermicro's SUM
        else:
            assert cat(squashfs, '/usr/lib/systemd/system/' + unit.name) == unit.read_bytes()
    assert listing['/usr/lib/systemd/system/multi-user.target.wants/provision-dispatcher.service'].endswith('-> ../provision-dispatcher.service')
    quadlets = sorted(path.name for path in (source / 'maintenance_os' / 'quadlets').glob('*.container') if path.name != 'supermicro-flash.container')
    assert sorted(name.rsplit('/', 1)[1] for name in listing if name.startswith('/usr/share/containers/systemd/') and name.endswith('.container')) == quadlets
    for name in quadlets:
        assert '/usr/lib/bootc/bound-images.d/' + name in listing
        assert b'Image=%s/' % TOOLS_REGISTRY.encode() in cat(squashfs, '/usr/share/containers/systemd/' + name)
    assert '/etc/l3metal/registry' in listing


def test_the_live_layer_and_the_site_layer_are_in_the_squashfs(lab_iso, squashfs, listing):
    live = COLLECTION_ROOT / 'maintenance_os' / 'live' / 'rootfs'
    assert cat(squashfs, '/etc/containers/storage.conf') == (live / 'etc/containers/storage.conf').read_bytes()
    for unit in ('usr-lib-containers-storage.mount', 'var-lib-containers.mount'):
        assert cat(squashfs, '/usr/lib/systemd/system/' + unit) == (live / 'usr/lib/systemd/system' / unit).read_bytes()
        assert listing['/etc/systemd/system/local-fs.target.wants/' + unit].endswith('-> /usr/lib/systemd/system/' + unit)
    assert '/usr/lib/systemd/system/usr-lib-containers-storage.mount.d/50-selinux-context.conf' not in listing   # Debian: no SELinux
    assert cat(squashfs, '/etc/machine-id') == b''
    assert listing['/etc/systemd/system/systemd-firstboot.service'].endswith('-> /dev/null')
    assert listing['/etc/resolv.conf'].endswith('-> ../run/systemd/resolve/stub-resolv.conf')
    assert not [name for name in listing if name.startswith(('/run/', '/tmp/', '/boot/'))]
    site_env = cat(squashfs, '/etc/l3metal/site.env').decode()
    assert 'OCI_INSECURE="true"' in site_env and 'L3METAL_NODE_KEY_FILE="/etc/l3metal/node-key"' in site_env
    assert cat(squashfs, '/etc/l3metal/node-key') == (NODE_KEY + '\n').encode()
    assert listing['/etc/l3metal/node-key'].startswith('-rw-------') and listing['/etc/l3metal/site.env'].startswith('-rw-------')


def test_the_image_store_holds_the_image_of_every_step(lab_iso, squashfs, listing, tmp_path):
    assert listing['/usr/lib/l3metal/tool-images.sqfs'].startswith('-r--r--r--')
    store_sqfs = tmp_path / 'tool-images.sqfs'
    store_sqfs.write_bytes(cat(squashfs, '/usr/lib/l3metal/tool-images.sqfs'))
    store = tmp_path / 'store'
    run('unsquashfs', '-q', '-n', '-d', str(store), str(store_sqfs))
    # read as the guest reads it: a read-only additional image store of an otherwise empty podman
    out = run('podman', '--root', str(tmp_path / 'root'), '--runroot', '/run/l3m-e2e-store-%d' % os.getpid(), '--storage-driver', 'overlay',
              '--storage-opt', 'additionalimagestore=%s' % store, 'images', '--format', 'json')
    images = json.loads(out)
    assert images and all(image.get('ReadOnly') for image in images), images
    names = {name for image in images for name in image.get('Names') or []}
    wanted = set()
    for name in (line.rsplit('/', 1)[1] for line in listing if line.startswith('/usr/share/containers/systemd/') and line.endswith('.container')):
        image = next(line for line in cat(squashfs, '/usr/share/containers/systemd/' + name).decode().splitlines() if line.startswith('Image='))
        wanted.add(image.split('=', 1)[1])
    assert wanted and wanted <= names, (sorted(wanted), sorted(names))
    assert sorted(lab_iso.result['tool_images']) == sorted(wanted)
    shutil.rmtree(store)
    shutil.rmtree('/run/l3m-e2e-store-%d' % os.getpid(), ignore_errors=True)


def test_a_touched_dispatcher_file_rebuilds_nothing_an_edited_one_only_what_depends_on_it(lab_iso, receiver_port, tmp_path):
    src = tmp_path / 'src'
    for name in ('maintenance_os', 'common'):
        shutil.copytree(COLLECTION_ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns('__pycache__', '*.egg-info'))
    dispatch = src / 'maintenance_os' / 'dispatcher' / 'provisioner' / 'dispatch.py'
    os.utime(dispatch, (1, 1))
    touched = node_images.maintenance_iso(receiver_port, src=str(src))
    assert touched.changed is False and touched.path == lab_iso.path
    # a new edit each run: the same edit twice would find its image stage from the last run in the cache (rightly)
    marker = '# l3metal e2e: an edited dispatcher file %s\n' % uuid.uuid4().hex
    dispatch.write_text(dispatch.read_text() + '\n' + marker)
    edited = node_images.maintenance_iso(receiver_port, src=str(src), dest=str(tmp_path / 'out'))
    stages = edited.result['stages']
    assert edited.changed is True and edited.path != lab_iso.path
    assert edited.result['rebuilt'] == ['image', 'squashfs', 'iso'], json.dumps(stages)
    assert {name: stages[name]['status'] for name in ('base', 'tools', 'initramfs')} == {'base': 'reused', 'tools': 'reused', 'initramfs': 'reused'}
    assert stages['toolbase']['status'] == 'not needed'
    inner = tmp_path / 'edited.img'
    run('xorriso', '-osirrox', 'on', '-indev', str(edited.path), '-extract', '/LiveOS/squashfs.img', str(inner))
    assert cat(inner, '/usr/lib/l3metal/python/provisioner/dispatch.py').endswith(marker.encode())
    print('edited dispatcher: rebuilt in %s' % json.dumps(edited.result['durations']))


def test_the_role_copies_the_iso_into_the_receiver_media_and_pushes_it_to_a_registry(lab_iso, receiver_port, registry, tmp_path):
    media = tmp_path / 'media'
    media.mkdir()
    repository = 'l3metal/maintenance-iso'
    reference = '%s/%s:1' % (registry.host, repository)
    published = node_images.maintenance_iso(receiver_port, media_dir=str(media), push_reference=reference, push_options={'insecure': True})
    assert published.changed is False and published.path == lab_iso.path           # the build itself: found up to date
    copy = media / lab_iso.path.name
    assert copy.is_file() and run('sha256sum', str(copy)).split()[0] == lab_iso.sha256
    assert copy.stat().st_mode & 0o777 == 0o644                                     # maintenance_iso_media_mode: the BMC downloads it
    session = registry.session()
    answer = session.get('%s/v2/%s/manifests/1' % (registry.url, repository), timeout=30,
                         headers={'Accept': 'application/vnd.oci.image.manifest.v1+json'})
    assert answer.status_code == 200, answer.text
    manifest = answer.json()
    assert manifest.get('artifactType') == 'application/vnd.l3metal.maintenance-iso.v1' or \
        manifest['config']['mediaType'] == 'application/vnd.l3metal.maintenance-iso.v1', manifest
    [layer] = manifest['layers']
    assert (layer['digest'], layer['size'], layer['mediaType']) == ('sha256:' + lab_iso.sha256, lab_iso.size,
                                                                    'application/vnd.l3metal.maintenance-iso.v1+iso9660'), layer
    assert manifest['annotations']['vnd.l3metal.maintenance-iso.inputs-digest'] == lab_iso.result['inputs_digest']
    blob = registry.blob_path(layer['digest'])
    assert blob.stat().st_size == lab_iso.size                                       # the registry holds the ISO itself
