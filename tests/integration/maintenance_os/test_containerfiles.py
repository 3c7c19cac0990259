# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Containerfiles build with podman, offline, on a stand-in base.

The real bases (Fedora bootc, Fedora) cannot be pulled here, so BASE is a busybox rootfs imported
with ``podman import`` and INSTALL is ``true``: this proves the structure (the runtime packages and the
shared packages of common/ where the wrappers look for them, units, Quadlet files, bound images, registry
rewrite, entrypoint command), not the distribution package names.  podman 4.3 needs runc and explicit ulimits here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.maintenance_os import debian_rootfs
from l3metal_lab.loopdev import sh
from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.prerequisites import require

BASE = 'localhost/l3m-test-base:busybox'
CONTAINERS_CONF = '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\nnetns = "none"\n[engine]\nruntime = "runc"\n'


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        (base / 'containers.conf').write_text(CONTAINERS_CONF)
        self.env = dict(os.environ, CONTAINERS_CONF=str(base / 'containers.conf'))

    def __call__(self, *args: str) -> str:
        proc = subprocess.run(['podman', '--root', str(self.base / 'storage'), '--runroot', str(self.base / 'run')] + list(args),
                              env=self.env, cwd=COLLECTION_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False, timeout=300)
        assert proc.returncode == 0, 'podman %s:\n%s' % (' '.join(args), proc.stdout[-3000:])
        return proc.stdout

    def build(self, containerfile: str, tag: str, *build_args: str) -> None:
        argv = ['build', '-q', '--network', 'none', '--build-arg', 'BASE=' + BASE, '--build-arg', 'INSTALL=true', '-f', containerfile, '-t', tag]
        for arg in build_args:
            argv += ['--build-arg', arg]
        self(*argv + ['.'])

    def sh(self, image: str, script: str) -> str:
        return self('run', '--rm', image, 'sh', '-c', script)


@pytest.fixture(scope='module')
def podman(tmp_path_factory):
    require(os.geteuid() == 0 and shutil.which('podman') and shutil.which('runc') and os.path.exists('/bin/busybox'),
            'needs root, podman, runc and busybox-static')
    base = tmp_path_factory.mktemp('podman')
    rootfs = base / 'rootfs'
    (rootfs / 'bin').mkdir(parents=True)
    shutil.copy2('/bin/busybox', rootfs / 'bin' / 'busybox')
    for applet in ('sh', 'cp', 'rm', 'find', 'test', 'mkdir', 'sed', 'ln', 'chmod', 'basename', 'ls', 'cat', 'readlink', 'grep', 'env', 'stat'):
        (rootfs / 'bin' / applet).symlink_to('busybox')
    subprocess.run(['tar', '-C', str(rootfs), '-cf', str(base / 'rootfs.tar'), '.'], check=True)
    runner = Podman(base)
    runner('import', '-q', str(base / 'rootfs.tar'), BASE)
    return runner


def test_maintenance_os_image(podman):
    podman.build('maintenance_os/Containerfile', 'localhost/l3m-maint:test', 'TOOLS_REGISTRY=registry.internal:5000/tools')
    image = 'localhost/l3m-maint:test'
    # the dispatcher and the contract package of common/, file for file, where /usr/sbin/provisioner looks for them
    for package, source in (('provisioner', COLLECTION_ROOT / 'maintenance_os' / 'dispatcher' / 'provisioner'),
                            ('l3metal_contract', COLLECTION_ROOT / 'common' / 'l3metal_contract')):
        names = sorted(p.name for p in source.glob('*.py'))
        listing = podman.sh(image, 'cd /usr/lib/l3metal/python/%s && ls' % package).split()
        assert listing == names
        assert podman.sh(image, 'cd /usr/lib/l3metal/python/%s && cat %s' % (package, ' '.join(names))) == ''.join((source / n).read_text() for n in names)
    quadlets = sorted(p.name for p in (COLLECTION_ROOT / 'maintenance_os' / 'quadlets').glob('*.container'))
    listing = podman.sh(image, 'cd /usr/lib/bootc/bound-images.d && for f in *; do echo "$f $(readlink $f)"; done').split('\n')
    assert [line for line in listing if line] == ['%s /usr/share/containers/systemd/%s' % (q, q) for q in quadlets]
    images = podman.sh(image, 'grep -h ^Image= /usr/share/containers/systemd/*.container').split()
    assert images == ['Image=registry.internal:5000/tools/%s:1.0.0' % q.split('.')[0].replace('unattend', 'bootloader-windows')
                      .replace('firmware-flash', 'firmware-flasher').replace('supermicro-flash', 'supermicro-flasher') for q in quadlets]
    wants = podman.sh(image, 'readlink /usr/lib/systemd/system/multi-user.target.wants/provision-dispatcher.service')
    assert wants.strip() == '../provision-dispatcher.service'
    units = podman.sh(image, 'ls /usr/lib/systemd/system').split()
    assert {'install-linux.target', 'provision-failed@.service', 'provision-success@.service'} <= set(units)
    assert podman.sh(image, 'test -x /usr/sbin/provisioner && echo ok').strip() == 'ok'
    # the image steps mount /etc/l3metal/registry: it exists even without a site layer
    assert podman.sh(image, 'test -d /etc/l3metal/registry && ls -A /etc/l3metal/registry && echo empty').strip() == 'empty'


def test_site_layer_adds_the_site_settings_root_only(podman, tmp_path):
    podman.build('maintenance_os/Containerfile', 'localhost/l3m-maint:test', 'TOOLS_REGISTRY=registry.internal:5000/tools')  # cached
    site = tmp_path / 'site'
    (site / 'registry').mkdir(parents=True)
    (site / 'site.env').write_text('L3METAL_RECEIVER_URL="https://10.1.1.10:8443"\nOCI_CA_FILE="/etc/l3metal/registry/ca.pem"\n')
    (site / 'node-key').write_text('0' * 64 + '\n')
    (site / 'registry' / 'ca.pem').write_text('-----BEGIN CERTIFICATE-----\n')
    podman('build', '-q', '--network', 'none', '--build-arg', 'BASE=localhost/l3m-maint:test', '-f',
           str(COLLECTION_ROOT / 'maintenance_os' / 'site' / 'Containerfile'), '-t', 'localhost/l3m-site:test', str(site))
    listing = podman.sh('localhost/l3m-site:test', 'cd /etc/l3metal && find . | sort | while read f; do stat -c "%a %n" "$f"; done').split('\n')
    assert [line for line in listing if line] == ['755 .', '600 ./node-key', '755 ./registry', '600 ./registry/ca.pem', '600 ./site.env']
    assert podman.sh('localhost/l3m-site:test', 'cat /etc/l3metal/site.env') == (site / 'site.env').read_text()
    # without site.env the layer refuses to build
    (site / 'site.env').unlink()
    proc = subprocess.run(['podman', '--root', str(podman.base / 'storage'), '--runroot', str(podman.base / 'run'), 'build', '-q', '--network', 'none',
                           '--build-arg', 'BASE=localhost/l3m-maint:test', '-f', str(COLLECTION_ROOT / 'maintenance_os' / 'site' / 'Containerfile'),
                           str(site)], env=podman.env, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode != 0


def test_tool_images_build_on_the_tools_base(podman):
    podman.build('maintenance_os/tools/base/Containerfile', 'localhost/l3m-tools-base:test')
    files = podman.sh('localhost/l3m-tools-base:test', 'ls /usr/lib/l3metal/python/l3mtools; env').split()
    assert {'partition.py', 'blockdev.py', 'layout.py', 'common.py', 'oci.py'} <= set(files)
    assert 'PYTHONPATH=/usr/lib/l3metal/python' in files
    # the collection's OCI client, the l3metal_oci package of common/, file for file
    source = COLLECTION_ROOT / 'common' / 'l3metal_oci'
    names = sorted(p.name for p in source.glob('*.py'))
    assert podman.sh('localhost/l3m-tools-base:test', 'cd /usr/lib/l3metal/python/l3metal_oci && ls').split() == names
    script = 'cd /usr/lib/l3metal/python/l3metal_oci && cat ' + ' '.join(names)
    assert podman.sh('localhost/l3m-tools-base:test', script) == ''.join((source / n).read_text() for n in names)
    tools = sorted(p.parent.name for p in (COLLECTION_ROOT / 'maintenance_os' / 'tools').glob('*/Containerfile')
                   if p.parent.name not in ('base', 'supermicro-flasher'))  # supermicro needs the vendor's binary
    for tool in tools:
        tag = 'localhost/l3m-%s:test' % tool
        extra = ['FLASH_COMMAND=socflash -s {firmware}'] if tool == 'firmware-flasher' else []
        podman.build('maintenance_os/tools/%s/Containerfile' % tool, tag, 'BASE=localhost/l3m-tools-base:test', *extra)
        cmd = podman('image', 'inspect', '--format', '{{join .Config.Cmd " "}}', tag).strip()
        module = cmd.rsplit('.', 1)[-1]
        assert cmd == 'python3 -m l3mtools.' + module and podman.sh(tag, 'test -f /usr/lib/l3metal/python/l3mtools/%s.py && echo ok' % module).strip() == 'ok'
    assert 'FLASH_COMMAND=socflash -s {firmware}' in podman.sh('localhost/l3m-firmware-flasher:test', 'env')


def test_the_partition_image_partitions_a_disk_as_its_quadlet_runs_it(podman, loop_disk, tmp_path):
    """The partition step in its container on a Debian base made by debootstrap: podman run as the Quadlet unit does it."""
    rootfs = debian_rootfs()
    podman('import', '-q', str(rootfs), 'localhost/l3m-debian:test')
    podman.build('maintenance_os/tools/base/Containerfile', 'localhost/l3m-tools-base-debian:test', 'BASE=localhost/l3m-debian:test')
    podman.build('maintenance_os/tools/partition/Containerfile', 'localhost/l3m-partition-debian:test', 'BASE=localhost/l3m-tools-base-debian:test')
    disk = loop_disk('300M')
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'layout.json').write_text(json.dumps([{'size': '100M', 'type_guid': 'ef00', 'format': 'vfat'},
                                                     {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root'}]))
    podman.env['TARGET_DISK'] = disk.dev  # passed by name, as the units' PodmanArgs=--env=TARGET_DISK does
    out = podman('run', '--rm', '--privileged', '--security-opt', 'label=disable', '--network', 'none', '-v', '/dev:/dev',
                 '-v', '%s:/run/provision:ro' % run_dir, '--env=TARGET_DISK', 'localhost/l3m-partition-debian:test')
    assert 'partition: done' in out
    assert [(r['code'], r['name']) for r in disk.gpt()] == [('EF00', ''), ('8300', 'root')]
    assert disk.blkid(1)['TYPE'] == 'vfat' and disk.blkid(2)['TYPE'] == 'ext4' and disk.blkid(2)['LABEL'] == 'root'
    sh('e2fsck', '-f', '-n', disk.part(2))
