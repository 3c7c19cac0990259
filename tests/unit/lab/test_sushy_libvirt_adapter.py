# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab BMC adapter's pure parts: boot order from a domain definition, the override a PATCH leaves, the PATCH
bodies it refuses, the system document it reports, what a Reset does.  The libvirt side is proven against a real
libvirtd and VM in tests/integration/lab/test_vmbmc.py; these run the decisions on real definitions from vm.py."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sushy_tools import error

from l3metal_lab import sushy_libvirt_adapter as adapter
from l3metal_lab.vm import VmFiles, VmSpec, domain_xml

THREE = {'Cd': {'MediaTypes': ['CD', 'DVD']}, 'Cd2': {'MediaTypes': ['CD', 'DVD']}, 'Usb': {'MediaTypes': ['USBStick']}}
KINDS = {'Cd': 'cdrom', 'Cd2': 'cdrom', 'Usb': 'usb'}


def definition(spec: VmSpec | None = None, vmedia: dict | None = None) -> ET.Element:
    """A definition as vm.py writes it (the adapter's input), CD drives empty."""
    return ET.fromstring(domain_xml(spec or VmSpec(1), VmFiles(Path('/srv/vm')), vmedia or THREE))


def insert(tree: ET.Element, slot: str, image: str) -> ET.Element:
    """The definition after a medium went into ``slot`` (what the adapter does with updateDeviceFlags / attach)."""
    disk = adapter.find_slot_disk(tree, slot, KINDS)
    if disk is None:  # a USB slot: a removable disk is attached
        disk = ET.SubElement(tree.find('devices'), 'disk', type='file', device='disk')
        ET.SubElement(disk, 'driver', name='qemu', type='raw')
        ET.SubElement(disk, 'target', dev='sda', bus='usb', removable='on')
        ET.SubElement(disk, 'alias', name=adapter.slot_alias(slot))
    new = adapter.with_source(disk, image)
    devices = tree.find('devices')
    index = list(devices).index(disk)
    devices.remove(disk)
    devices.insert(index, new)
    return tree


def boot_orders(tree: ET.Element) -> dict[str, int]:
    """device key -> <boot order> of a definition."""
    return {adapter.device_key(e): int(e.find('boot').get('order')) for e in tree.findall('devices/disk') + tree.findall('devices/interface')
            if e.find('boot') is not None}


def test_slot_kinds_follow_media_types():
    assert adapter.slot_kind('Cd', {'MediaTypes': ['CD', 'DVD']}) == 'cdrom'
    assert adapter.slot_kind('Floppy', {'MediaTypes': ['Floppy', 'USBStick']}) == 'usb'
    with pytest.raises(ValueError, match='Hdd.*neither'):
        adapter.slot_kind('Hdd', {'MediaTypes': ['HDD']})


def test_cd_slots_map_to_their_own_drives():
    tree = definition()
    cd, cd2 = adapter.find_slot_disk(tree, 'Cd', KINDS), adapter.find_slot_disk(tree, 'Cd2', KINDS)
    assert adapter.alias_of(cd) == 'ua-vmedia-cd' and adapter.alias_of(cd2) == 'ua-vmedia-cd2'
    assert cd.find('target').get('dev') != cd2.find('target').get('dev')
    assert adapter.find_slot_disk(tree, 'Usb', KINDS) is None  # plugged only while a medium is in
    # a domain defined elsewhere (no aliases): the n-th cdrom for the n-th CD slot
    for disk in tree.findall('devices/disk'):
        for alias in disk.findall('alias'):
            disk.remove(alias)
    plain = [d for d in tree.findall('devices/disk') if d.get('device') == 'cdrom']
    assert adapter.find_slot_disk(tree, 'Cd2', KINDS) is plain[1]


def test_boot_order_puts_the_target_first_and_skips_empty_cd_drives():
    tree = definition()
    disk = 'dev:vda'
    assert adapter.boot_keys(tree, KINDS, 'None') == [disk]  # no medium in any CD drive: only the disk
    tree = insert(insert(tree, 'Cd2', '/tmp/b/task.iso'), 'Cd', '/tmp/a/maint.iso')
    cd, cd2 = ('dev:%s' % adapter.find_slot_disk(tree, s, KINDS).find('target').get('dev') for s in ('Cd', 'Cd2'))
    assert adapter.boot_keys(tree, KINDS, 'Cd') == [cd, cd2, disk]
    assert adapter.boot_keys(tree, KINDS, 'None') == adapter.boot_keys(tree, KINDS, 'Hdd') == [disk, cd, cd2]
    tree = insert(tree, 'Usb', '/tmp/c/task.img')
    assert adapter.boot_keys(tree, KINDS, 'Usb') == ['dev:sda', disk, cd, cd2]
    # written into the definition: exactly those devices get an order, 1..n; nothing else keeps one
    written = adapter.with_boot_order(tree, adapter.boot_keys(tree, KINDS, 'Cd'))
    assert boot_orders(written) == {cd: 1, cd2: 2, disk: 3, 'dev:sda': 4}
    assert boot_orders(adapter.with_boot_order(written, [disk])) == {disk: 1}
    assert boot_orders(tree) != boot_orders(written)  # a copy: the input is not changed


def test_pxe_only_with_a_nic_that_has_a_rom():
    assert adapter.allowed_targets(definition(), KINDS) == ['None', 'Cd', 'Usb', 'Hdd']  # vm.py: rom off
    tree = definition()
    for rom in tree.findall('devices/interface/rom'):
        tree.find('devices/interface').remove(rom)
    assert adapter.allowed_targets(tree, {'Cd': 'cdrom'}) == ['None', 'Pxe', 'Cd', 'Hdd']
    mac = tree.find('devices/interface/mac').get('address')
    assert adapter.boot_keys(tree, KINDS, 'Pxe') == ['mac:%s' % mac, 'dev:vda']


@pytest.mark.parametrize('current, target, enabled, expected', [
    (('None', 'Disabled'), 'Cd', 'Once', ('Cd', 'Once')),
    (('None', 'Disabled'), 'Cd', None, ('Cd', 'Once')),              # a target alone is one boot
    (('Cd', 'Continuous'), 'Hdd', None, ('Hdd', 'Continuous')),      # ... unless an override is on: it keeps its frequency
    (('Cd', 'Once'), None, 'Continuous', ('Cd', 'Continuous')),      # Enabled alone: the current target
    (('Cd', 'Continuous'), None, 'Disabled', ('None', 'Disabled')),  # Disabled alone clears (stock sushy-tools: 400)
    (('Cd', 'Once'), 'None', 'Once', ('None', 'Disabled')),
])
def test_an_override_patch_leaves_what_a_bmc_keeps(current, target, enabled, expected):
    assert adapter.merge_override(current, target, enabled, ['None', 'Cd', 'Hdd']) == expected


@pytest.mark.parametrize('target, enabled, named', [('Floppy', 'Once', 'Floppy'), ('Cd', 'Sometimes', 'Sometimes'), (None, 'Once', 'required')])
def test_an_override_patch_with_bad_values_is_a_400_naming_them(target, enabled, named):
    with pytest.raises(error.BadRequest, match=named):
        adapter.merge_override(('None', 'Disabled'), target, enabled, ['None', 'Cd', 'Hdd'])


def test_the_override_survives_as_domain_metadata():
    for target, enabled in (('Cd', 'Once'), ('Usb', 'Continuous')):
        assert adapter.parse_override(adapter.override_xml(target, enabled)) == (target, enabled)
    assert adapter.parse_override(adapter.override_xml('Cd', 'Disabled')) == ('None', 'Disabled')
    assert adapter.parse_override(None) == ('None', 'Disabled')


@pytest.mark.parametrize('body, named', [
    ({'Boot': {'BootSourceOverrideTarget': 'Cd'}, 'AssetTag': 'x'}, 'AssetTag'),
    ({'Boot': 'Cd'}, 'object'),
    ({'Boot': {'UefiTargetBootSourceOverride': '/0x31'}}, 'UefiTargetBootSourceOverride'),
    ({'Boot': {'BootSourceOverrideMode': 'BIOS'}}, 'BIOS'),
    ({'Boot': {'BootSourceOverrideTarget': ['Cd']}}, 'must be a string'),
])
def test_boot_patches_the_lab_bmc_does_not_take(body, named):
    with pytest.raises(error.BadRequest, match=named):
        adapter.parse_boot_patch(body)


def test_boot_patch_values():
    assert adapter.parse_boot_patch({'Boot': {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Once'}, '@odata.etag': 'W/"1"'}) \
        == ('Cd', 'Once', None)
    assert adapter.parse_boot_patch({'Boot': {'BootSourceOverrideMode': 'UEFI'}}) == (None, None, 'UEFI')


def test_the_system_document_reports_the_stored_override_and_what_is_real():
    stock = {'Id': 'x', 'Manufacturer': 'Sushy Emulator', 'Actions': {'#ComputerSystem.Reset': {'ResetType@Redfish.AllowableValues': ['On']}},
             'Boot': {'BootSourceOverrideEnabled': 'Continuous', 'BootSourceOverrideTarget': 'Cd', 'UefiTargetBootSourceOverride': '/0x31',
                      'HttpBootUri': None, 'BootSourceOverrideTarget@Redfish.AllowableValues': ['Pxe', 'Cd', 'Hdd', 'UefiHttp']}}
    data = adapter.rewrite_system(stock, ('Cd', 'Once'), ['None', 'Cd', 'Hdd'], 'UEFI', 'XF-1')
    assert data['Boot'] == {'BootSourceOverrideEnabled': 'Once', 'BootSourceOverrideTarget': 'Cd',
                            'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Cd', 'Hdd'], 'BootSourceOverrideMode': 'UEFI'}
    assert data['Model'] == 'l3metal lab VM' and data['SerialNumber'] == 'XF-1' and data['Manufacturer'] == 'Sushy Emulator'
    assert 'PowerCycle' in data['Actions']['#ComputerSystem.Reset']['ResetType@Redfish.AllowableValues']
    assert stock['Boot']['BootSourceOverrideEnabled'] == 'Continuous'  # the input is not changed


@pytest.mark.parametrize('reset_type, active, actions', [
    ('On', False, ['create']), ('On', True, []), ('ForceOff', True, ['destroy']), ('ForceOff', False, []),
    ('ForceRestart', True, ['destroy', 'create']), ('ForceRestart', False, []), ('PowerCycle', False, ['create']),
    ('PushPowerButton', True, ['shutdown']), ('GracefulRestart', True, ['reboot']), ('Nmi', True, ['nmi']),
])
def test_what_a_reset_does(reset_type, active, actions):
    assert adapter.power_actions(reset_type, active) == actions


def test_an_unknown_reset_type_is_a_400_listing_the_allowed():
    with pytest.raises(error.BadRequest, match="'Bogus' is not one of On, ForceOn, ForceOff"):
        adapter.power_actions('Bogus', True)


def test_media_changes_touch_only_the_medium():
    live = ET.fromstring("<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/a.iso' index='3'/>"
                         "<backingStore/><target dev='hdc' bus='ide'/><readonly/><alias name='ua-vmedia-cd'/><boot order='2'/></disk>")
    update = adapter.with_source(adapter.strip_runtime(live), '/b.iso')
    assert [child.tag for child in update] == ['driver', 'source', 'target', 'readonly', 'alias', 'boot']
    assert update.find('source').attrib == {'file': '/b.iso'}
    assert adapter.with_source(live, None).find('source') is None and live.find('source').get('file') == '/a.iso'
    assert adapter.free_dev(['sda', 'sdb', None], 'sd') == 'sdc'
    assert adapter.free_dev(['hdc'], 'hd', 'cdab') == 'hdd'
