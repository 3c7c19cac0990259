# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Virtual media quirks against replayed vendor JSON (the sushy-tools emulator has none of them)."""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.errors import RedfishSelectionError, RedfishVerifyError
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.vmedia import VirtualMediaManager, suggest_layout

ISO = 'http://10.0.0.1/maintenance.iso'
TASK = 'http://10.0.0.1/jobs/node01-task.img'


def test_dell_slots_found_under_the_manager_and_insert_retried_after_500(replay, connect, sleeps):
    bmc = replay('dell_idrac9')
    bmc.fail('POST', r'/CD/Actions/VirtualMedia.InsertMedia$', 'internal_error', times=2)  # SYS446 twice, then it works
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    assert [(s.id, s.media_types) for s in vm.slots()] == [('RemovableDisk', ['USBStick']), ('CD', ['CD', 'DVD'])]
    assert vm.collection_path == '/redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia'
    outcome = vm.ensure_present(ISO, 'cd', 1)
    assert outcome.changed and outcome.slot.id == 'CD' and outcome.slot.image == ISO
    assert len(bmc.sent('POST', 'InsertMedia')) == 3 and sleeps == [1.0, 2.0]
    assert bmc.get('/redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia/CD')['Inserted'] is True


def test_dell_eject_that_does_not_eject_is_repeated_and_verified(replay, connect, sleeps):
    bmc = replay('dell_idrac9')
    client = connect(bmc)
    VirtualMediaManager(client).ensure_present(ISO, 'cd', 1)
    bmc.sticky_ejects = 2  # recorded behaviour: EjectMedia answers 204 and the image stays
    outcome = VirtualMediaManager(client).ensure_absent('cd', 1)
    assert outcome.changed and not outcome.slot.occupied
    assert len(bmc.sent('POST', 'EjectMedia')) == 3
    assert bmc.get('/redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia/CD')['Image'] is None


def test_without_the_quirk_an_ineffective_eject_fails_instead_of_lying(replay, connect):
    bmc = replay('dell_idrac9')
    bmc.get('/redfish/v1/Systems/System.Embedded.1')['Manufacturer'] = 'Contoso'
    client = connect(bmc)
    VirtualMediaManager(client).ensure_present(ISO, 'cd', 1)
    bmc.sticky_ejects = 1
    with pytest.raises(RedfishVerifyError, match=r'EjectMedia on slot CD answered success 1 time, but the slot still holds'):
        VirtualMediaManager(client).ensure_absent('cd', 1)
    assert len(bmc.sent('POST', 'EjectMedia')) == 1


def test_hpe_slot_map_boot_on_cd_task_on_removable(replay, connect):
    bmc = replay('hpe_ilo5')
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    slots = vm.slots()
    assert [(s.id, s.media_types, s.mountable) for s in slots] == [('1', ['Floppy', 'USBStick'], True), ('2', ['CD', 'DVD'], True)]
    assert suggest_layout(slots, client.quirks()) == {'boot': {'media_type': 'cd', 'slot': 1, 'slot_id': '2'},
                                                      'task': {'media_type': 'usb', 'slot': 1, 'slot_id': '1', 'format': 'fat'}}
    assert vm.ensure_present(ISO, 'cd', 1).slot.id == '2'
    assert vm.ensure_present(TASK, 'usb', 1).slot.id == '1'
    assert bmc.get('/redfish/v1/Managers/1/VirtualMedia/1/')['Image'] == TASK
    with pytest.raises(RedfishSelectionError, match='single virtual CD: put the task medium on media_type usb as a FAT image'):
        vm.select('cd', 2)


def test_lenovo_upload_only_slots_are_skipped_and_ext_mounts_by_patch_with_if_match(replay, connect):
    bmc = replay('lenovo_xcc', rules=['patch_needs_if_match'])
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    slots = vm.slots()
    assert [s.id for s in slots if s.mountable] == ['EXT1', 'EXT2', 'EXT3', 'EXT4']
    assert {s.id: s.mount_method for s in slots if s.mountable} == dict.fromkeys(['EXT1', 'EXT2', 'EXT3', 'EXT4'], 'patch')
    assert all('uploads or console mounts' in s.not_mountable_reason for s in slots if not s.mountable)
    etag = bmc.headers['/redfish/v1/Managers/1/VirtualMedia/EXT1']['ETag']
    reads = len(bmc.sent('GET'))
    outcome = vm.ensure_present(ISO, 'cd', 1)
    assert outcome.slot.id == 'EXT1' and outcome.slot.image == ISO
    patch = bmc.sent('PATCH')
    assert len(patch) == 1 and patch[0].path.endswith('/EXT1')
    assert patch[0].headers['If-Match'] == etag  # the ETag of the read the decision was made on
    assert patch[0].body == {'Image': ISO, 'Inserted': True, 'WriteProtected': True}
    assert len(bmc.sent('GET')) == reads + 1  # only the read-back; no extra GET for the ETag or Allow
    # the second slot is EXT2, RDOC/Remote never count
    assert vm.ensure_present(TASK, 'cd', 2).slot.id == 'EXT2'
    # eject by PATCH too, with the new ETag
    out = vm.ensure_absent('cd', 1)
    assert out.changed and bmc.sent('PATCH')[-1].body == {'Image': None, 'Inserted': False}


def test_lenovo_without_the_quirk_has_no_mountable_slot(replay, connect):
    bmc = replay('lenovo_xcc')
    bmc.get('/redfish/v1/Systems/1')['Manufacturer'] = 'Contoso'
    vm = VirtualMediaManager(connect(bmc))
    with pytest.raises(RedfishSelectionError, match=r'0 mountable cd slots. Slots: RDOC1 \(CD/DVD/USBStick; not mountable: no InsertMedia'):
        vm.select('cd', 1)


def test_supermicro_insert_sends_only_the_image(replay, connect):
    bmc = replay('supermicro_x12', rules=['insert_rejects_flags'])
    vm = VirtualMediaManager(connect(bmc))
    outcome = vm.ensure_present(ISO, 'cd', 1)
    assert outcome.slot.id == 'CD1'
    assert [r.body for r in bmc.sent('POST', 'InsertMedia')] == [{'Image': ISO}]
    assert suggest_layout(vm.slots(), connect(bmc).quirks()) == {'boot': {'media_type': 'cd', 'slot': 1, 'slot_id': 'CD1'}, 'task': None}


def test_idrac10_slots_under_the_system_accept_cd_and_usb(replay, connect):
    bmc = replay('dell_idrac10')
    vm = VirtualMediaManager(connect(bmc))
    slots = vm.slots()
    assert vm.collection_path == '/redfish/v1/Systems/System.Embedded.1/VirtualMedia'
    assert suggest_layout(slots, connect(bmc).quirks())['task'] == {'media_type': 'cd', 'slot': 2, 'slot_id': '2', 'format': 'iso'}
    assert vm.select('usb', 2).id == '2'


def test_failed_insert_puts_the_previous_image_back(replay, connect):
    bmc = replay('hpe_ilo5')
    client = connect(bmc, retries=0)
    vm = VirtualMediaManager(client)
    vm.ensure_present(ISO, 'cd', 1)
    bmc.errors['unreachable'] = {'status': 400, 'body': {'error': {'code': 'Base.1.0.GeneralError', 'message': 'x', '@Message.ExtendedInfo': [
        {'MessageId': 'iLO.2.18.UnableToConnect', 'Message': 'The image URL cannot be reached.'}]}}}
    bmc.fail('POST', r'/2/Actions/VirtualMedia.InsertMedia$', 'unreachable')
    with pytest.raises(Exception) as caught:
        VirtualMediaManager(client).ensure_present('http://10.0.0.1/missing.iso', 'cd', 1)
    assert 'The image URL cannot be reached' in str(caught.value)
    assert 'previous image %s was inserted again' % ISO in str(caught.value)
    assert bmc.get('/redfish/v1/Managers/1/VirtualMedia/2/')['Image'] == ISO
