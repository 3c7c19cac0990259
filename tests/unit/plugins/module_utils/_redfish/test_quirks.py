# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The quirks table: well-formed entries, and which entries each vendor's recorded system gets."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._redfish import quirks as q
from ansible_collections.l3metal.provision.tests.unit.plugins.module_utils._redfish.replay_bmc import FIXTURES


def system_of(fixture: str) -> dict:
    resources = json.loads((FIXTURES / (fixture + '.json')).read_text())['resources']
    return next(body for path, body in resources.items() if re.search(r'/Systems/[^/]+/?$', path))


def test_every_entry_is_well_formed():
    keys = [quirk.key for quirk in q.QUIRKS]
    assert len(keys) == len(set(keys))
    for quirk in q.QUIRKS:
        assert re.fullmatch(r'[a-z0-9]+(-[a-z0-9]+)+', quirk.key), quirk.key
        assert quirk.effect in q.EFFECTS, quirk.key
        assert '\n' not in quirk.reason and 40 <= len(quirk.reason) <= 140 and quirk.reason.endswith('.'), quirk.key
        re.compile(quirk.manufacturer)
        re.compile(quirk.model)
        if quirk.arg:
            re.compile(quirk.arg)
    # every effect the code knows is used by at least one entry
    assert {quirk.effect for quirk in q.QUIRKS} == set(q.EFFECTS)


@pytest.mark.parametrize('fixture, expected', [
    ('dell_idrac9', ['dell-sys446-transient', 'dell-eject-not-effective', 'dell-cd-boot-physical-drive']),
    ('dell_idrac10', ['dell-sys446-transient', 'dell-eject-not-effective', 'dell-cd-boot-physical-drive', 'dell-idrac10-boot-settings']),
    ('hpe_ilo5', ['hpe-boot-during-post', 'hpe-slot-map']),
    ('lenovo_xcc', ['lenovo-upload-only-slots', 'lenovo-patch-mount']),
    ('supermicro_x12', ['supermicro-stale-image', 'supermicro-insert-image-only', 'supermicro-full-boot-object', 'supermicro-usb-cd']),
])
def test_recorded_systems_get_their_entries(fixture, expected):
    system = system_of(fixture)
    active = q.ActiveQuirks.for_system(system['Manufacturer'], system['Model'], system)
    assert active.keys() == expected


def test_unknown_vendor_gets_nothing_and_slot_patterns_match_ids():
    assert q.ActiveQuirks.for_system('Contoso', 'Model 1', {}).keys() == []
    assert q.ActiveQuirks.for_system(None, None).keys() == []
    lenovo = q.ActiveQuirks.for_system('Lenovo', 'ThinkSystem SR630', {})
    assert lenovo.slot_matches(q.SKIP_SLOTS, 'RDOC1') and lenovo.slot_matches(q.SKIP_SLOTS, 'Remote3')
    assert not lenovo.slot_matches(q.SKIP_SLOTS, 'EXT1') and lenovo.slot_matches(q.PATCH_MOUNT_SLOTS, 'EXT1')
    # "HP" (older ProLiant) matches the HPE rows, "HPC Systems" does not
    assert q.ActiveQuirks.for_system('HP', 'ProLiant DL380 Gen9', {}).has(q.RETRY_BOOT_PATCH_DURING_POST)
    assert not q.ActiveQuirks.for_system('HPC Systems', 'x', {}).has(q.RETRY_BOOT_PATCH_DURING_POST)


def test_only_the_message_ids_the_table_marks_transient_are():
    dell = q.ActiveQuirks.for_system('Dell Inc.', 'PowerEdge R650', {})
    assert dell.matches(q.TRANSIENT_ERRORS, 'IDRAC.1.6.SYS446')
    assert not dell.matches(q.TRANSIENT_ERRORS, 'IDRAC.2.8.VRM0021') and not dell.matches(q.TRANSIENT_ERRORS, 'Base.1.2.InternalError')
    assert not q.ActiveQuirks.for_system('HPE', 'ProLiant', {}).matches(q.TRANSIENT_ERRORS, 'IDRAC.1.6.SYS446')


def test_the_stock_emulator_stores_no_override_frequency_the_lab_vm_bmc_does():
    """sushy-tools as shipped reports no Model and always Continuous; behind the lab's adapter (Model 'l3metal lab VM')
    Once is kept and read back like on a server, so the entry must not apply there (it would hide a lost Once)."""
    stock = q.ActiveQuirks.for_system('Sushy Emulator', None, {'Manufacturer': 'Sushy Emulator'})
    assert stock.keys() == ['sushy-emulator-override-enabled'] and stock.has(q.OVERRIDE_ENABLED_NOT_STORED)
    lab_vm = q.ActiveQuirks.for_system('Sushy Emulator', 'l3metal lab VM', {'Manufacturer': 'Sushy Emulator', 'Model': 'l3metal lab VM'})
    assert lab_vm.keys() == [] and not lab_vm.has(q.OVERRIDE_ENABLED_NOT_STORED)
