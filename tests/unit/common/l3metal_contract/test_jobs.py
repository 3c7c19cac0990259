# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Job rules shared by the receiver and the modules: transitions, the recipe of a job, its digest."""

from __future__ import annotations

import pytest

from l3metal_contract.jobs import (
    ACTIVE_STATUSES,
    COMPLETE,
    NODE_TRANSITIONS,
    STATUSES,
    USER_TRANSITIONS,
    TransitionError,
    check_transition,
    job_recipe,
    recipe_digest,
    with_callback,
)
from l3metal_contract.recipe import RecipeError, validate_recipe

LINUX = {
    'task_target': 'install-linux.target',
    'target_disk': '/dev/sda',
    'oci_url': 'registry.example.com/os/ubuntu:22.04',
    'partition_layout': [{'size': '512M', 'type_guid': 'EF00', 'format': 'vfat'}, {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}],
}


def test_complete_is_final_for_everyone():
    for wanted in STATUSES:
        if wanted == COMPLETE:
            assert check_transition(COMPLETE, COMPLETE, 'user') is False
            continue
        for by in ('user', 'node'):
            with pytest.raises(TransitionError, match='complete is final'):
                check_transition(COMPLETE, wanted, by)


def test_tables_cover_every_status_and_only_known_ones():
    for table in (USER_TRANSITIONS, NODE_TRANSITIONS):
        assert set(table) == set(STATUSES)
        assert all(set(targets) <= set(STATUSES) for targets in table.values())
    assert set(ACTIVE_STATUSES) == set(STATUSES) - {COMPLETE}


@pytest.mark.parametrize('current, wanted, by, allowed', [
    ('queued', 'provisioning', 'user', True),
    ('queued', 'provisioning', 'node', True),
    ('provisioning', 'succeeded', 'node', True),
    ('provisioning', 'succeeded', 'user', False),   # only the node reports success
    ('succeeded', 'failed', 'node', False),         # the outcome is reported once
    ('failed', 'provisioning', 'user', False),
    ('succeeded', 'complete', 'user', True),
    ('provisioning', 'failed', 'user', True),       # the controller gave up
])
def test_transitions(current, wanted, by, allowed):
    if allowed:
        assert check_transition(current, wanted, by) is True
    else:
        with pytest.raises(TransitionError) as info:
            check_transition(current, wanted, by)
        assert '%s cannot become %s' % (current, wanted) in str(info.value)


def test_same_status_is_no_change():
    assert check_transition('provisioning', 'provisioning', 'user') is False


def test_job_recipe_refuses_a_callback_and_unknown_attachments():
    with pytest.raises(RecipeError, match='filled in by the webhook receiver'):
        job_recipe(dict(LINUX, callback={'url': 'http://x', 'job_id': 'j', 'token': 'x' * 20}))
    with pytest.raises(RecipeError, match='attached'):
        job_recipe(LINUX, attached=['kernel'])
    windows = {'task_target': 'install-windows.target', 'target_disk': '/dev/sda', 'oci_url': 'r.example.com/w/wim:1',
               'partition_layout': [{'size': '100%', 'type_guid': '0700', 'format': 'ntfs'}]}
    with pytest.raises(RecipeError, match='unattend_xml'):
        job_recipe(windows)
    assert job_recipe(windows, attached=['unattend_xml'])['task_target'] == 'install-windows.target'


def test_digest_is_equal_for_equivalent_recipes_only():
    reordered = dict(reversed(list(LINUX.items())))
    reordered['partition_layout'] = [dict(part, size=part['size'].lower(), type_guid=part['type_guid'].lower())
                                     for part in LINUX['partition_layout']]
    assert recipe_digest(job_recipe(LINUX)) == recipe_digest(job_recipe(reordered))
    assert recipe_digest(job_recipe(LINUX)) != recipe_digest(job_recipe(dict(LINUX, target_disk='/dev/sdb')))
    # the callback never changes the identity of a recipe
    assert recipe_digest(with_callback(job_recipe(LINUX), {'url': 'http://x', 'job_id': 'j', 'token': 't' * 20})) == recipe_digest(job_recipe(LINUX))


def test_recipe_with_callback_is_valid_for_the_node():
    callback = {'url': 'https://ctl.example.com:8443', 'job_id': 'abc-123', 'token': 'k' * 43, 'serial': 'XF-1'}
    recipe = with_callback(job_recipe(LINUX), callback)
    assert validate_recipe(recipe)['callback'] == callback
