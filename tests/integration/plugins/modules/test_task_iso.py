# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""task_iso through ansible-playbook; media read back with pycdlib and with xorriso, isoinfo and mtools."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from l3metal_lab.media import fat_files, fat_label, isoinfo_names, isoinfo_read, isoinfo_volume_id, pycdlib_tree, xorriso_extract
from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.playbook import localhost_play

USER_DATA = '#cloud-config\nhostname: node01\nruncmd:\n  - echo "quotes \' and $dollars"\n'
UNATTEND = '<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n'
KS = 'vmaccepteula\ninstall --firstdisk --overwritevmfs\nrootpw VMware1!\nreboot\n'

LINUX_RECIPE = {
    'task_target': 'install-linux.target',
    'target_disk': '/dev/sda',
    'oci_url': 'registry.example.com:5000/os-images/ubuntu-rootfs:22.04',
    'user_data': base64.b64encode(USER_DATA.encode()).decode(),
    'partition_layout': [
        {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'ESP', 'mountpoint': '/boot/efi'},
        {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root', 'mountpoint': '/'},
    ],
    'callback': {'url': 'http://127.0.0.1:8080', 'job_id': 'job-1', 'token': 'secret-token-0123456789'},
}


def schema_text() -> str:
    return (COLLECTION_ROOT / 'docs' / 'recipe.schema.json').read_text()


def build(ansible_playbook, dest: Path, check: bool = False, diff: bool = False, **options):
    play = localhost_play([{'name': 'build', 'l3metal.provision.task_iso': dict({'dest': str(dest)}, **options)}])
    return ansible_playbook(play, check=check, diff=diff)


def expected_linux_files(meta: str) -> dict[str, bytes]:
    recipe = {key: value for key, value in LINUX_RECIPE.items() if key != 'user_data'}
    return {
        'recipe.json': (json.dumps(recipe, indent=2) + '\n').encode(),
        'recipe.schema.json': schema_text().encode(),
        'user-data': USER_DATA.encode(),
        'meta-data': meta.encode(),
        'scripts/post-install.sh': b'#!/bin/sh\necho done\n',
    }


def test_iso_has_every_file_in_all_three_trees(ansible_playbook, tmp_path):
    dest = tmp_path / 'task.iso'
    meta = 'instance-id: job-1\n'
    run = build(ansible_playbook, dest, recipe=LINUX_RECIPE, meta_data=meta, files={'scripts/post-install.sh': '#!/bin/sh\necho done\n'})
    run.assert_ok()
    result = run.task('build').result
    assert result['changed'] is True
    assert result['size'] == dest.stat().st_size
    assert result['files'] == ['meta-data', 'recipe.json', 'recipe.schema.json', 'scripts/post-install.sh', 'user-data']
    # the callback token is masked in Ansible's output, never printed
    assert 'secret-token-0123456789' not in run.stdout

    expected = expected_linux_files(meta)
    assert pycdlib_tree(dest, 'rr') == expected
    assert pycdlib_tree(dest, 'joliet') == expected
    assert xorriso_extract(dest, tmp_path / 'xorriso') == expected
    assert isoinfo_names(dest, '-R') == isoinfo_names(dest, '-J') == sorted(list(expected) + ['scripts'])
    # plain ISO 9660 names: upper case, d-characters only, version ;1
    plain = pycdlib_tree(dest, 'iso9660')
    assert sorted(plain) == ['META_DATA.;1', 'RECIPE.JSON;1', 'RECIPE_SCHEMA.JSON;1', 'SCRIPTS/POST_INSTALL.SH;1', 'USER_DATA.;1']
    assert plain['USER_DATA.;1'] == USER_DATA.encode()
    assert isoinfo_read(dest, '/RECIPE.JSON;1') == expected['recipe.json']
    assert isoinfo_volume_id(dest) == 'L3M_TASK'
    # the payload is on the medium once: as its own file, not also inside recipe.json
    assert 'user_data' not in json.loads(expected['recipe.json'])


def test_rerun_is_unchanged_and_check_mode_writes_nothing(ansible_playbook, tmp_path):
    dest = tmp_path / 'task.iso'
    check = build(ansible_playbook, dest, check=True, recipe=LINUX_RECIPE).assert_ok()
    assert check.task('build').changed
    assert not dest.exists()

    first = build(ansible_playbook, dest, recipe=LINUX_RECIPE).assert_ok()
    assert first.task('build').changed
    inode, mtime = dest.stat().st_ino, dest.stat().st_mtime_ns

    second = build(ansible_playbook, dest, recipe=LINUX_RECIPE).assert_ok()
    assert not second.task('build').changed
    assert second.task('build').result['sha256'] == first.task('build').result['sha256']
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == (inode, mtime)

    again_check = build(ansible_playbook, dest, check=True, recipe=LINUX_RECIPE).assert_ok()
    assert not again_check.task('build').changed

    other = dict(LINUX_RECIPE, target_disk='/dev/nvme0n1')
    changed_check = build(ansible_playbook, dest, check=True, diff=True, recipe=other).assert_ok()
    assert changed_check.task('build').changed
    assert changed_check.task('build').result['diff']['before']['sha256'] == first.task('build').result['sha256']
    assert dest.stat().st_ino == inode
    assert '---' in changed_check.stdout or 'sha256' in changed_check.stdout

    replaced = build(ansible_playbook, dest, recipe=other, mode='0640').assert_ok()
    assert replaced.task('build').changed
    assert dest.stat().st_mode & 0o777 == 0o640
    assert json.loads(pycdlib_tree(dest, 'rr')['recipe.json'])['target_disk'] == '/dev/nvme0n1'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('.task.iso')) == []  # no temp file left behind


def test_esxi_medium_has_uppercase_ks_cfg_without_recipe(ansible_playbook, tmp_path):
    dest = tmp_path / 'ks.iso'
    run = build(ansible_playbook, dest, ks_cfg=KS, volume_label='esxi_ks').assert_ok()
    assert run.task('build').result['files'] == ['ks.cfg']
    assert run.task('build').result['volume_label'] == 'ESXI_KS'
    assert isoinfo_names(dest) == ['KS.CFG;1']
    assert isoinfo_read(dest, '/KS.CFG;1') == KS.encode()
    assert pycdlib_tree(dest, 'rr') == {'ks.cfg': KS.encode()}
    assert isoinfo_volume_id(dest) == 'ESXI_KS'


def test_windows_payload_given_as_option_satisfies_the_recipe(ansible_playbook, tmp_path):
    dest = tmp_path / 'win.iso'
    recipe = {
        'task_target': 'install-windows.target',
        'target_disk': '/dev/sda',
        'oci_url': 'registry.example.com/os-images/windows-wim:2022',
        'partition_layout': [
            {'size': '260M', 'type_guid': 'ef00', 'format': 'vfat'},
            {'size': '16M', 'type_guid': '0c01'},
            {'size': '100%', 'type_guid': '0700', 'format': 'ntfs'},
        ],
    }
    run = build(ansible_playbook, dest, recipe=recipe, unattend_xml=UNATTEND).assert_ok()
    assert pycdlib_tree(dest, 'rr')['unattend.xml'] == UNATTEND.encode()

    missing = build(ansible_playbook, tmp_path / 'missing.iso', recipe=recipe)
    assert missing.rc != 0
    failed = missing.task('build')
    assert failed.failed
    assert {'path': 'unattend_xml', 'message': failed.result['errors'][0]['message']} == failed.result['errors'][0]
    assert not (tmp_path / 'missing.iso').exists()
    assert run.rc == 0


def test_fat_image_holds_the_same_files(ansible_playbook, tmp_path):
    dest = tmp_path / 'task.img'
    meta = 'instance-id: job-1\n'
    run = build(ansible_playbook, dest, recipe=LINUX_RECIPE, meta_data=meta, format='fat',
                files={'scripts/post-install.sh': '#!/bin/sh\necho done\n'}).assert_ok()
    assert run.task('build').result['format'] == 'fat'
    assert fat_files(dest, tmp_path / 'fat') == expected_linux_files(meta)
    assert fat_label(dest) == 'L3M_TASK'
    fsck = subprocess.run(['fsck.fat', '-n', str(dest)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout
    again = build(ansible_playbook, dest, recipe=LINUX_RECIPE, meta_data=meta, format='fat',
                  files={'scripts/post-install.sh': '#!/bin/sh\necho done\n'}).assert_ok()
    assert not again.task('build').changed


@pytest.mark.parametrize('options, message', [
    ({'recipe': dict(LINUX_RECIPE, partition_layout=[{'size': '10X', 'type_guid': '8300', 'format': 'ext4'}])},
     "partition_layout[0].size: '10X' does not match the expected format (use 512M, 20G or 100%)"),
    ({'ks_cfg': KS, 'files': {'ks.cfg': 'x'}}, "'ks.cfg' is reserved"),
    ({'ks_cfg': KS, 'files': {'../evil': 'x'}}, "'../evil' is not a valid file name"),
    ({'recipe': LINUX_RECIPE, 'user_data': 'different'}, 'user_data is given both in the recipe and as an option'),
    ({}, 'nothing to put on the medium'),
    ({'ks_cfg': KS, 'format': 'fat', 'volume_label': 'MUCH_TOO_LONG_FOR_FAT'}, "volume_label: 'MUCH_TOO_LONG_FOR_FAT' is not valid for format fat"),
])
def test_bad_input_fails_clearly_and_keeps_the_old_medium(ansible_playbook, tmp_path, options, message):
    dest = tmp_path / 'task.iso'
    dest.write_bytes(b'previous medium')
    run = build(ansible_playbook, dest, **options)
    assert run.rc != 0
    assert message in run.task('build').result['msg']
    assert 'Traceback' not in run.stdout + run.stderr
    assert dest.read_bytes() == b'previous medium'


def test_recipe_validate_lists_every_error_and_normalizes(ansible_playbook, tmp_path):
    recipe_file = tmp_path / 'recipe.yml'
    recipe_file.write_text('task_target: install-linux.target\ntarget_disk: /dev/sda\n'
                           'oci_url: registry.example.com/os/ubuntu:22.04\n'
                           'partition_layout:\n  - {size: 512m, type_guid: EF00, format: vfat}\n  - {size: 100%, type_guid: "8300", format: ext4}\n')
    bad = {'task_target': 'install-linux.target', 'oci_ulr': 'x',
           'partition_layout': [{'size': '100%', 'type_guid': '8300', 'format': 'ext4'}, {'size': '10X', 'type_guid': 'zz'}]}
    play = localhost_play([
        {'name': 'file', 'l3metal.provision.recipe_validate': {'path': str(recipe_file)}},
        {'name': 'string', 'l3metal.provision.recipe_validate': {'recipe': json.dumps(LINUX_RECIPE)}},
        {'name': 'report', 'l3metal.provision.recipe_validate': {'recipe': bad, 'fail_on_error': False}},
        {'name': 'fail', 'l3metal.provision.recipe_validate': {'recipe': bad}, 'ignore_errors': True},
        {'name': 'missing file', 'l3metal.provision.recipe_validate': {'path': str(tmp_path / 'nope.json')}, 'ignore_errors': True},
    ])
    run = ansible_playbook(play, check=True).assert_ok()
    assert run.task('file').result['recipe']['partition_layout'][0] == {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'}
    assert run.task('string').result['valid'] is True
    assert run.task('string').result['recipe']['callback']['token'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    report = run.task('report').result
    assert report['valid'] is False and not run.task('report').failed
    paths = [error['path'] for error in report['errors']]
    assert paths == ['oci_ulr', 'oci_url', 'partition_layout[0].size', 'partition_layout[1].size', 'partition_layout[1].type_guid', 'target_disk']
    assert "did you mean 'oci_url'?" in report['errors'][0]['message']
    failed = run.task('fail')
    assert failed.status == 'ignored'
    assert failed.result['msg'].startswith('recipe is invalid (6 problems): oci_ulr: unknown field')
    assert run.task('missing file').result['errors'][0]['path'] == 'path'
