# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The commands the build runs, as assembled (the bootc ones cannot run here: no bootc image can be pulled)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso import bootc, debian, image, live_iso
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.cache import Cache
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.errors import CommandError, MaintenanceIsoError, MissingToolError
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.podman import Podman
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.runner import Runner, require_programs
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.sources import Sources


@pytest.fixture
def podman(tmp_path):
    return Podman(Runner(str(tmp_path / 'logs')), str(tmp_path / 'cache' / 'podman'), '/etc/l3m/containers.conf')


def test_podman_uses_its_own_store_and_a_runroot_podman_accepts(podman, tmp_path):
    assert podman.argv[:3] == ['podman', '--root', str(tmp_path / 'cache' / 'podman' / 'root')]
    assert len(podman.runroot) <= 50 and podman.runroot.startswith('/run/l3metal-iso-')
    assert podman.env == {'CONTAINERS_CONF': '/etc/l3m/containers.conf'}
    assert podman.storage_reference('r/x:1') == 'containers-storage:[overlay@%s+%s]r/x:1' % (podman.root, podman.runroot)


def test_bootc_export_runs_bootc_inside_the_image_privileged_with_a_labelled_volume(podman):
    argv = bootc.export_argv(podman, 'localhost/l3metal-maintenance-iso/image:abc', '/cache/work/squashfs')
    run = argv[len(podman.argv):]
    assert run == ['run', '--rm', '--network', 'none', '--privileged', '-v', '/cache/work/squashfs:/output:Z',
                   'localhost/l3metal-maintenance-iso/image:abc', 'bootc', 'container', 'export', '--format=tar', '-o', '/output/rootfs.tar', '/']
    check = bootc.export_check_argv(podman, 'img')[len(podman.argv):]
    assert check[-5:] == ['img', 'bootc', 'container', 'export', '--help']


def test_the_bootc_export_is_unpacked_with_every_xattr_and_without_the_ostree_layout():
    argv = bootc.extract_argv('/w/rootfs.tar', '/w/rootfs')
    assert argv[:6] == ['tar', '--extract', '--file', '/w/rootfs.tar', '--directory', '/w/rootfs']
    assert {'--numeric-owner', '--preserve-permissions', '--xattrs', '--xattrs-include=*', '--anchored'} <= set(argv)
    for name in ('sysroot', 'ostree', 'boot'):
        assert '--exclude=./%s' % name in argv and '--exclude=%s' % name in argv
    assert bootc.excluded_paths('bootc') == ('sysroot', 'ostree', 'boot') and bootc.excluded_paths('debian') == ('boot',)


def test_the_bootc_maintenance_build_keeps_the_fedora_install_and_pulls_a_missing_base(make_spec):
    spec = make_spec(base='bootc', bootc_image='quay.io/fedora/fedora-bootc:43')
    assert image.maintenance_build_args(spec, Sources(spec.src), 'quay.io/fedora/fedora-bootc:43') == {
        'BASE': 'quay.io/fedora/fedora-bootc:43', 'TOOLS_REGISTRY': 'registry.example.com/l3metal/tools'}
    debian_spec = make_spec()
    args = image.maintenance_build_args(debian_spec, Sources(debian_spec.src), 'localhost/base:1')
    assert args['INSTALL'].endswith('install -y --no-install-recommends podman python3 python3-jsonschema python3-pycdlib xorriso mtools '
                                    'util-linux dracut-live && rm -f /var/cache/apt/*.bin')


def test_squashfs_excludes_come_last_and_the_store_is_a_pseudo_file():
    argv = live_iso.squashfs_argv('/root', '/out/squashfs.img', 15, ('boot',), '/cache/tools x/tool-images.sqfs')
    assert argv[:3] == ['mksquashfs', '/root', '/out/squashfs.img']
    assert argv[argv.index('-p') + 1] == "usr/lib/l3metal/tool-images.sqfs f 0444 0 0 cat '/cache/tools x/tool-images.sqfs'"
    assert argv[argv.index('-e'):] == ['-e', 'boot', 'run/*', 'tmp/*', 'var/tmp/*']
    assert '-xattrs' in argv and argv[argv.index('-Xcompression-level') + 1] == '15'


def test_grub_mkrescue_gets_the_label_and_iso_level_3_as_xorriso_commands():
    argv = live_iso.grub_mkrescue_argv('/out/x.iso', '/tree', 'L3M_MAINT')
    assert argv[argv.index('--'):] == ['--', '-volid', 'L3M_MAINT', '-compliance', 'iso_9660_level=3']


def test_a_grub_template_without_its_markers_is_refused():
    with pytest.raises(MaintenanceIsoError, match='grub.cfg.in lacks @CMDLINE@'):
        live_iso.grub_cfg('menuentry "@TITLE@" { linux /boot/vmlinuz }', 't', 'c')


def test_the_debian_base_keeps_its_downloads_and_enables_networkd():
    argv = debian.live_base_argv(['linux-image-amd64', 'systemd'], 'trixie', 'http://m/debian', '/w/rootfs.tar', '/c/debs', '/src')
    assert argv[:3] == ['mmdebstrap', '--mode=root', '--variant=apt'] and argv[-3:] == ['trixie', '/w/rootfs.tar', 'http://m/debian']
    assert '--include=linux-image-amd64,systemd' in argv
    assert '--setup-hook=sync-in /c/debs /var/cache/apt/archives/' in argv
    assert '--customize-hook=sync-out /var/cache/apt/archives /c/debs' in argv
    assert any('systemctl enable systemd-networkd.service' in arg for arg in argv)
    assert '--customize-hook=sync-in /src/maintenance_os/live/debian/rootfs /' in argv
    assert debian.apt_install_command([]) == 'true'


def test_missing_programs_are_named_with_their_debian_packages(tmp_path):
    with pytest.raises(MissingToolError) as info:
        require_programs(['mksquashfs', 'grub-mkrescue', 'podman'], paths=[str(tmp_path)])
    message = str(info.value)
    assert message.startswith('Failed to find required executables "mksquashfs" (Debian package squashfs-tools;')
    assert '"grub-mkrescue" (Debian package grub-common;' in message and 'in paths: %s.' % tmp_path in message
    assert message.endswith('Install grub-common podman squashfs-tools on the build host.')
    assert info.value.tools == ['mksquashfs', 'grub-mkrescue', 'podman']


def test_a_failed_command_names_the_stage_and_ends_with_its_output(tmp_path):
    runner = Runner(str(tmp_path / 'logs'), tail_lines=3)
    with pytest.raises(CommandError) as info:
        runner.run('squashfs', ['sh', '-c', 'for i in 1 2 3 4 5; do echo line $i; done; exit 7'])
    assert info.value.returncode == 7 and info.value.stage == 'squashfs'
    assert str(info.value).endswith('last lines of its output:\nline 3\nline 4\nline 5')
    assert 'line 1' in (tmp_path / 'logs' / 'squashfs.log').read_text()


def test_a_stage_directory_appears_complete_or_not_at_all(tmp_path):
    cache = Cache(str(tmp_path / 'cache'))
    cache.ensure()
    with pytest.raises(RuntimeError):
        with cache.building('tools', 'k1') as work:
            (open(os.path.join(work, 'half'), 'w', encoding='utf-8')).close()
            raise RuntimeError('the build failed half-way')
    assert not cache.has('tools', 'k1') and os.listdir(cache.path('stages')) == []
    with cache.building('tools', 'k2') as work:
        with open(os.path.join(work, 'tool-images.sqfs'), 'w', encoding='utf-8') as handle:
            handle.write('x')
    assert cache.has('tools', 'k2') and os.path.isfile(os.path.join(cache.stage_dir('tools', 'k2'), 'tool-images.sqfs'))


def test_pruning_keeps_the_newest_results(tmp_path):
    cache = Cache(str(tmp_path / 'cache'))
    cache.ensure()
    for number, key in enumerate(('a', 'b', 'c')):
        with cache.building('squashfs', key):
            pass
        os.utime(cache.stage_dir('squashfs', key), (number, number))
    assert [os.path.basename(p) for p in cache.prune('squashfs', 2)] == ['squashfs-a']
    assert sorted(os.listdir(cache.path('stages'))) == ['squashfs-b', 'squashfs-c']


def test_old_isos_are_pruned_but_never_the_current_one(tmp_path):
    names = ['maint-%016x.iso' % number for number in range(4)]
    for number, name in enumerate(names):
        (tmp_path / name).write_bytes(b'x')
        (tmp_path / (name + '.sha256')).write_text('x')
        os.utime(tmp_path / name, (number, number))
    (tmp_path / 'other-0000000000000000.iso').write_bytes(b'x')
    removed = live_iso.prune_isos(str(tmp_path), 'maint', 2, str(tmp_path / names[0]))
    assert sorted(os.path.basename(p) for p in removed) == [names[1], names[2]]
    assert sorted(os.listdir(tmp_path)) == sorted([names[0], names[0] + '.sha256', names[3], names[3] + '.sha256', 'other-0000000000000000.iso'])
