# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VM-backed BMC (l3metal_lab.vmbmc) behaves like a server's BMC, proven by what the VM boots.

Plain Redfish over HTTP against sushy-tools' libvirt driver with the lab adapter, a private libvirtd and one
QEMU VM (SeaBIOS).  The media are marker ISOs whose GRUB prints ``L3M-BOOT medium=<label>`` on the serial
console and powers the VM off; the VM's disk holds one too, so "the disk booted" shows as well.  One VM, BIOS
only, media that skip GRUB's slow native IDE probe where they can: about 20-40 s on two cores.  UEFI, the
maintenance ISO and real installs are the end-to-end suite's (tests/e2e).
"""

from __future__ import annotations

import re
import typing as t

import pytest
import requests

from l3metal_lab.marker_media import fat_image, marker_iso, parse_boot
from l3metal_lab.vm import VmSpec
from l3metal_lab.vmbmc import VmBmc

SLOTS = {
    'Cd': {'Name': 'Virtual CD', 'MediaTypes': ['CD', 'DVD']},
    'Cd2': {'Name': 'Virtual CD 2', 'MediaTypes': ['CD', 'DVD']},
    'Usb': {'Name': 'Virtual Removable Disk', 'MediaTypes': ['USBStick']},
}
BOOT_TIMEOUT = 90.0


class Redfish:
    """What a client sends a BMC, in plain HTTP (no code of the collection)."""

    def __init__(self, bmc: VmBmc) -> None:
        self.bmc = bmc
        self.system = bmc.system_path(0)

    def call(self, method: str, path: str, body: t.Any = None) -> requests.Response:
        return requests.request(method, self.bmc.url + path, json=body, auth=self.bmc.auth, timeout=60)

    def ok(self, method: str, path: str, body: t.Any = None) -> None:
        response = self.call(method, path, body)
        assert response.status_code in (200, 204), '%s %s %s: %d %s' % (method, path, body, response.status_code, response.text[:500])

    def insert(self, slot: str, url: str) -> None:
        self.ok('POST', '%s/VirtualMedia/%s/Actions/VirtualMedia.InsertMedia' % (self.system, slot), {'Image': url, 'Inserted': True, 'WriteProtected': True})

    def eject(self, slot: str) -> None:
        self.ok('POST', '%s/VirtualMedia/%s/Actions/VirtualMedia.EjectMedia' % (self.system, slot), {})

    def boot(self, target: str, enabled: str) -> None:
        self.ok('PATCH', self.system, {'Boot': {'BootSourceOverrideTarget': target, 'BootSourceOverrideEnabled': enabled}})

    def reset(self, reset_type: str) -> None:
        self.ok('POST', self.system + '/Actions/ComputerSystem.Reset', {'ResetType': reset_type})

    def override(self) -> tuple[str, str]:
        boot = self.bmc.system(0)['Boot']
        return boot['BootSourceOverrideTarget'], boot['BootSourceOverrideEnabled']

    def wait_power(self, wanted: str, timeout: float, console: t.Any) -> None:
        import time  # pylint: disable=import-outside-toplevel
        deadline = time.monotonic() + timeout
        while self.bmc.system(0)['PowerState'] != wanted:
            assert time.monotonic() < deadline, 'PowerState is not %s after %g s; console:\n%s' % (wanted, timeout, console.tail(50))
            time.sleep(0.2)


def firmware_attempts(text: str) -> list[str]:
    """SeaBIOS's "Booting from ..." lines as disk / cd / usb, in order."""
    found = []
    for line in re.findall(r'^Booting from ([^.\n]+)\.\.\.', text, re.MULTILINE):
        found.append('disk' if 'Hard Disk' in line else 'cd' if 'CD' in line else line.strip())
    return found


def boot_once(redfish: Redfish, console: t.Any, reset_type: str = 'On') -> tuple[dict[str, t.Any], list[str]]:
    """Power the VM on, wait for a marker medium to boot and power the VM off by itself; (the boot, firmware attempts)."""
    offset = console.size()
    redfish.reset(reset_type)
    console.wait_for(r'^L3M-ACTION ', BOOT_TIMEOUT, since=offset)
    redfish.wait_power('Off', 30, console)  # the guest's own halt, no Redfish call
    text = console.text(offset)
    boots = parse_boot(text)
    assert len(boots) == 1, text
    return boots[0], firmware_attempts(text.split('L3M-BOOT', 1)[0])


@pytest.fixture
def media(tmp_path, file_server):
    """Marker media on the file server: CD 1 lists what the guest sees, CD 2 and the disk only say that they booted."""
    for name, label, listing in (('cd1.iso', 'L3M_CD1', True), ('cd2.iso', 'L3M_CD2', False)):
        marker_iso(file_server.root / name, label, action='halt', list_media=listing)
    fat_image(file_server.root / 'task.img', 'L3M_TASK', {'recipe.json': b'{}'})
    return {name: file_server.url_for(name) for name in ('cd1.iso', 'cd2.iso', 'task.img')}, marker_iso(tmp_path / 'disk.iso', 'L3M_DISK', list_media=False)


def test_media_boot_override_and_power_follow_the_vm(vm_bmc_factory, media):
    """Two CDs and a USB stick, a one-time boot that reverts, a guest halt seen as Off, eject, a continuous override, Hdd."""
    urls, disk_image = media
    bmc = vm_bmc_factory(vms=[VmSpec(1, firmware='bios', memory_mib=256, nic=False, disk_gib=0.1, disk_image=disk_image)], vmedia=SLOTS)
    redfish, console = Redfish(bmc), bmc.console(0)
    system = bmc.system(0)
    assert system['PowerState'] == 'Off' and system['Boot']['BootSourceOverrideEnabled'] == 'Disabled'
    assert system['Model'] == 'l3metal lab VM' and system['SerialNumber'] == 'L3M-VM-0001'

    # three media: each slot reads back its image, the domain uses the very files the BMC downloaded
    for slot, name in (('Cd', 'cd1.iso'), ('Cd2', 'cd2.iso'), ('Usb', 'task.img')):
        redfish.insert(slot, urls[name])
        assert bmc.slot(slot)['Inserted'] is True and bmc.slot(slot)['Image'] == urls[name]
    downloads = bmc.downloads()
    assert sorted(d.name for d in downloads) == ['cd1.iso', 'cd2.iso', 'task.img']
    assert all(str(d) in bmc.domain_xml(0, inactive=True) for d in downloads)

    # one-time boot to the CD: CD 1 boots and the guest sees CD 2 and the USB medium; the override is used up at power-on
    redfish.boot('Cd', 'Once')
    assert redfish.override() == ('Cd', 'Once')
    booted, attempts = boot_once(redfish, console)
    assert booted['medium'] == 'L3M_CD1' and booted['platform'] == 'pc' and booted['action'] == 'halt', booted
    assert {'L3M_CD2', 'L3M_TASK', 'L3M_DISK'} <= set(booted['media'].values()), booted['media']
    assert attempts[:1] == ['cd'], attempts
    assert redfish.override() == ('None', 'Disabled')

    # the next power-on follows the default order: the disk first (the Once has reverted)
    booted, attempts = boot_once(redfish, console)
    assert booted['medium'] == 'L3M_DISK' and attempts[:1] == ['disk'], (booted, attempts)

    # eject CD 1: slot empty, its download deleted; a continuous CD override boots CD 2, and stays
    redfish.eject('Cd')
    assert bmc.slot('Cd')['Inserted'] is False and not bmc.slot('Cd').get('Image')
    assert sorted(d.name for d in bmc.downloads()) == ['cd2.iso', 'task.img']
    redfish.boot('Cd', 'Continuous')
    booted, attempts = boot_once(redfish, console)
    assert booted['medium'] == 'L3M_CD2' and attempts[:1] == ['cd'], (booted, attempts)
    assert redfish.override() == ('Cd', 'Continuous')

    # a one-time boot to the disk replaces it: the disk boots although CD 2 is still in, then the override is gone
    redfish.boot('Hdd', 'Once')
    booted, attempts = boot_once(redfish, console, 'ForceOn')
    assert booted['medium'] == 'L3M_DISK' and attempts[:1] == ['disk'], (booted, attempts)
    assert redfish.override() == ('None', 'Disabled')

    # every medium out: nothing downloaded is left, the drives stay (empty) for the next insert
    for slot in ('Cd2', 'Usb'):
        redfish.eject(slot)
    assert bmc.downloads() == []
    assert bmc.domain_xml(0, inactive=True).count("device='cdrom'") == 2


def test_bad_requests_are_refused_and_change_nothing(vm_bmc_factory):
    """Values a real BMC refuses are 400s naming the value; the stored override and the power stay as they were."""
    bmc = vm_bmc_factory(vms=[VmSpec(1, memory_mib=256, nic=False, disk_gib=0.1)], vmedia=SLOTS)
    redfish = Redfish(bmc)
    redfish.boot('Cd', 'Continuous')
    for body, named in (({'Boot': {'BootSourceOverrideTarget': 'Floppy'}}, 'Floppy'),
                        ({'Boot': {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Sometimes'}}, 'Sometimes'),
                        ({'Boot': {'BootSourceOverrideMode': 'BIOS'}}, 'BIOS'),
                        ({'Boot': {'BootSourceOverrideTarget': 'Cd'}, 'AssetTag': 'x'}, 'AssetTag')):
        response = redfish.call('PATCH', redfish.system, body)
        assert response.status_code == 400 and named in response.text, (body, response.status_code, response.text[:300])
    response = redfish.call('POST', redfish.system + '/Actions/ComputerSystem.Reset', {'ResetType': 'Bogus'})
    assert response.status_code == 400 and 'Bogus' in response.text
    response = redfish.call('POST', redfish.system + '/VirtualMedia/Cd3/Actions/VirtualMedia.InsertMedia', {'Image': 'http://127.0.0.1:1/x.iso'})
    assert 400 <= response.status_code < 500
    assert requests.get(bmc.url + redfish.system, timeout=10).status_code == 401  # no credentials
    assert redfish.override() == ('Cd', 'Continuous') and bmc.system(0)['PowerState'] == 'Off'
    allowed = bmc.system(0)['Actions']['#ComputerSystem.Reset']['ResetType@Redfish.AllowableValues']
    assert {'PowerCycle', 'PushPowerButton', 'ForceOff', 'On'} <= set(allowed)
    assert bmc.system(0)['Boot']['BootSourceOverrideTarget@Redfish.AllowableValues'] == ['None', 'Cd', 'Usb', 'Hdd']
    redfish.boot('None', 'Disabled')
    assert redfish.override() == ('None', 'Disabled')
