# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run directory: file set, modes, env variables, meta-data, stale files of an earlier run."""

from __future__ import annotations

import json
import stat

from provisioner import callback, runfiles

RECIPE = {'task_target': 'install-windows.target', 'target_disk': '/dev/sda', 'oci_url': 'r.example.com/w:1',
          'partition_layout': [{'size': '100%', 'type_guid': '0700', 'format': 'ntfs'}]}


def test_files_modes_and_env(tmp_path):
    (tmp_path / 'user-data').write_text('stale from an earlier job')
    names = runfiles.write_run_dir(str(tmp_path), RECIPE, {'unattend.xml': b'<u/>'}, {'url': 'http://c', 'job_id': '1.10', 'token': 't' * 20}, 'SN1')
    assert names == ['callback.json', 'layout.json', 'meta-data', 'recipe.env', 'recipe.json', 'unattend.xml']
    assert not (tmp_path / 'user-data').exists()
    assert {n: stat.S_IMODE((tmp_path / n).stat().st_mode) for n in names} == {
        'callback.json': 0o600, 'layout.json': 0o644, 'meta-data': 0o644, 'recipe.env': 0o644, 'recipe.json': 0o600, 'unattend.xml': 0o600}
    env = (tmp_path / 'recipe.env').read_text().splitlines()[1:]
    assert env == ['TASK_TARGET="install-windows.target"', 'TARGET_DISK="/dev/sda"', 'OCI_URL="r.example.com/w:1"', 'WIM_INDEX="1"',
                   'JOB_ID="1.10"', 'SERIAL_NUMBER="SN1"']
    assert (tmp_path / 'meta-data').read_text() == 'instance-id: "1.10"\n'  # quoted: YAML would read 1.10 as a number
    assert json.loads((tmp_path / 'callback.json').read_text())['serial'] == 'SN1'


def test_without_callback_the_instance_id_is_stable_per_recipe(tmp_path):
    runfiles.write_run_dir(str(tmp_path), RECIPE, {}, None, None, medium_meta_data=None)
    first = (tmp_path / 'meta-data').read_text()
    assert first.startswith('instance-id: "iid-')
    assert runfiles.meta_data(RECIPE, None).decode() == first
    assert runfiles.meta_data(dict(RECIPE, target_disk='/dev/sdb'), None).decode() != first
    assert not (tmp_path / 'callback.json').exists()
    runfiles.write_run_dir(str(tmp_path), RECIPE, {}, None, None, medium_meta_data=b'instance-id: custom\n')
    assert (tmp_path / 'meta-data').read_text() == 'instance-id: custom\n'


def test_firmware_sha_is_lower_case():
    assert runfiles.env_variables({'task_target': 'x-update.target', 'firmware_sha256': 'AB' * 32}, None, None)['FIRMWARE_SHA256'] == 'ab' * 32


def test_callback_settings_from_a_recipe(tmp_path):
    serial_file = tmp_path / 'product_serial'
    serial_file.write_text('To Be Filled By O.E.M.\n')
    good = {'callback': {'url': 'https://c.example.com', 'job_id': 'j', 'token': 'secret'}}
    assert callback.from_recipe(good, [str(serial_file)]) is None  # no serial anywhere: cannot address the webhook
    serial_file.write_text('XF-12345ABC\n')
    assert callback.from_recipe(good, [str(serial_file)]) == callback.Callback('https://c.example.com', 'j', 'secret', 'XF-12345ABC')
    assert callback.from_recipe({'callback': dict(good['callback'], serial='S1')}, []).serial == 'S1'
    assert callback.from_recipe({'callback': {'url': 'ftp://x', 'job_id': 'j', 'token': 't', 'serial': 'S'}}, []) is None
    assert callback.from_recipe(['not', 'a', 'dict'], []) is None
