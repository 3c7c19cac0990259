# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which stages an input touches, and what a build would do with a given cache (no build runs here: the e2e suite builds)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.build import MaintenanceIsoBuild
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.cache import DONE
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.errors import MaintenanceIsoError

STAGES = ('base', 'toolbase', 'tools', 'image', 'initramfs', 'squashfs', 'iso')


def keys(build):
    return {name: stage.key for name, stage in build.stages.items()}


def changed_stages(before, after):
    return sorted(name for name in STAGES if before[name] != after[name])


def finish(build, *stages):
    """Mark stages as built in the cache, the way a finished stage leaves its directory (or, for the ISO, its file)."""
    for name in stages:
        if name == 'iso':
            os.makedirs(build.spec.dest, exist_ok=True)
            with open(build.iso_path, 'wb') as handle:
                handle.write(b'iso')
        else:
            path = build.cache.stage_dir(name, build.stages[name].key)
            os.makedirs(path)
            with open(os.path.join(path, DONE), 'w', encoding='utf-8') as handle:
                handle.write('done\n')


def test_the_iso_is_named_after_its_inputs_digest(make_spec):
    build = MaintenanceIsoBuild(make_spec(name='maint'))
    digest = build.stages['iso'].digest.hexdigest()
    assert os.path.basename(build.iso_path) == 'maint-%s.iso' % digest[:16]
    assert MaintenanceIsoBuild(make_spec(name='maint')).iso_path == build.iso_path


def test_an_edited_dispatcher_file_changes_the_image_squashfs_and_iso_only(make_spec, src):
    before = keys(MaintenanceIsoBuild(make_spec()))
    dispatch = src / 'maintenance_os' / 'dispatcher' / 'provisioner' / 'dispatch.py'
    os.utime(dispatch, (1, 1))
    assert keys(MaintenanceIsoBuild(make_spec())) == before          # touched: nothing changes
    dispatch.write_text(dispatch.read_text() + '\n# edited\n')
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec()))) == ['image', 'iso', 'squashfs']


def test_an_edited_step_entrypoint_changes_the_tool_images_not_the_maintenance_image(make_spec, src):
    before = keys(MaintenanceIsoBuild(make_spec()))
    step = src / 'maintenance_os' / 'tools' / 'l3mtools' / 'partition.py'
    step.write_text(step.read_text() + '\n# edited\n')
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec()))) == ['iso', 'squashfs', 'tools']


def test_the_shared_contract_is_in_both_the_image_and_the_tool_images(make_spec, src):
    before = keys(MaintenanceIsoBuild(make_spec()))
    contract = src / 'common' / 'l3metal_contract' / 'jobs.py'
    contract.write_text(contract.read_text() + '\n# edited\n')
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec()))) == ['image', 'iso', 'squashfs', 'tools']


def test_the_kernel_command_line_and_the_label_change_the_iso_stage_only(make_spec):
    before = keys(MaintenanceIsoBuild(make_spec()))
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec(kernel_cmdline_extra='l3metal.receiver=http://10.0.2.2:1')))) == ['iso']
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec(label='OTHER_LABEL')))) == ['iso']


def test_site_settings_change_the_image_not_the_initramfs(make_spec):
    before = keys(MaintenanceIsoBuild(make_spec()))
    with_site = keys(MaintenanceIsoBuild(make_spec(site={'node_key': 'k1'})))
    assert changed_stages(before, with_site) == ['image', 'iso', 'squashfs']
    assert changed_stages(with_site, keys(MaintenanceIsoBuild(make_spec(site={'node_key': 'k2'})))) == ['image', 'iso', 'squashfs']


def test_debian_packages_change_the_base_and_what_is_built_on_it(make_spec, src):
    before = keys(MaintenanceIsoBuild(make_spec()))
    packages = src / 'maintenance_os' / 'live' / 'debian-packages.txt'
    packages.write_text(packages.read_text() + 'less\n')
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec()))) == ['base', 'image', 'initramfs', 'iso', 'squashfs']
    assert changed_stages(before, keys(MaintenanceIsoBuild(make_spec(mirror='http://other.example.org/debian')))) == [
        'base', 'image', 'initramfs', 'iso', 'squashfs', 'toolbase', 'tools']


def test_a_tool_build_argument_changes_the_tool_images_only(make_spec):
    before = keys(MaintenanceIsoBuild(make_spec()))
    after = keys(MaintenanceIsoBuild(make_spec(tool_build_args={'firmware-flasher': {'FLASH_COMMAND': '/usr/bin/true {firmware}'}})))
    assert changed_stages(before, after) == ['iso', 'squashfs', 'tools']


def test_a_build_argument_for_an_unknown_tool_is_refused(make_spec):
    with pytest.raises(MaintenanceIsoError, match='tool_build_args: flasher is not one of the tool images the steps use'):
        MaintenanceIsoBuild(make_spec(tool_build_args={'flasher': {'X': '1'}}))


def test_with_an_empty_cache_every_stage_is_built(make_spec):
    build = MaintenanceIsoBuild(make_spec())
    assert build.plan() == dict.fromkeys(STAGES, 'build')


def test_an_existing_iso_means_nothing_is_built(make_spec):
    build = MaintenanceIsoBuild(make_spec())
    finish(build, 'iso')
    assert build.plan() == dict(dict.fromkeys(STAGES, 'not needed'), iso='reused')
    assert build.to_build() == []


def test_a_new_command_line_reuses_the_squashfs_and_the_initramfs(make_spec):
    first = MaintenanceIsoBuild(make_spec())
    finish(first, 'squashfs', 'initramfs', 'iso')
    second = MaintenanceIsoBuild(make_spec(kernel_cmdline_extra='console=ttyS1,115200n8'))
    assert second.plan() == dict(dict.fromkeys(STAGES, 'not needed'), squashfs='reused', initramfs='reused', iso='build')


def test_a_dispatcher_edit_rebuilds_image_and_squashfs_and_reuses_tools_and_initramfs(make_spec, src):
    first = MaintenanceIsoBuild(make_spec())
    finish(first, 'tools', 'squashfs', 'initramfs', 'iso')
    dispatch = src / 'maintenance_os' / 'dispatcher' / 'provisioner' / 'dispatch.py'
    dispatch.write_text(dispatch.read_text() + '\n# edited\n')
    second = MaintenanceIsoBuild(make_spec())
    # no podman store is asked here: the base image counts as missing, so it is rebuilt for the image
    assert second.plan() == {'base': 'build', 'toolbase': 'not needed', 'tools': 'reused', 'image': 'build', 'initramfs': 'reused',
                             'squashfs': 'build', 'iso': 'build'}


def test_force_rebuilds_everything_even_with_the_iso_there(make_spec):
    build = MaintenanceIsoBuild(make_spec(force=True))
    finish(build, 'tools', 'squashfs', 'initramfs', 'iso')
    assert build.plan() == dict.fromkeys(STAGES, 'build')


def test_the_bootc_base_is_external_and_keyed_by_its_reference(make_spec):
    build = MaintenanceIsoBuild(make_spec(base='bootc', bootc_image='quay.io/fedora/fedora-bootc:43'))
    assert build.plan() == dict(dict.fromkeys(STAGES, 'build'), base='external')
    other = MaintenanceIsoBuild(make_spec(base='bootc', bootc_image='quay.io/centos-bootc/centos-bootc:stream10'))
    assert changed_stages(keys(build), keys(other)) == ['base', 'image', 'initramfs', 'iso', 'squashfs']
    debian = MaintenanceIsoBuild(make_spec())
    assert keys(debian)['tools'] == keys(build)['tools']      # the same tool images for both bases


def test_the_grub_menu_carries_the_label_and_the_command_line(make_spec):
    cfg = MaintenanceIsoBuild(make_spec(label='L3M_X', kernel_cmdline_extra='console=ttyS0,115200n8')).grub_cfg()
    assert 'menuentry "l3metal maintenance OS (debian)" {' in cfg
    assert '    linux /boot/vmlinuz root=live:CDLABEL=L3M_X rd.live.image rd.live.ram=1 rd.live.overlay.overlayfs=1 console=ttyS0,115200n8\n' in cfg
    assert '    initrd /boot/initrd.img\n' in cfg
    assert '@' not in cfg


def test_check_mode_result_says_where_the_iso_would_be_and_what_would_be_built(make_spec, tmp_path):
    build = MaintenanceIsoBuild(make_spec())
    build.check_plan()
    result = build.result()
    assert result['path'] == build.iso_path and result['sha256'] is None and result['size'] is None
    assert result['rebuilt'] == list(STAGES) and result['reused'] == []
    assert result['omitted']['targets'] == ['supermicro-update.target']
    assert not (tmp_path / 'cache').exists() and not (tmp_path / 'out').exists()   # check mode writes nothing
