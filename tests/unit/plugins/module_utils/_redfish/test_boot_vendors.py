# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Boot override quirks against replayed vendor JSON (the sushy-tools emulator has none of them)."""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.boot import BootManager
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.errors import RedfishHTTPError, RedfishUnsupportedError

VIRTUAL_OPTICAL = 'PciRoot(0x0)/Pci(0x14,0x0)/USB(0xD,0x0)/USB(0x0,0x0)/USB(0x2,0x0)/Unit(0x0)'


def set_override(client, target, once=True, mode=None):
    boot = BootManager(client)
    before = boot.read_override()
    plan = boot.plan(target, once, mode, before)
    if not boot.satisfied(plan, before):
        boot.apply(plan)
        boot.refresh()
    after = boot.read_override()
    boot.verify(plan, after)
    return plan, after, boot


def test_dell_boots_the_virtual_cd_through_its_boot_option(replay, connect):
    bmc = replay('dell_idrac9')
    plan, after, _boot = set_override(connect(bmc), 'cd')
    assert plan.payload == {'BootSourceOverrideTarget': 'UefiTarget', 'BootSourceOverrideEnabled': 'Once',
                            'UefiTargetBootSourceOverride': VIRTUAL_OPTICAL}
    assert 'Boot0004 (Virtual Optical Drive)' in plan.notes[0]
    assert after.target == 'UefiTarget' and after.uefi_target == VIRTUAL_OPTICAL and not after.pending
    # the floppy option ("Virtual Floppy Drive") is not mistaken for the CD
    assert [r.body for r in bmc.sent('PATCH')] == [{'Boot': plan.payload}]


def test_dell_legacy_mode_keeps_plain_cd(replay, connect):
    bmc = replay('dell_idrac9')
    bmc.get('/redfish/v1/Systems/System.Embedded.1')['Boot']['BootSourceOverrideMode'] = 'Legacy'
    plan, after, _boot = set_override(connect(bmc), 'cd')
    assert plan.payload == {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Once'}
    assert after.target == 'Cd' and bmc.sent('GET', 'BootOptions') == []


def test_idrac10_override_goes_to_the_settings_object_and_is_pending_until_reset(replay, connect):
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    client = connect(bmc)
    plan, after, boot = set_override(client, 'pxe')
    assert plan.path == '/redfish/v1/Systems/System.Embedded.1/Settings' and plan.via == 'settings'
    assert after.pending is True and after.target == 'Pxe' and after.source == plan.path
    assert bmc.get('/redfish/v1/Systems/System.Embedded.1')['Boot']['BootSourceOverrideTarget'] == 'None'
    # the allowed values come from the settings object (the system lists none)
    assert 'Pxe' in after.allowed_targets
    # idempotent while pending
    assert boot.satisfied(boot.plan('pxe', True, None, boot.read_override()), boot.read_override())
    reset = boot.reset('On')
    assert reset.sent == 'On'
    boot.refresh()
    applied = boot.read_override()
    assert applied.pending is False and applied.target == 'Pxe' and applied.source == '/redfish/v1/Systems/System.Embedded.1'


def test_idrac10_a_patch_on_the_system_would_be_refused(replay, connect):
    """What the recorded iDRAC10 says when Boot is PATCHed on the system (why the quirk exists)."""
    bmc = replay('dell_idrac10', rules=['boot_readonly'])
    client = connect(bmc)
    with pytest.raises(RedfishHTTPError) as caught:
        client.patch('/redfish/v1/Systems/System.Embedded.1', {'Boot': {'BootSourceOverrideTarget': 'Pxe'}})
    assert caught.value.message_ids() == ['Base.1.18.PropertyNotWritable'] and caught.value.status == 400


def test_hpe_override_refused_during_post_is_retried(replay, connect, sleeps):
    bmc = replay('hpe_ilo5')
    bmc.fail('PATCH', r'/Systems/1$', 'in_post', times=2)
    plan, after, _boot = set_override(connect(bmc), 'cd')
    assert plan.payload == {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Once'}
    assert len(bmc.sent('PATCH')) == 3 and sleeps == [1.0, 2.0]
    assert after.target == 'Cd' and after.enabled == 'Once'
    assert bmc.sent('PATCH')[-1].headers.get('If-Match') == 'W/"3A9C2B71"'  # the system's @odata.etag


def test_without_the_quirk_post_refusal_fails_with_a_hint(replay, connect):
    bmc = replay('hpe_ilo5')
    bmc.get('/redfish/v1/Systems/1/')['Manufacturer'] = 'Contoso'
    bmc.fail('PATCH', r'/Systems/1$', 'in_post', times=5)
    with pytest.raises(RedfishHTTPError, match='the server is in POST; retry once it has booted or is powered off'):
        set_override(connect(bmc), 'cd')
    assert len(bmc.sent('PATCH')) == 1


def test_supermicro_gets_the_full_boot_object_and_usb_cd(replay, connect):
    bmc = replay('supermicro_x12', rules=['boot_full_object'])
    client = connect(bmc)
    plan, after, boot = set_override(client, 'cd')
    assert plan.payload == {'BootSourceOverrideTarget': 'UsbCd', 'BootSourceOverrideEnabled': 'Once', 'BootSourceOverrideMode': 'UEFI'}
    assert after.target == 'UsbCd' and 'UsbCd' in plan.notes[0]
    plan, after, boot = set_override(client, 'none')
    assert plan.payload == {'BootSourceOverrideEnabled': 'Disabled', 'BootSourceOverrideTarget': 'UsbCd', 'BootSourceOverrideMode': 'UEFI'}
    assert after.enabled == 'Disabled'


def test_supermicro_partial_patch_is_what_the_quirk_prevents(replay, connect):
    bmc = replay('supermicro_x12', rules=['boot_full_object'])
    with pytest.raises(RedfishHTTPError, match='BootSourceOverrideMode is a required property'):
        connect(bmc).patch('/redfish/v1/Systems/1', {'Boot': {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Once'}})


def test_target_the_bmc_does_not_offer_and_reset_values(replay, connect):
    bmc = replay('dell_idrac9')
    client = connect(bmc)
    boot = BootManager(client)
    with pytest.raises(RedfishUnsupportedError, match=r'boot_target usb \(Usb\) is not offered .* it allows: None, Pxe, Floppy, Cd'):
        boot.plan('usb', True, None, boot.read_override())
    assert boot.reset('ForceOff').skipped == 'the system is already Off'
    assert boot.reset('GracefulRestart').sent == 'On'
    assert [r.body for r in bmc.sent('POST', 'Reset')] == [{'ResetType': 'On'}]


def test_dell_prefers_boot_next_when_offered_and_keeps_cd_for_continuous(replay, connect):
    bmc = replay('dell_idrac9')
    bmc.get('/redfish/v1/Systems/System.Embedded.1')['Boot']['BootSourceOverrideTarget@Redfish.AllowableValues'].append('UefiBootNext')
    client = connect(bmc)
    plan, after, _boot = set_override(client, 'cd')
    assert plan.payload == {'BootSourceOverrideTarget': 'UefiBootNext', 'BootSourceOverrideEnabled': 'Once', 'BootNext': 'Boot0004'}
    assert after.boot_next == 'Boot0004'
    plan, after, _boot = set_override(client, 'cd', once=False)
    assert plan.payload == {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Continuous'}
    assert 'continuous override cannot use the UEFI device path' in plan.notes[0]
