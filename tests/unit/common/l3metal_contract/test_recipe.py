# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every recipe rule: what passes, what fails, and the exact path and message a user sees."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from l3metal_contract.recipe import (
    RecipeError,
    check_recipe,
    decode_payload,
    load_recipe,
    load_recipe_file,
    normalize_recipe,
    recipe_json,
    recipe_secrets,
    validate_recipe,
)

LINUX = {
    'task_target': 'install-linux.target',
    'target_disk': '/dev/sda',
    'oci_url': 'my-registry.com/os-images/ubuntu-rootfs:22.04',
    'user_data': 'IyEvYmluL2Jhc2gKaG9zdG5hbWUgLXAgc2VydmVyMDEK',
    'partition_layout': [
        {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'},
        {'size': '100%', 'type_guid': '8300', 'format': 'ext4'},
    ],
}
WINDOWS = {
    'task_target': 'install-windows.target',
    'target_disk': '/dev/nvme0n1',
    'oci_url': 'registry.local:5000/os-images/windows-wim@sha256:' + 'ab' * 32,
    'unattend_xml': base64.b64encode(b'<unattend/>').decode(),
    'wim_index': 2,
    'partition_layout': [
        {'size': '260M', 'type_guid': 'ef00', 'format': 'vfat'},
        {'size': '16M', 'type_guid': '0c01'},
        {'size': '100%', 'type_guid': '0700', 'format': 'ntfs', 'label': 'Windows'},
    ],
}
FIRMWARE = {'task_target': 'supermicro-update.target', 'firmware_url': 'https://fw.example.com/bmc.bin', 'firmware_sha256': 'a' * 64}


def problems(recipe, attached=()):
    return [(p.path, p.message) for p in check_recipe(recipe, attached)]


def paths(recipe, attached=()):
    return [p for p, _m in problems(recipe, attached)]


def with_(base, **changes):
    recipe = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            recipe.pop(key, None)
        else:
            recipe[key] = value
    return recipe


@pytest.mark.parametrize('recipe', [LINUX, WINDOWS, FIRMWARE, {'task_target': 'firmware-update.target', 'firmware_url': 'http://10.0.0.1/fw.rom'}])
def test_valid_recipes_pass(recipe):
    assert problems(recipe) == []


def test_design_document_example_passes():
    # design doc 002, developer guide step 3 (the cidata partition comes after 100%: we reject that, see below)
    recipe = {'$schema': './recipe.schema.json', 'task_target': 'install-linux.target', 'target_disk': '/dev/sda',
              'oci_url': 'my-registry.com/os-images/ubuntu-rootfs:22.04',
              'partition_layout': [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'},
                                   {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
                                   {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}]}
    assert problems(recipe) == []


def test_task_target_is_required_and_pattern_checked():
    assert problems({}) == [('task_target', 'is required')]
    assert paths({'task_target': 'install-linux.service'}) == ['task_target']
    assert 'a systemd target name' in problems({'task_target': 'Install Linux'})[0][1]
    assert problems({'task_target': 5})[0] == ('task_target', 'expected a string, got integer (a systemd target name such as '
                                                              'install-linux.target, install-windows.target or supermicro-update.target)')


@pytest.mark.parametrize('missing', ['target_disk', 'oci_url', 'partition_layout'])
def test_linux_needs_disk_image_and_layout(missing):
    assert problems(with_(LINUX, **{missing: None})) == [(missing, 'is required (install-linux.target needs target_disk, oci_url and partition_layout)')]


def test_windows_needs_unattend_which_may_be_attached_separately():
    recipe = with_(WINDOWS, unattend_xml=None)
    assert paths(recipe) == ['unattend_xml']
    assert 'install-windows.target' in problems(recipe)[0][1]
    assert problems(recipe, attached=['unattend_xml']) == []


def test_windows_needs_disk_image_layout_and_ntfs():
    assert paths(with_(WINDOWS, oci_url=None, target_disk=None)) == ['oci_url', 'target_disk']
    no_ntfs = with_(WINDOWS, partition_layout=[{'size': '100%', 'type_guid': '0700', 'format': 'vfat'}])
    assert problems(no_ntfs) == [('partition_layout', 'install-windows.target needs a partition with format: ntfs for Windows')]


def test_firmware_targets_need_firmware_url():
    assert problems({'task_target': 'dell-update.target'}) == [('firmware_url', 'is required (firmware targets (*-update.target) need firmware_url)')]
    assert paths(with_(FIRMWARE, firmware_url='ftp://x/y')) == ['firmware_url']
    assert paths(with_(FIRMWARE, firmware_sha256='xyz')) == ['firmware_sha256']


def test_linux_needs_a_root_filesystem():
    layout = [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': '100%', 'type_guid': '8200', 'format': 'swap'}]
    assert paths(with_(LINUX, partition_layout=layout)) == ['partition_layout']


@pytest.mark.parametrize('size', ['512M', '20G', '1T', '100%', '4096K', '512m', '999999999999G'])
def test_sizes_accepted(size):
    layout = [{'size': size, 'type_guid': '8300', 'format': 'ext4'}]
    assert problems(with_(LINUX, partition_layout=layout)) == []


@pytest.mark.parametrize('size', ['10X', '0M', '-5G', '50%', '100', '1.5G', '', ' 512M', '0100M', 512])
def test_sizes_rejected_with_a_hint(size):
    layout = [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': size, 'type_guid': '8300', 'format': 'ext4'}]
    found = problems(with_(LINUX, partition_layout=layout))
    assert [path for path, _m in found] == ['partition_layout[1].size']
    assert found[0][1].endswith('(use 512M, 20G or 100%)')


def test_size_message_matches_the_documented_example():
    layout = [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': '10X', 'type_guid': '8300', 'format': 'ext4'}]
    assert problems(with_(LINUX, partition_layout=layout)) == [
        ('partition_layout[1].size', "'10X' does not match the expected format (use 512M, 20G or 100%)")]


def test_only_one_hundred_percent_partition_and_only_last():
    layout = [{'size': '100%', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': '1G', 'type_guid': '8300', 'format': 'ext4'},
              {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}]
    found = problems(with_(LINUX, partition_layout=layout))
    assert found == [
        ('partition_layout[0].size', '100% (the rest of the disk) is only allowed on the last partition; give this one a fixed size or move it last'),
        ('partition_layout[2].size', 'only one partition can use 100% (the rest of the disk); partition 0 already does'),
    ]


@pytest.mark.parametrize('code', ['ef00', 'EF00', '8300', 'ef02', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b'])
def test_type_codes_accepted(code):
    assert problems(with_(LINUX, partition_layout=[{'size': '1G', 'type_guid': code, 'format': 'ext4'}])) == []


@pytest.mark.parametrize('code', ['zz', 'ef0', 'ef000', 'C12A7328F81F11D2BA4B00A0C93EC93B', 'linux'])
def test_type_codes_rejected(code):
    assert paths(with_(LINUX, partition_layout=[{'size': '1G', 'type_guid': code, 'format': 'ext4'}])) == ['partition_layout[0].type_guid']


def test_format_is_from_a_fixed_list():
    found = problems(with_(LINUX, partition_layout=[{'size': '1G', 'type_guid': '8300', 'format': 'zfs'}]))
    assert ('partition_layout[0].format', "'zfs' is not one of: vfat, ext4, ext3, xfs, btrfs, ntfs, swap") in found


def test_label_length_depends_on_the_filesystem():
    layout = [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'TWELVE_CHARS'},
              {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'sixteen-chars-ok'}]
    assert problems(with_(LINUX, partition_layout=layout)) == [
        ('partition_layout[0].label', "'TWELVE_CHARS' is too long for vfat (at most 11 characters)")]
    assert paths(with_(LINUX, partition_layout=[{'size': '1G', 'type_guid': '8300', 'format': 'ext4', 'label': 'bad label'}])) == [
        'partition_layout[0].label']


def test_mountpoints_need_a_filesystem_and_are_unique():
    layout = [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat', 'mountpoint': '/boot/efi'},
              {'size': '1G', 'type_guid': '8300', 'mountpoint': '/data'},
              {'size': '1G', 'type_guid': '8200', 'format': 'swap', 'mountpoint': '/swap'},
              {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'mountpoint': '/boot/efi'}]
    found = problems(with_(LINUX, partition_layout=layout))
    assert found == [
        ('partition_layout[1].mountpoint', 'needs a filesystem to mount: set format (e.g. ext4 or vfat)'),
        ('partition_layout[2].mountpoint', 'needs a filesystem to mount: set format (e.g. ext4 or vfat)'),
        ('partition_layout[3].mountpoint', "'/boot/efi' is already the mount point of partition 0"),
    ]
    assert paths(with_(LINUX, partition_layout=[{'size': '1G', 'type_guid': '8300', 'format': 'ext4', 'mountpoint': 'relative'}])) == [
        'partition_layout[0].mountpoint']


def test_layout_shape():
    assert problems(with_(LINUX, partition_layout=[])) == [('partition_layout', 'needs at least 1 item')]
    assert paths(with_(LINUX, partition_layout=[{'size': '1G'}])) == ['partition_layout', 'partition_layout[0].type_guid']
    assert paths(with_(LINUX, partition_layout=[{'size': '1G', 'type_guid': '8300', 'format': 'ext4', 'fs': 'x'}])) == ['partition_layout[0].fs']
    assert problems(with_(LINUX, partition_layout={'size': '1G'})) == [('partition_layout', 'expected an array, got object')]


@pytest.mark.parametrize('disk, ok', [('/dev/sda', True), ('/dev/nvme0n1', True), ('/dev/disk/by-id/wwn-0x5000c500a1b2c3d4', True),
                                      ('/dev/disk/by-path/pci-0000:00:1f.2-ata-1', True), ('sda', False), ('/dev/../etc/passwd', False),
                                      ('/dev/sda; rm -rf /', False), ('/dev/', False),
                                      ('/dev/disk/../../etc', False), ('/dev/./sda', False), ('/dev/.hidden', True)])
def test_target_disk(disk, ok):
    assert (problems(with_(LINUX, target_disk=disk)) == []) is ok


@pytest.mark.parametrize('ref, ok', [
    ('my-registry.com/os-images/ubuntu-rootfs:22.04', True),
    ('localhost:5000/os/rootfs:v1', True),
    ('10.0.0.5:8080/os-images/ubuntu-rootfs:22.04', True),
    ('registry.example.com/os@sha256:' + 'a' * 64, True),
    ('registry.example.com/os:tag@sha256:' + 'a' * 64, True),
    ('registry.example.com/os', False),  # no tag or digest: no implicit latest
    ('ubuntu:22.04', False),  # no registry host
    ('registry.example.com/OS:1', False),  # repository names are lower case
    ('registry.example.com/os@sha256:abc', False),
    ('https://registry.example.com/os:1', False),
])
def test_oci_url(ref, ok):
    assert (problems(with_(LINUX, oci_url=ref)) == []) is ok


def test_payloads_must_be_base64():
    assert problems(with_(LINUX, user_data='not base64!')) == [
        ('user_data', "'not base64!' does not match the expected format (base64-encode the file content, e.g. with the b64encode filter)")]
    assert problems(with_(LINUX, user_data='abc')) == [('user_data', 'is not valid base64 (base64-encode the file content, e.g. with the b64encode filter)')]
    assert problems(with_(LINUX, user_data='')) == [('user_data', 'must not be empty')]
    wrapped = base64.encodebytes(b'x' * 200).decode()  # line-wrapped base64 is fine
    assert problems(with_(LINUX, user_data=wrapped)) == []
    assert decode_payload(with_(LINUX, user_data=wrapped), 'user_data') == b'x' * 200


def test_callback():
    callback = {'url': 'https://controller.example.com:8443', 'job_id': 'a1b2-c3', 'token': 't' * 32, 'serial': 'XF-12345ABC'}
    assert problems(with_(LINUX, callback=callback)) == []
    found = problems(with_(LINUX, callback={'url': 'ftp://x', 'job_id': 'a b', 'token': 'tiny-secret', 'extra': 1}))
    assert [path for path, _m in found] == ['callback.extra', 'callback.job_id', 'callback.token', 'callback.url']
    assert ('callback.token', 'is too short (at least 16 characters)') in found
    assert not any('tiny-secret' in message for _p, message in found)  # secrets are never echoed
    assert paths(with_(LINUX, callback={'url': 'http://x'})) == ['callback.job_id', 'callback.token']


def test_unknown_fields_get_a_suggestion():
    found = problems(with_(LINUX, oci_ulr='x'))
    assert found == [('oci_ulr', "unknown field (did you mean 'oci_url'?)")]
    assert problems(with_(LINUX, zzz=1))[0][1].startswith('unknown field (allowed: $schema, callback, ')


def test_wim_index_bounds():
    assert problems(with_(WINDOWS, wim_index=0)) == [('wim_index', '0 is less than the minimum of 1')]
    assert paths(with_(WINDOWS, wim_index='1')) == ['wim_index']
    assert paths(with_(WINDOWS, wim_index=True)) == ['wim_index']


def test_all_problems_are_reported_at_once_in_path_order():
    recipe = {'task_target': 'install-linux.target', 'oci_ulr': 'x',
              'partition_layout': [{'size': '1G', 'type_guid': '8300', 'format': 'ext4'}] * 2 + [{'size': '10X', 'type_guid': 'zz'}] * 9}
    found = paths(recipe)
    assert found[:3] == ['oci_ulr', 'oci_url', 'partition_layout[2].size']
    assert found.index('partition_layout[10].size') > found.index('partition_layout[9].type_guid')
    with pytest.raises(RecipeError) as info:
        validate_recipe(recipe)
    assert len(info.value.problems) == len(found)
    assert str(info.value).startswith('recipe is invalid (%d problems): oci_ulr: unknown field' % len(found))


def test_normalization_is_canonical():
    messy = {'partition_layout': [{'format': 'vfat', 'type_guid': 'EF00', 'size': '512m'},
                                  {'type_guid': 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 'size': '100%', 'format': 'ext4'}],
             'user_data': 'IyEvYmluL2Jhc2gK\naG9zdG5hbWUgLXAgc2VydmVyMDEK\n', 'oci_url': LINUX['oci_url'], 'target_disk': '/dev/sda',
             'task_target': 'install-linux.target'}
    normalized = validate_recipe(messy)
    assert list(normalized) == ['task_target', 'target_disk', 'oci_url', 'partition_layout', 'user_data']
    assert normalized['partition_layout'] == [{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'},
                                              {'size': '100%', 'type_guid': 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 'format': 'ext4'}]
    assert normalized['user_data'] == LINUX['user_data']
    assert normalize_recipe(normalized) == normalized
    assert recipe_json(validate_recipe(json.dumps(messy))) == recipe_json(normalized)


def test_input_forms():
    assert validate_recipe(json.dumps(LINUX)) == validate_recipe(LINUX)
    yaml_text = 'task_target: supermicro-update.target\nfirmware_url: https://fw.example.com/x.bin\n'
    assert validate_recipe(yaml_text) == {'task_target': 'supermicro-update.target', 'firmware_url': 'https://fw.example.com/x.bin'}
    assert validate_recipe(yaml_text.encode()) == validate_recipe(yaml_text)
    assert validate_recipe(b'\xef\xbb\xbf' + json.dumps(FIRMWARE).encode()) == FIRMWARE  # a UTF-8 BOM is tolerated


@pytest.mark.parametrize('text, message', [
    ('', 'recipe: is empty'),
    ('   \n', 'recipe: is empty'),
    ('{', 'recipe: is not valid JSON at line 1 column 2: Expecting property name enclosed in double quotes'),
    ('{"task_target": NaN}', 'recipe: is not valid JSON: NaN is not valid JSON'),
    ('a: [', 'recipe: is neither valid JSON nor valid YAML at line 1 column 5'),
    ('[1, 2]', 'recipe: must be a JSON object (a mapping of fields), got array'),
    ('"x"', 'recipe: must be a JSON object (a mapping of fields), got string'),
    ('42', 'recipe: must be a JSON object (a mapping of fields), got integer'),
    ('task_target: x.target\nwhen: 2020-01-01', 'when: a date is not valid in a recipe (use a quoted string)'),
    ('1: x', "recipe: key 1 is not a string (quote it)"),
    (b'\xff\xfe', 'recipe: is not UTF-8 text (byte 0)'),
    ('[' * 100000, 'recipe: '),
])
def test_unparsable_input_gives_one_clear_problem(text, message):
    with pytest.raises(RecipeError) as info:
        validate_recipe(text)
    assert len(info.value.problems) == 1
    assert str(info.value.problems[0]).startswith(message)


def test_non_json_python_values_are_rejected():
    with pytest.raises(RecipeError) as info:
        load_recipe({'task_target': 'x.target', 'n': float('inf')})
    assert str(info.value.problems[0]) == 'n: inf is not a valid JSON number'
    with pytest.raises(RecipeError) as info:
        load_recipe({'a': {'b': [object()]}})
    assert info.value.problems[0].path == 'a.b[0]'


def test_recipe_file(tmp_path):
    path = tmp_path / 'r.json'
    path.write_text(json.dumps(LINUX))
    assert load_recipe_file(str(path)) == LINUX
    with pytest.raises(RecipeError) as info:
        load_recipe_file(str(tmp_path / 'missing.json'))
    assert info.value.problems[0].path == 'path'
    assert 'No such file or directory' in info.value.problems[0].message


def test_odd_keys_are_quoted_in_paths():
    assert paths(with_(LINUX, **{'bad key': 1})) == ['["bad key"]']


@pytest.mark.parametrize('source, expected', [
    (dict(LINUX, callback={'url': 'https://r', 'job_id': 'j', 'token': 'tok-123'}), ['tok-123']),
    (json.dumps(dict(LINUX, target_disk='sda', callback={'token': 'tok-456'})), ['tok-456']),  # an invalid recipe still has it
    (LINUX, []),
    (dict(LINUX, callback='not a mapping'), []),
    (dict(LINUX, callback={'token': ''}), []),
    ('{not json', []),
    (None, []),
    (['a', 'list'], []),
])
def test_recipe_secrets(source, expected):
    assert recipe_secrets(source) == expected
