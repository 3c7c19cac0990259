# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance_iso module in check mode and with bad options (the build itself is proven by tests/e2e/maintenance_iso)."""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.l3metal.provision.plugins.modules import maintenance_iso

# tests/unit/plugins/modules/test_maintenance_iso.py -> the collection, which holds maintenance_os/ and common/
COLLECTION_ROOT = Path(__file__).resolve().parents[4]


def args(tmp_path, **extra):
    return dict({'src': str(COLLECTION_ROOT), 'dest': str(tmp_path / 'out'), 'cache_dir': str(tmp_path / 'cache'),
                 'mirror': 'http://deb.example.org/debian'}, **extra)


def test_check_mode_reports_every_stage_to_build_and_writes_nothing(run_module, tmp_path):
    outcome = run_module(maintenance_iso, args(tmp_path), check_mode=True)
    result = outcome.result
    assert not outcome.failed and result['changed'] is True
    assert result['rebuilt'] == ['base', 'toolbase', 'tools', 'image', 'initramfs', 'squashfs', 'iso']
    assert {stage['status'] for stage in result['stages'].values()} == {'build'}
    assert result['path'] == str(tmp_path / 'out' / ('l3metal-maintenance-%s.iso' % result['inputs_digest'][:16]))
    assert result['sha256'] is None and result['log_dir'] is None
    assert result['omitted']['steps'] == ['supermicro-flash.container']
    assert 'supermicro-flasher: not in the ISO' in repr(result['warnings'])
    assert not (tmp_path / 'out').exists() and not (tmp_path / 'cache').exists()


def test_check_mode_finds_an_existing_iso_and_reports_no_change(run_module, tmp_path):
    planned = run_module(maintenance_iso, args(tmp_path), check_mode=True).result
    os.makedirs(tmp_path / 'out')
    Path(planned['path']).write_bytes(b'an ISO of these inputs')
    Path(planned['sha256_file']).write_text('%s  %s\n' % ('a' * 64, os.path.basename(planned['path'])))
    outcome = run_module(maintenance_iso, args(tmp_path), check_mode=True)
    assert outcome.result['changed'] is False
    assert outcome.result['reused'] == ['iso'] and outcome.result['sha256'] == 'a' * 64 and outcome.result['size'] == 22


def test_bad_options_fail_naming_the_option(run_module, tmp_path):
    outcome = run_module(maintenance_iso, args(tmp_path, label='bad label'), check_mode=True)
    assert outcome.failed and outcome.result['option'] == 'label'
    assert outcome.result['msg'].startswith('label: ')
    outcome = run_module(maintenance_iso, args(tmp_path, base='bootc'))
    assert outcome.failed and 'bootc_image' in outcome.result['msg']


def test_without_src_the_module_says_where_the_default_comes_from(run_module, tmp_path):
    outcome = run_module(maintenance_iso, {'dest': str(tmp_path / 'out')})
    assert outcome.failed
    assert outcome.result['msg'].startswith('src: give the directory holding maintenance_os/ and common/')


def test_the_site_node_key_is_not_logged(run_module, tmp_path):
    outcome = run_module(maintenance_iso, args(tmp_path, site={'node_key': 'secret-node-key-value', 'registry_insecure': True}), check_mode=True)
    assert 'secret-node-key-value' not in repr(outcome.result)
