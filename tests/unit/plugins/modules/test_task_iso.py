# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import json

from ansible_collections.l3metal.provision.plugins.modules import task_iso

KS = 'vmaccepteula\n'


def test_build_then_idempotent_then_check_mode_change(run_module, tmp_path):
    dest = tmp_path / 'ks.iso'
    first = run_module(task_iso, {'dest': str(dest), 'ks_cfg': KS})
    assert first.result['changed'] is True
    assert first.result['sha256'] == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert first.result['files'] == ['ks.cfg']
    second = run_module(task_iso, {'dest': str(dest), 'ks_cfg': KS})
    assert second.result['changed'] is False
    check = run_module(task_iso, {'dest': str(dest), 'ks_cfg': KS + 'reboot\n'}, check_mode=True, diff=True)
    assert check.result['changed'] is True
    assert check.result['diff']['before'] == {'sha256': first.result['sha256']}
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == first.result['sha256']


def test_mode_change_alone_is_a_change(run_module, tmp_path):
    dest = tmp_path / 'ks.iso'
    run_module(task_iso, {'dest': str(dest), 'ks_cfg': KS})
    outcome = run_module(task_iso, {'dest': str(dest), 'ks_cfg': KS, 'mode': '0600'})
    assert outcome.result['changed'] is True
    assert dest.stat().st_mode & 0o777 == 0o600


def test_dest_directory_is_refused(run_module, tmp_path):
    outcome = run_module(task_iso, {'dest': str(tmp_path), 'ks_cfg': KS})
    assert outcome.failed
    assert 'is a directory' in outcome.result['msg']


def test_non_string_file_content_is_refused(run_module, tmp_path):
    outcome = run_module(task_iso, {'dest': str(tmp_path / 'x.iso'), 'files': {'a.txt': {'nested': 1}}})
    assert outcome.failed
    assert outcome.result['msg'] == "files: the content of 'a.txt' must be a string, got dict"


def test_invalid_recipe_lists_errors(run_module, tmp_path):
    outcome = run_module(task_iso, {'dest': str(tmp_path / 'x.iso'), 'recipe': {'task_target': 'install-linux.target'}})
    assert outcome.failed
    assert [e['path'] for e in outcome.result['errors']] == ['oci_url', 'partition_layout', 'target_disk']
    assert not (tmp_path / 'x.iso').exists()


def test_callback_token_stays_out_of_the_result(run_module, tmp_path):
    """The invocation (printed with -vvv) holds the recipe: its token is masked on success and on failure."""
    token = 'a-secret-token-123456789'
    recipe = {'task_target': 'supermicro-update.target', 'firmware_url': 'https://fw.example.com/bmc.bin',
              'callback': {'url': 'https://receiver.example.com', 'job_id': 'job-1', 'token': token}}
    built = run_module(task_iso, {'dest': str(tmp_path / 'x.iso'), 'recipe': recipe})
    assert not built.failed and token not in json.dumps(built.result)
    assert token.encode() in (tmp_path / 'x.iso').read_bytes()  # the medium has it (recipe.json)
    refused = run_module(task_iso, {'dest': str(tmp_path / 'y.iso'), 'recipe': dict(recipe, firmware_url='ftp://x')})
    assert refused.failed and refused.result['errors'] and token not in json.dumps(refused.result)
