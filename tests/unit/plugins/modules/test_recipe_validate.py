# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json

from ansible_collections.l3metal.provision.plugins.modules import recipe_validate

FIRMWARE = {'task_target': 'supermicro-update.target', 'firmware_url': 'https://fw.example.com/bmc.bin'}


def test_valid_recipe_returns_normalized(run_module):
    outcome = run_module(recipe_validate, {'recipe': json.dumps(FIRMWARE)})
    assert not outcome.failed
    assert outcome.result == dict(outcome.result, changed=False, valid=True, recipe=FIRMWARE, errors=[])


def test_invalid_recipe_fails_with_every_error(run_module):
    outcome = run_module(recipe_validate, {'recipe': {'task_target': 'supermicro-update.target', 'x': 1}})
    assert outcome.failed
    assert outcome.result['errors'] == [
        {'path': 'firmware_url', 'message': 'is required (firmware targets (*-update.target) need firmware_url)'},
        {'path': 'x', 'message': 'unknown field (allowed: $schema, callback, firmware_sha256, firmware_url, ks_cfg, oci_url, '
                                 'partition_layout, target_disk, task_target, unattend_xml, user_data, wim_index)'},
    ]
    assert outcome.result['msg'].startswith('recipe is invalid (2 problems): firmware_url: is required')


def test_report_mode_does_not_fail(run_module):
    outcome = run_module(recipe_validate, {'recipe': '{', 'fail_on_error': False}, check_mode=True)
    assert not outcome.failed
    assert outcome.result['valid'] is False
    assert outcome.result['errors'][0]['path'] == 'recipe'


def test_callback_token_is_masked(run_module):
    recipe = dict(FIRMWARE, callback={'url': 'http://127.0.0.1:1', 'job_id': 'j', 'token': 'a-secret-token-123456'})
    outcome = run_module(recipe_validate, {'recipe': recipe})
    assert 'a-secret-token-123456' not in json.dumps(outcome.result)


def test_callback_token_is_masked_when_the_recipe_is_refused(run_module):
    """The invocation of a failed run (printed with -vvv) holds the recipe: the token must be masked there too."""
    recipe = dict(FIRMWARE, firmware_url='ftp://x', callback={'url': 'http://127.0.0.1:1', 'job_id': 'j', 'token': 'a-secret-token-123456'})
    for args in ({'recipe': recipe}, {'recipe': json.dumps(recipe)}):
        outcome = run_module(recipe_validate, args)
        assert outcome.failed and 'firmware_url' in outcome.result['msg']
        assert 'a-secret-token-123456' not in json.dumps(outcome.result)


def test_recipe_and_path_are_exclusive(run_module):
    outcome = run_module(recipe_validate, {'recipe': FIRMWARE, 'path': '/x'})
    assert outcome.failed
    assert 'mutually exclusive' in outcome.result['msg']
