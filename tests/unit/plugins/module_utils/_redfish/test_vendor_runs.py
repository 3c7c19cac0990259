# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whole module runs against vendor-shaped replay BMCs (issue 14), judged from the BMC's own state.

Each test runs the modules as a play would and asserts what the replay BMC ended up with: which slot
holds which image, what the host started from at the reset (``bmc.boots``), which requests it received
and in which order.  The replay changes state on every POST/PATCH, so a client that only sends the
right-looking requests but reads the answers wrong fails here.
"""

from __future__ import annotations

from ansible_collections.l3metal.provision.plugins.modules import redfish_boot, redfish_virtual_media, redfish_virtual_media_info

ISO = 'http://10.0.0.1/maintenance.iso'
TASK = 'http://10.0.0.1/jobs/node01-task.iso'
IDRAC10_SYSTEM = '/redfish/v1/Systems/System.Embedded.1'
IDRAC10_SETTINGS = IDRAC10_SYSTEM + '/Settings'
IDRAC10_SLOT = IDRAC10_SYSTEM + '/VirtualMedia/%s'
VIRTUAL_OPTICAL = 'PciRoot(0x0)/Pci(0x14,0x0)/USB(0xD,0x0)/USB(0x0,0x0)/USB(0x2,0x0)/Unit(0x0)'


def insert(bmc, slot_path, image):
    """Put a medium in a slot directly on the BMC (set-up, not under test)."""
    bmc.get(slot_path).update(Image=image, ImageName=image.rsplit('/', 1)[-1], Inserted=True, ConnectedVia='URI')


# -- 1. slot order --------------------------------------------------------------------------------

def test_slots_count_in_id_order_and_the_boot_starts_the_boot_medium(replay, run_module):
    """iDRAC10 lists VirtualMedia/2 before VirtualMedia/1: slot 1 must still be VirtualMedia/1, the layout must say so,
    and the host must start the maintenance ISO, not the task ISO (the BMC's only virtual-CD boot option boots instance 1)."""
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    info = run_module(redfish_virtual_media_info, bmc).result
    assert [s['id'] for s in info['slots']] == ['1', '2']
    assert info['layout'] == {'boot': {'media_type': 'cd', 'slot': 1, 'slot_id': '1'},
                              'task': {'media_type': 'cd', 'slot': 2, 'slot_id': '2', 'format': 'iso'}}
    layout = info['layout']
    boot_medium = run_module(redfish_virtual_media, bmc, image_url=ISO, media_type='cd', slot=layout['boot']['slot']).result
    task_medium = run_module(redfish_virtual_media, bmc, image_url=TASK, media_type='cd', slot=layout['task']['slot']).result
    assert boot_medium['slot']['id'] == '1' and task_medium['slot']['id'] == '2'
    assert bmc.get(IDRAC10_SLOT % 1)['Image'] == ISO and bmc.get(IDRAC10_SLOT % 2)['Image'] == TASK

    run = run_module(redfish_boot, bmc, boot_target='cd', reset_type='ForceRestart')
    assert not run.failed, run.result['msg']
    assert bmc.boots == [ISO]  # what the host really started
    assert run.result['boot_request']['body']['Boot']['UefiTargetBootSourceOverride'] == VIRTUAL_OPTICAL
    assert run.result['boot_medium'] == {'slot_id': '1', 'image': ISO, 'boot_option': 'Boot0004'}
    # root, session, Systems, system, settings, BootOptions + 5 options, VirtualMedia + 2 slots (to find the slot of
    # the boot medium), PATCH settings, read-back (system, settings), reset, system after the reset, session delete
    reads = [('GET', 'v1'), ('POST', 'Sessions'), ('GET', 'Systems'), ('GET', 'System.Embedded.1'), ('GET', 'Settings'), ('GET', 'BootOptions')]
    options = [('GET', 'Boot000%d' % n) for n in (1, 3, 4, 5, 6)]
    slots = [('GET', 'VirtualMedia'), ('GET', '2'), ('GET', '1')]
    write = [('PATCH', 'Settings'), ('GET', 'System.Embedded.1'), ('GET', 'Settings'), ('POST', 'ComputerSystem.Reset'), ('GET', 'System.Embedded.1')]
    assert run.sent == reads + options + slots + write + [('DELETE', run.sent[-1][1])]
    assert run.requests[-1].path == bmc.deleted_sessions[-1]


def test_boot_image_url_boots_the_slot_that_holds_it_whatever_its_number(replay, run_module):
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    # a firmware that lists a boot option per instance: Boot0007 boots VirtualMedia/2
    option = dict(bmc.get(IDRAC10_SYSTEM + '/BootOptions/Boot0004'), Id='Boot0007', BootOptionReference='Boot0007',
                  DisplayName='Virtual Optical Drive 2', Name='Virtual Optical Drive 2',
                  UefiDevicePath=VIRTUAL_OPTICAL.replace('Unit(0x0)', 'Unit(0x2)'),
                  RelatedItem=[{'@odata.id': IDRAC10_SLOT % 2}])
    option['@odata.id'] = IDRAC10_SYSTEM + '/BootOptions/Boot0007'
    bmc.resources[option['@odata.id']] = option
    bmc.get(IDRAC10_SYSTEM + '/BootOptions')['Members'].insert(0, {'@odata.id': option['@odata.id']})
    insert(bmc, IDRAC10_SLOT % 1, TASK)
    insert(bmc, IDRAC10_SLOT % 2, ISO)
    run = run_module(redfish_boot, bmc, boot_target='cd', boot_image_url=ISO, reset_type='On')
    assert not run.failed, run.result['msg']
    assert run.result['boot_medium'] == {'slot_id': '2', 'image': ISO, 'boot_option': 'Boot0007'}
    assert bmc.boots == [ISO]


def test_a_boot_medium_the_bmc_cannot_boot_fails_before_any_change(replay, run_module):
    """The only virtual-CD boot option boots instance 1; the boot medium sits in instance 2: fail, send nothing."""
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    insert(bmc, IDRAC10_SLOT % 1, TASK)
    insert(bmc, IDRAC10_SLOT % 2, ISO)
    run = run_module(redfish_boot, bmc, boot_target='cd', boot_image_url=ISO, reset_type='On')
    assert run.failed
    assert 'slot 2' in run.result['msg'] and ISO in run.result['msg'] and 'Boot0004 boots slot 1' in run.result['msg']
    assert [r for r in run.requests if r.method in ('PATCH', 'POST') and 'Sessions' not in r.path] == []
    assert bmc.boots == []
    missing = run_module(redfish_boot, bmc, boot_target='cd', boot_image_url='http://10.0.0.1/nowhere.iso')
    assert missing.failed and 'no virtual media slot holds boot_image_url http://10.0.0.1/nowhere.iso' in missing.result['msg']


def test_check_mode_predicts_the_boot_before_the_medium_is_inserted(replay, run_module):
    """In check mode the insert before this task changed nothing: predict with the first CD slot, warn, send nothing."""
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    run = run_module(redfish_boot, bmc, check_mode=True, boot_target='cd', boot_image_url=ISO, reset_type='On')
    assert not run.failed, run.result['msg']
    # ansible-core 2.19 returns warnings as structured summaries, older releases as strings
    warnings = [w['event']['msg'] if isinstance(w, dict) else w for w in run.result.get('warnings', [])]
    assert any('check mode: no slot holds boot_image_url %s' % ISO in warning for warning in warnings), warnings
    assert [r for r in run.requests if r.method in ('PATCH', 'POST') and 'Sessions' not in r.path] == []
    assert bmc.boots == []
    # without check mode the same call still fails before any change
    real = run_module(redfish_boot, bmc, boot_target='cd', boot_image_url=ISO, reset_type='On')
    assert real.failed and 'no virtual media slot holds boot_image_url' in real.result['msg']


# -- 3. silent boot downgrade ---------------------------------------------------------------------

def test_override_silently_downgraded_is_sent_again_without_mode_before_the_reset(replay, run_module):
    """The BMC answers 200 to {UsbCd, Once, UEFI} and keeps {UsbCd, Disabled}; without BootSourceOverrideMode it keeps Once."""
    bmc = replay('supermicro_x12', rules=['once_dropped_with_mode'])
    insert(bmc, '/redfish/v1/Managers/1/VirtualMedia/CD1', ISO)
    run = run_module(redfish_boot, bmc, boot_target='cd', reset_type='On')
    assert not run.failed, run.result['msg']
    assert [r.body for r in run.requests if r.method == 'PATCH'] == [
        {'Boot': {'BootSourceOverrideTarget': 'UsbCd', 'BootSourceOverrideEnabled': 'Once', 'BootSourceOverrideMode': 'UEFI'}},
        {'Boot': {'BootSourceOverrideTarget': 'UsbCd', 'BootSourceOverrideEnabled': 'Once'}}]
    assert run.result['boot_override']['enabled'] == 'Once'
    assert any('without BootSourceOverrideMode' in note for note in run.result['notes'])
    assert bmc.boots == [ISO]
    # root, session, Systems, system, PATCH (its answer, the system, shows the downgrade), PATCH without Mode, read-back,
    # reset, system, session delete: one request more than the override alone (test_retry_requests.py counts the shapes)
    assert run.sent == [('GET', 'v1'), ('POST', 'Sessions'), ('GET', 'Systems'), ('GET', '1'), ('PATCH', '1'),
                        ('PATCH', '1'), ('GET', '1'), ('POST', 'ComputerSystem.Reset'), ('GET', '1'), ('DELETE', '1')]


def test_override_the_bmc_will_not_keep_fails_naming_what_it_kept_and_sends_no_reset(replay, run_module):
    """This BMC also needs the full Boot object, so the retry without the mode is refused: fail before any reset."""
    bmc = replay('supermicro_x12', rules=['once_dropped_with_mode', 'boot_full_object'])
    insert(bmc, '/redfish/v1/Managers/1/VirtualMedia/CD1', ISO)
    run = run_module(redfish_boot, bmc, boot_target='cd', reset_type='On')
    assert run.failed
    msg = run.result['msg']
    assert bmc.url in msg and 'kept BootSourceOverrideTarget=UsbCd BootSourceOverrideEnabled=Disabled' in msg
    assert 'no reset was sent' in msg and 'BootSourceOverrideMode is a required property' in msg
    assert run.result['error_type'] == 'RedfishVerifyError'
    assert not [r for r in run.requests if r.path.endswith('ComputerSystem.Reset')] and bmc.boots == []
    assert len([r for r in run.requests if r.method == 'PATCH']) == 2


# -- 4. stale ETag --------------------------------------------------------------------------------

def power_on(system):
    system['PowerState'] = 'On'  # someone else's change between our read and our PATCH


def test_stale_etag_on_the_system_patch_is_read_again_and_sent_with_the_fresh_etag(replay, run_module):
    bmc = replay('lenovo_xcc', rules=['if_match_required'])
    first = bmc.get('/redfish/v1/Systems/1')['@odata.etag']
    bmc.change_before('PATCH', r'/Systems/1$', power_on)
    run = run_module(redfish_boot, bmc, boot_target='pxe')
    assert not run.failed, run.result['msg']
    patches = [r for r in run.requests if r.method == 'PATCH']
    fresh = bmc.get('/redfish/v1/Systems/1')['@odata.etag']
    assert [p.headers.get('If-Match') for p in patches] == [first, patches[1].headers['If-Match']] and patches[1].headers['If-Match'] != first
    assert bmc.get('/redfish/v1/Systems/1')['Boot']['BootSourceOverrideTarget'] == 'Pxe' and fresh != first
    # root, session, Systems, system, PATCH (412), system again, PATCH, read-back, session delete: one more read and one
    # more PATCH than without the conflict, never a PATCH without If-Match
    assert run.sent == [('GET', 'v1'), ('POST', 'Sessions'), ('GET', 'Systems'), ('GET', '1'), ('PATCH', '1'), ('GET', '1'), ('PATCH', '1'),
                        ('GET', '1'), ('DELETE', '1')]


def test_etag_stale_twice_is_a_clear_error_and_if_match_is_never_dropped(replay, run_module):
    bmc = replay('lenovo_xcc', rules=['if_match_required'])
    bmc.change_before('PATCH', r'/Systems/1$', power_on, times=2)
    run = run_module(redfish_boot, bmc, boot_target='pxe', reset_type='On')
    assert run.failed
    msg = run.result['msg']
    assert 'changed on the BMC between our read and our PATCH, twice' in msg and bmc.url in msg and 'nothing was changed' in msg
    assert run.result['http_status'] == 412
    patches = [r for r in run.requests if r.method == 'PATCH']
    assert len(patches) == 2 and all(p.headers.get('If-Match') for p in patches)
    assert not [r for r in run.requests if r.path.endswith('ComputerSystem.Reset')]


def test_stale_etag_on_the_virtual_media_patch_is_read_again_and_sent_with_the_fresh_etag(replay, run_module):
    bmc = replay('lenovo_xcc', rules=['patch_needs_if_match', 'if_match_required'])
    bmc.change_before('PATCH', r'/VirtualMedia/EXT1$', lambda slot: slot.update(Description='touched by the XCC web UI'))
    run = run_module(redfish_virtual_media, bmc, image_url=ISO)
    assert not run.failed, run.result['msg']
    assert bmc.get('/redfish/v1/Managers/1/VirtualMedia/EXT1')['Image'] == ISO
    patches = [r for r in run.requests if r.method == 'PATCH']
    assert len(patches) == 2 and patches[0].headers['If-Match'] != patches[1].headers['If-Match']
    slot_reads = [r for r in run.requests if r.method == 'GET' and r.path.endswith('/EXT1')]
    assert len(slot_reads) == 3  # discovery, the re-read after the 412, the read-back


# -- 5. settings object after the reset -----------------------------------------------------------

def test_idrac10_settings_kept_after_the_reset_are_not_pending_and_the_next_run_sets_the_override(replay, run_module):
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    insert(bmc, IDRAC10_SLOT % 1, ISO)
    first = run_module(redfish_boot, bmc, boot_target='cd', reset_type='On')
    assert not first.failed, first.result['msg']
    assert first.result['boot_override']['pending'] is True
    assert bmc.boots == [ISO]
    # the override was applied and consumed at boot; the settings object still holds it
    assert bmc.get(IDRAC10_SYSTEM)['Boot']['BootSourceOverrideEnabled'] == 'Disabled'
    assert bmc.get(IDRAC10_SETTINGS)['Boot']['BootSourceOverrideTarget'] == 'UefiTarget'

    second = run_module(redfish_boot, bmc, boot_target='cd', reset_type='ForceRestart')
    assert not second.failed, second.result['msg']
    assert second.result['boot_override_before']['pending'] is False  # what the BMC says: nothing waits for a reset
    assert [r.path for r in second.requests if r.method == 'PATCH'] == [IDRAC10_SETTINGS]
    assert bmc.boots == [ISO, ISO]  # the second run also ends with the host on the maintenance ISO


def test_idrac10_override_really_pending_is_left_alone(replay, run_module):
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    set_it = run_module(redfish_boot, bmc, boot_target='pxe')
    assert set_it.result['changed'] and set_it.result['boot_override']['pending'] is True
    assert bmc.get(IDRAC10_SETTINGS)['@Redfish.SettingsApplyTime'] == {'ApplyTime': 'OnReset'}
    again = run_module(redfish_boot, bmc, boot_target='pxe')
    assert again.result['changed'] is False and again.result['boot_request'] is None
    assert again.result['boot_override']['pending'] is True


def test_boot_options_that_name_no_slot_are_taken_to_boot_the_first_cd_slot(replay, run_module):
    """Without RelatedItem the BMC does not say which slot its "Virtual Optical Drive" boots: iDRAC boots instance 1."""
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    del bmc.get(IDRAC10_SYSTEM + '/BootOptions/Boot0004')['RelatedItem']
    insert(bmc, IDRAC10_SLOT % 1, TASK)
    insert(bmc, IDRAC10_SLOT % 2, ISO)
    wrong = run_module(redfish_boot, bmc, boot_target='cd', boot_image_url=ISO, reset_type='On')
    assert wrong.failed and 'first CD slot 1: put the boot medium there' in wrong.result['msg']
    assert [r for r in wrong.requests if r.method == 'PATCH' or r.path.endswith('Reset')] == []
    right = run_module(redfish_boot, bmc, boot_target='cd', boot_image_url=TASK, reset_type='On')
    assert not right.failed and right.result['boot_medium'] == {'slot_id': '1', 'image': TASK, 'boot_option': 'Boot0004'}
    assert bmc.boots == [TASK]
