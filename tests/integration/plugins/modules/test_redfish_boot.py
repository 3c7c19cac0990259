# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""redfish_boot (and the whole media + boot flow) against the sushy-tools emulator (fake driver).

The fake driver applies a power change after a delay; the fixtures fix that delay (0 s by default,
a few seconds where a test waits for it) instead of the emulator's random 1-11 s.
"""

from __future__ import annotations

from l3metal_lab.playbook import localhost_play

GROUP = 'group/l3metal.provision.redfish'
BOOT = 'l3metal.provision.redfish_boot'
VM = 'l3metal.provision.redfish_virtual_media'
INFO = 'l3metal.provision.redfish_virtual_media_info'


def play(emulator, tasks, **defaults):
    return localhost_play(tasks, module_defaults={GROUP: emulator.module_defaults(**defaults)})


def flow(urls):
    """The provisioning sequence: two media, a one-time boot from the virtual CD, power on."""
    return [
        {'name': 'info', INFO: {}},
        {'name': 'boot medium', VM: {'image_url': urls[0], 'slot': 1}},
        {'name': 'task medium', VM: {'image_url': urls[1], 'slot': 2}},
        {'name': 'boot', BOOT: {'boot_target': 'cd', 'reset_type': 'On', 'wait_power_state': 'On', 'wait_timeout': 30}},
    ]


def test_full_flow_with_group_defaults_then_idempotent(sushy_emulator, file_server, ansible_playbook):
    """All three modules take the BMC connection from module_defaults of group/l3metal.provision.redfish."""
    urls = [file_server.add_file('maintenance.iso', b'M' * 4096), file_server.add_file('task.iso', b'T' * 2048)]
    run = ansible_playbook(play(sushy_emulator, flow(urls))).assert_ok()
    boot = run.task('boot').result
    assert boot['changed'] is True
    assert boot['boot_request'] == {'path': sushy_emulator.system_path(),
                                    'body': {'Boot': {'BootSourceOverrideTarget': 'Cd', 'BootSourceOverrideEnabled': 'Once'}}}
    assert boot['boot_override_before']['target'] != 'Cd'
    assert boot['boot_override']['target'] == 'Cd'
    assert boot['boot_override']['enabled'] == 'Continuous'  # what the emulator really keeps, reported as such
    assert boot['reset'] == {'requested': 'On', 'sent': 'On', 'skipped': None, 'power_state_before': 'Off'}
    assert boot['power_state'] == 'On' and boot['waited'] is not None
    system = sushy_emulator.system()
    assert system['PowerState'] == 'On' and system['Boot']['BootSourceOverrideTarget'] == 'Cd'
    assert sushy_emulator.slot('Cd2')['Image'] == urls[1]

    again = ansible_playbook(play(sushy_emulator, flow(urls))).assert_ok()
    assert not again.changed, [t.task for t in again.changed]
    assert again.task('boot').result['boot_request'] is None
    assert again.task('boot').result['reset']['skipped'] == 'the system is already On'
    # a restart of a running server is always an action: here the reset is what makes it changed
    restart = ansible_playbook(play(sushy_emulator, [{'name': 'restart', BOOT: {'reset_type': 'ForceRestart', 'wait_power_state': 'On'}}]))
    assert restart.task('restart').result['reset']['sent'] == 'ForceRestart' and restart.task('restart').changed


def test_check_mode_sends_nothing(sushy_emulator, ansible_playbook):
    mark = sushy_emulator.mark()
    task = {'name': 'boot', BOOT: {'boot_target': 'pxe', 'boot_once': False, 'reset_type': 'On', 'wait_power_state': 'On'}}
    run = ansible_playbook(play(sushy_emulator, [task]), check=True, diff=True).assert_ok()
    result = run.task('boot').result
    assert result['changed'] is True
    assert result['boot_request']['body'] == {'Boot': {'BootSourceOverrideTarget': 'Pxe', 'BootSourceOverrideEnabled': 'Continuous'}}
    assert result['boot_override']['target'] == 'Pxe' and result['reset']['sent'] == 'On'
    assert result['diff']['before']['power_state'] == 'Off' and result['diff']['after']['power_state'] == 'On'
    assert result['waited'] is None
    assert {r.method for r in sushy_emulator.requests_since(mark)} == {'GET'}
    assert sushy_emulator.system()['PowerState'] == 'Off'


def test_power_wait_has_a_deadline(sushy_factory, ansible_playbook):
    emulator = sushy_factory(power_delay=4)
    tasks = [
        {'name': 'too short', BOOT: {'reset_type': 'On', 'wait_power_state': 'On', 'wait_timeout': 1}, 'ignore_errors': True},
        {'name': 'long enough', BOOT: {'wait_power_state': 'On', 'wait_timeout': 30}},
        {'name': 'off', BOOT: {'reset_type': 'ForceOff', 'wait_power_state': 'Off', 'wait_timeout': 30}},
        {'name': 'restart while off', BOOT: {'reset_type': 'ForceRestart', 'wait_power_state': 'On', 'wait_timeout': 30}},
    ]
    run = ansible_playbook(play(emulator, tasks)).assert_ok()
    short = run.task('too short')
    assert short.status == 'ignored' and short.result['error_type'] == 'RedfishTimeoutError'
    assert 'still Off after 1 s; wanted On' in short.result['msg']
    assert run.task('long enough').result['power_state'] == 'On'
    assert run.task('long enough').result['changed'] is False  # waiting changes nothing
    off = run.task('off').result
    assert off['reset']['sent'] == 'ForceOff' and off['power_state'] == 'Off' and off['waited'] >= 1
    restart = run.task('restart while off').result
    assert restart['reset'] == {'requested': 'ForceRestart', 'sent': 'On', 'skipped': None, 'power_state_before': 'Off'}
    assert restart['power_state'] == 'On'
    # polling backs off: a few GETs per wait, not a busy loop
    assert len([r for r in emulator.requests() if r.method == 'GET']) < 50


def test_clear_override_and_bad_values(sushy_emulator, ansible_playbook):
    tasks = [
        {'name': 'set', BOOT: {'boot_target': 'pxe'}},
        {'name': 'clear', BOOT: {'boot_target': 'none'}},
        {'name': 'clear again', BOOT: {'boot_target': 'none'}},
        {'name': 'usb not offered', BOOT: {'boot_target': 'usb'}, 'ignore_errors': True},
        {'name': 'reset not offered', BOOT: {'reset_type': 'PushPowerButton'}, 'ignore_errors': True},
        {'name': 'nothing to do', BOOT: {}, 'ignore_errors': True},
    ]
    run = ansible_playbook(play(sushy_emulator, tasks))
    assert run.task('set').changed and run.task('clear').changed and not run.task('clear again').changed
    assert sushy_emulator.system()['Boot']['BootSourceOverrideTarget'] == 'None'
    usb = run.task('usb not offered').result['msg']
    assert 'boot_target usb (Usb) is not offered' in usb and 'Pxe, Cd, Hdd' in usb
    reset = run.task('reset not offered').result['msg']
    assert 'reset_type PushPowerButton is not offered' in reset and 'ForceRestart' in reset
    assert 'one of the following is required' in run.task('nothing to do').result['msg']


def test_request_count_for_boot_and_reset(sushy_emulator, ansible_playbook):
    mark = sushy_emulator.mark()
    task = {'name': 'boot', BOOT: {'boot_target': 'cd', 'reset_type': 'On', 'wait_power_state': 'On'}}
    ansible_playbook(play(sushy_emulator, [task])).assert_ok()
    sent = [(r.method, r.path.rsplit('/', 1)[-1]) for r in sushy_emulator.requests_since(mark)]
    system = sushy_emulator.system_ids[0]
    # root, Systems, system, PATCH override, read-back, reset, one poll (the emulator applies it at once here)
    assert sent == [('GET', ''), ('GET', 'Systems'), ('GET', system), ('PATCH', system), ('GET', system),
                    ('POST', 'ComputerSystem.Reset'), ('GET', system)]
