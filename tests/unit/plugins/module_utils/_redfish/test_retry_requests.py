# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the retry paths cost in requests (issue 14: "must not grow by more than one"), per vendor shape and answer shape.

Each test runs a module twice against the replay BMC, once without the trouble (the baseline) and once with it, and
compares the numbers of requests of the two runs; the end state is judged from the BMC (what it holds, what the host
booted).  The answer shapes (a 412 that carries the fresh ETag or the resource, a PATCH answered with the resource, 204
or messages only) are simulations: the recorded 412s are the plain error, the recorded PATCH answers the resource.
"""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.modules import redfish_boot, redfish_virtual_media

ISO = 'http://10.0.0.1/maintenance.iso'

# vendor shape: fixture, rules, module, its arguments, the resource PATCHed, what the BMC holds after the run
BOOT_PXE = (redfish_boot, dict(boot_target='pxe'))
TARGETS = {
    'lenovo-system': ('lenovo_xcc', ['if_match_required'], BOOT_PXE, '/redfish/v1/Systems/1'),
    'hpe-system': ('hpe_ilo5', [], BOOT_PXE, '/redfish/v1/Systems/1'),
    'lenovo-ext-slot': ('lenovo_xcc', ['patch_needs_if_match', 'if_match_required'], (redfish_virtual_media, dict(image_url=ISO)),
                        '/redfish/v1/Managers/1/VirtualMedia/EXT1'),
}
# answer shape of the 412: extra replay rules, requests added to the run
REFUSALS = {
    'plain': ([], 2),  # no fresh ETag in the answer: read again, PATCH again
    'etag-header': (['refusal_etag'], 1),
    'resource-body': (['refusal_resource'], 1),
}


def touch(resource):
    resource['Description'] = 'touched by another client'  # someone else's change between our read and our PATCH


def holds(bmc, path):
    resource = bmc.get(path)
    return resource.get('Image') == ISO if '/VirtualMedia/' in path else resource['Boot']['BootSourceOverrideTarget'] == 'Pxe'


@pytest.mark.parametrize('refusal', sorted(REFUSALS))
@pytest.mark.parametrize('target', sorted(TARGETS))
def test_a_stale_etag_costs_one_request_when_the_refusal_carries_the_fresh_one(replay, run_module, target, refusal):
    fixture, rules, (module, args), path = TARGETS[target]
    extra_rules, added = REFUSALS[refusal]
    baseline = run_module(module, replay(fixture, rules=rules + extra_rules), **args)
    assert not baseline.failed, baseline.result['msg']
    bmc = replay(fixture, rules=rules + extra_rules)
    first_etag = bmc.headers.get(path, {}).get('ETag') or bmc.get(path)['@odata.etag']
    bmc.change_before('PATCH', path.replace('/redfish/v1', '') + '$', touch)
    run = run_module(module, bmc, **args)
    assert not run.failed, run.result['msg']
    assert holds(bmc, path)
    patches = [r for r in run.requests if r.method == 'PATCH']
    assert len(patches) == 2 and patches[0].headers['If-Match'] == first_etag
    assert patches[1].headers['If-Match'] not in (None, first_etag)  # the fresh ETag, never a PATCH without If-Match
    assert len(run.requests) == len(baseline.requests) + added, run.sent
    rereads = [r for r in run.requests[run.requests.index(patches[0]):run.requests.index(patches[1])] if r.method == 'GET']
    assert len(rereads) == (1 if refusal == 'plain' else 0)


def test_a_refusal_that_shows_the_override_already_set_sends_nothing_more(replay, run_module):
    """The 412's body is the system and it already holds the override (another client set it): no second PATCH."""
    bmc = replay('lenovo_xcc', rules=['if_match_required', 'refusal_resource'])
    bmc.change_before('PATCH', r'/Systems/1$', lambda system: system['Boot'].update(BootSourceOverrideTarget='Pxe', BootSourceOverrideEnabled='Once'))
    run = run_module(redfish_boot, bmc, boot_target='pxe')
    assert not run.failed, run.result['msg']
    assert len([r for r in run.requests if r.method == 'PATCH']) == 1
    assert bmc.get('/redfish/v1/Systems/1')['Boot']['BootSourceOverrideTarget'] == 'Pxe' and run.result['boot_override']['target'] == 'Pxe'


def test_a_fresh_etag_from_the_refusal_is_not_a_licence_to_loop(replay, run_module):
    """Changed again before the second PATCH: a clear error after two PATCHes, both with If-Match, and no reset."""
    bmc = replay('lenovo_xcc', rules=['if_match_required', 'refusal_etag'])
    bmc.change_before('PATCH', r'/Systems/1$', touch, times=2)
    run = run_module(redfish_boot, bmc, boot_target='pxe', reset_type='On')
    assert run.failed and 'changed on the BMC between our read and our PATCH, twice' in run.result['msg']
    patches = [r for r in run.requests if r.method == 'PATCH']
    assert len(patches) == 2 and all(p.headers.get('If-Match') for p in patches)
    assert not [r for r in run.requests if r.path.endswith('ComputerSystem.Reset')] and bmc.boots == []


# -- the silent boot downgrade ----------------------------------------------------------------------

# vendor shape: fixture, rules, the slot to put the boot medium in, boot_mode (the mode a retry may leave out)
DOWNGRADES = {
    'supermicro': ('supermicro_x12', [], '/redfish/v1/Managers/1/VirtualMedia/CD1', None),  # the mode comes from the quirks table
    'lenovo': ('lenovo_xcc', ['if_match_required'], '/redfish/v1/Managers/1/VirtualMedia/EXT1', 'uefi'),
    'hpe': ('hpe_ilo5', [], '/redfish/v1/Managers/1/VirtualMedia/2', 'uefi'),
}
# answer shape of a PATCH: extra replay rules, requests the retry adds
ANSWERS = {
    'resource': ([], 1),  # the answer shows the downgrade: it stands in for the first read-back
    '204': (['patch_answers_204'], 2),  # nothing but a GET shows what was kept, twice (boot.BootManager.set_override)
    'messages': (['patch_answers_messages'], 2),
}


def boot_run(replay, run_module, fixture, rules, slot, mode):
    bmc = replay(fixture, rules=rules)
    bmc.get(slot).update(Image=ISO, ImageName='maintenance.iso', Inserted=True, ConnectedVia='URI')
    args = dict(boot_target='cd', reset_type='ForceRestart')
    if mode:
        args['boot_mode'] = mode
    return bmc, run_module(redfish_boot, bmc, **args)


@pytest.mark.parametrize('answer', sorted(ANSWERS))
@pytest.mark.parametrize('vendor', sorted(DOWNGRADES))
def test_a_silent_downgrade_costs_one_request_when_the_bmc_answers_with_the_resource(replay, run_module, vendor, answer):
    fixture, rules, slot, mode = DOWNGRADES[vendor]
    extra_rules, added = ANSWERS[answer]
    _bmc, baseline = boot_run(replay, run_module, fixture, rules + extra_rules, slot, mode)
    assert not baseline.failed, baseline.result['msg']
    bmc, run = boot_run(replay, run_module, fixture, rules + extra_rules + ['once_dropped_with_mode'], slot, mode)
    assert not run.failed, run.result['msg']
    patches = [r for r in run.requests if r.method == 'PATCH']
    assert len(patches) == 2 and 'BootSourceOverrideMode' in patches[0].body['Boot'] and 'BootSourceOverrideMode' not in patches[1].body['Boot']
    assert any('without BootSourceOverrideMode' in note for note in run.result['notes'])
    assert bmc.boots == [ISO]  # the host started the maintenance ISO
    # the read-back before the reset is a GET of the system, after the last PATCH
    reset = next(i for i, r in enumerate(run.requests) if r.path.endswith('ComputerSystem.Reset'))
    assert run.requests.index(patches[1]) < reset - 1 and run.requests[reset - 1].method == 'GET'
    assert run.requests[reset - 1].path.rstrip('/') == '/redfish/v1/Systems/1'
    assert len(run.requests) == len(baseline.requests) + added, run.sent
