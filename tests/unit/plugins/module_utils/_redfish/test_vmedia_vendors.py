# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Virtual media quirks against replayed vendor JSON (the sushy-tools emulator has none of them)."""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.errors import RedfishHTTPError, RedfishSelectionError, RedfishVerifyError
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.vmedia import VirtualMediaManager, suggest_layout

ISO = 'http://10.0.0.1/maintenance.iso'
TASK = 'http://10.0.0.1/jobs/node01-task.img'


def test_dell_slots_found_under_the_manager_and_insert_retried_after_500(replay, connect, sleeps):
    bmc = replay('dell_idrac9')
    bmc.fail('POST', r'/CD/Actions/VirtualMedia.InsertMedia$', 'internal_error', times=2)  # SYS446 twice, then it works
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    # the BMC lists RemovableDisk first; slots are in the natural order of their Ids
    assert [(s.id, s.media_types) for s in vm.slots()] == [('CD', ['CD', 'DVD']), ('RemovableDisk', ['USBStick'])]
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
    with pytest.raises(RedfishSelectionError, match=r'0 mountable cd slots. Slots: EXT1 \(CD/DVD; not mountable: no InsertMedia.*RDOC1'):
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


# -- issue 14 ---------------------------------------------------------------------------------------

def test_slot_numbers_follow_the_natural_order_of_the_ids_not_the_list_order(replay, connect):
    bmc = replay('dell_idrac10')
    collection = bmc.get('/redfish/v1/Systems/System.Embedded.1/VirtualMedia')
    assert [m['@odata.id'][-1] for m in collection['Members']] == ['2', '1']  # what the BMC lists
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    assert [s.id for s in vm.slots()] == ['1', '2']
    assert vm.select('cd', 1).id == '1' and vm.select('cd', 2).id == '2'
    assert suggest_layout(vm.slots(), client.quirks()) == {'boot': {'media_type': 'cd', 'slot': 1, 'slot_id': '1'},
                                                           'task': {'media_type': 'cd', 'slot': 2, 'slot_id': '2', 'format': 'iso'}}


def test_natural_order_compares_numbers_as_numbers():
    from ansible_collections.l3metal.provision.plugins.module_utils._redfish.vmedia import natural_key
    ids = ['CD10', 'Cd2', 'CD1', 'RemovableDisk', '2', '10', '1', 'EXT1']
    assert sorted(ids, key=natural_key) == ['1', '2', '10', 'CD1', 'Cd2', 'CD10', 'EXT1', 'RemovableDisk']


def test_supermicro_stale_image_is_an_empty_slot_and_insert_eject_insert_really_inserts(replay, connect):
    bmc = replay('supermicro_x12', rules=['stale_image'])
    slot_path = '/redfish/v1/Managers/1/VirtualMedia/CD1'
    assert bmc.get(slot_path)['Image'] == 'http://10.0.0.7/earlier-session.iso'  # empty, but shows an earlier session's image
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    assert vm.slots()[0].occupied is False and vm.slots()[0].image is None
    mark = len(bmc.requests)
    first = vm.ensure_present(ISO, 'cd', 1)
    assert first.changed and first.actions == ['insert %s into slot CD1' % ISO]
    assert [(r.method, r.path.rsplit('/', 1)[-1]) for r in bmc.requests[mark:]] == [('POST', 'VirtualMedia.InsertMedia'), ('GET', 'CD1')]
    out = VirtualMediaManager(client).ensure_absent('cd', 1)
    assert out.changed and bmc.get(slot_path)['Inserted'] is False and bmc.get(slot_path)['Image'] == ISO  # stale again
    assert VirtualMediaManager(client).ensure_absent('cd', 1).changed is False  # an empty slot is not ejected again
    mark = len(bmc.requests)
    again = VirtualMediaManager(client).ensure_present(ISO, 'cd', 1)
    assert again.changed and again.slot.inserted is True
    assert len(bmc.sent('POST', 'InsertMedia')) == 2 and len(bmc.sent('POST', 'EjectMedia')) == 1
    # reads (manager, VirtualMedia, CD1), InsertMedia, read-back: no eject of the stale image
    assert [(r.method, r.path.rsplit('/', 1)[-1]) for r in bmc.requests[mark:]] == [
        ('GET', '1'), ('GET', 'VirtualMedia'), ('GET', 'CD1'), ('POST', 'VirtualMedia.InsertMedia'), ('GET', 'CD1')]
    assert bmc.get(slot_path)['Inserted'] is True and bmc.get(slot_path)['ConnectedVia'] == 'URI'


def test_without_the_quirk_a_stale_image_reads_as_occupied(replay, connect):
    bmc = replay('supermicro_x12', rules=['stale_image'])
    bmc.get('/redfish/v1/Systems/1')['Manufacturer'] = 'Contoso'
    vm = VirtualMediaManager(connect(bmc))
    assert vm.slots()[0].occupied is True
    with pytest.raises(RedfishVerifyError, match='still holds'):
        vm.ensure_present(ISO, 'cd', 1)


def test_insert_refused_naming_a_property_is_retried_with_the_image_only(replay, connect):
    bmc = replay('supermicro_x12', rules=['insert_refuses_properties'])
    client = connect(bmc)
    vm = VirtualMediaManager(client)
    vm.slots()
    mark = len(bmc.requests)
    outcome = vm.ensure_present(ISO, 'cd', 1, inserted=False)
    assert outcome.changed and bmc.get('/redfish/v1/Managers/1/VirtualMedia/CD1')['Image'] == ISO
    assert [r.body for r in bmc.sent('POST', 'InsertMedia')] == [{'Image': ISO, 'Inserted': False}, {'Image': ISO}]
    assert any('refused Inserted' in w and 'Image only' in w for w in vm.warnings)
    # one POST more than an accepted insert: InsertMedia (refused), InsertMedia (Image only), read-back
    assert [r.method for r in bmc.requests[mark:]] == ['POST', 'POST', 'GET']
    assert VirtualMediaManager(client).ensure_present(ISO, 'cd', 1, inserted=False).changed is False  # what it cannot set is not chased


def test_non_transient_vendor_error_is_not_retried(replay, connect, sleeps):
    bmc = replay('dell_idrac9')
    bmc.fail('POST', r'/CD/Actions/VirtualMedia.InsertMedia$', 'vmedia_already_connected', times=5)
    vm = VirtualMediaManager(connect(bmc))
    with pytest.raises(RedfishHTTPError) as caught:
        vm.ensure_present(ISO, 'cd', 1)
    assert 'IDRAC.2.8.VRM0021' in caught.value.message_ids()
    assert len(bmc.sent('POST', 'InsertMedia')) == 1 and sleeps == []
