# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What goes on the task medium, ISO 9660 names, determinism and atomic writes."""

from __future__ import annotations

import base64
import io
import json
import os
import time

import pycdlib
import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._contract.recipe import RecipeError
from ansible_collections.l3metal.provision.plugins.module_utils._contract.recipe_schema import schema_json
from ansible_collections.l3metal.provision.plugins.module_utils._task_media import (
    MediaFile,
    TaskMediaError,
    _iso_names,
    build_iso,
    build_media,
    check_file_name,
    check_volume_label,
    collect_files,
    file_sha256,
    write_atomic,
)

RECIPE = {
    'task_target': 'install-linux.target',
    'target_disk': '/dev/sda',
    'oci_url': 'registry.example.com/os/ubuntu:22.04',
    'user_data': base64.b64encode(b'#cloud-config\n').decode(),
    'partition_layout': [{'size': '100%', 'type_guid': '8300', 'format': 'ext4'}],
}


def as_dict(files):
    return {f.name: f.data for f in files}


def test_recipe_payload_moves_to_its_own_file():
    files = as_dict(collect_files(RECIPE))
    assert sorted(files) == ['recipe.json', 'recipe.schema.json', 'user-data']
    assert files['user-data'] == b'#cloud-config\n'
    assert 'user_data' not in json.loads(files['recipe.json'])
    assert files['recipe.schema.json'] == schema_json().encode()


def test_payload_in_both_places_must_agree():
    assert as_dict(collect_files(RECIPE, {'user_data': '#cloud-config\n'}))['user-data'] == b'#cloud-config\n'
    with pytest.raises(TaskMediaError, match='user_data is given both in the recipe and as an option, with different content'):
        collect_files(RECIPE, {'user_data': 'other'})


def test_options_only_medium_needs_no_recipe():
    files = as_dict(collect_files(None, {'ks_cfg': 'vmaccepteula\n'}))
    assert files == {'ks.cfg': b'vmaccepteula\n'}
    with pytest.raises(TaskMediaError, match='nothing to put on the medium'):
        collect_files(None, {'ks_cfg': None})


def test_invalid_recipe_raises_with_all_problems():
    with pytest.raises(RecipeError) as info:
        collect_files(dict(RECIPE, target_disk='sda', oci_url='x'))
    assert [p.path for p in info.value.problems] == ['oci_url', 'target_disk']


def test_validation_can_be_turned_off_for_node_side_tests():
    files = as_dict(collect_files({'task_target': 'nonsense'}, validate=False))
    assert json.loads(files['recipe.json']) == {'task_target': 'nonsense'}


@pytest.mark.parametrize('name', ['../x', '/etc/passwd/../../x', 'a/./b', '', 'a b', '-rf', 'x' * 65, 'a/b/c/d/e/f/g/h'])
def test_bad_extra_file_names(name):
    with pytest.raises(TaskMediaError):
        check_file_name(name)


@pytest.mark.parametrize('name', ['recipe.json', 'recipe.schema.json', 'user-data', 'meta-data', 'unattend.xml', 'ks.cfg', '/ks.cfg'])
def test_reserved_names(name):
    with pytest.raises(TaskMediaError, match='is reserved'):
        check_file_name(name)


def test_file_and_directory_clash():
    with pytest.raises(TaskMediaError, match="'scripts' is used both as a file and as a directory"):
        collect_files(None, extra_files={'scripts': 'x', 'scripts/a.sh': 'y'})


def test_iso9660_names_are_unique_d_characters():
    names = _iso_names(['ks.cfg', 'user-data', 'a-b.c.d', 'A_B.C_D', 'dir.x/file', 'very-long-name-that-exceeds-the-limit-of-iso9660.txt'])
    assert names['ks.cfg'] == '/KS.CFG;1'
    assert names['user-data'] == '/USER_DATA.;1'
    assert names['a-b.c.d'] != names['A_B.C_D']
    assert names['dir.x/'] == '/DIR_X'
    assert names['dir.x/file'] == '/DIR_X/FILE.;1'
    for iso_path in names.values():
        for part in iso_path.strip('/').split('/'):
            assert len(part) <= 32
            assert all(c in 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.;' for c in part)


def test_iso_is_deterministic_across_time_and_timezones(monkeypatch):
    files = collect_files(RECIPE)
    first = build_iso(files)
    monkeypatch.setenv('TZ', 'Asia/Kolkata')
    time.tzset()
    try:
        second = build_iso(files)
    finally:
        monkeypatch.delenv('TZ')
        time.tzset()
    assert first == second
    assert build_iso(files, 'OTHER') != first


def test_iso_dates_are_the_fixed_epoch_and_pycdlib_is_restored():
    image = build_iso([MediaFile('a.txt', b'a')])
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    record = iso.get_record(iso_path='/A.TXT;1')
    assert (record.date.years_since_1900, record.date.month, record.date.day_of_month, record.date.gmtoffset) == (120, 1, 1, 0)
    iso.close()
    assert pycdlib.pycdlib.time is time  # the clock shim is removed after the build


def test_volume_labels():
    assert check_volume_label('task-1', 'iso') == 'TASK-1'
    with pytest.raises(TaskMediaError):
        check_volume_label('TWELVE_CHARS', 'fat')
    with pytest.raises(TaskMediaError):
        check_volume_label('bad label', 'iso')
    with pytest.raises(TaskMediaError):
        build_media([MediaFile('a', b'')], fmt='udf')


def test_write_atomic_and_sha(tmp_path):
    path = tmp_path / 'm.iso'
    assert file_sha256(str(path)) is None
    write_atomic(str(path), b'one', mode=0o600)
    assert path.read_bytes() == b'one'
    assert os.stat(path).st_mode & 0o777 == 0o600
    write_atomic(str(path), b'two')
    assert path.read_bytes() == b'two'
    assert [p.name for p in tmp_path.iterdir()] == ['m.iso']
    with pytest.raises(TaskMediaError, match='does not exist'):
        write_atomic(str(tmp_path / 'missing' / 'x.iso'), b'')
