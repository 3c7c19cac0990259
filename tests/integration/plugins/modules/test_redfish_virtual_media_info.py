# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""redfish_virtual_media_info, TLS, and the single-CD path (task medium as a FAT image on a USB slot),
against the sushy-tools emulator."""

from __future__ import annotations

import json

from l3metal_lab.httpserver import sha256_of
from l3metal_lab.media import fat_files
from l3metal_lab.playbook import localhost_play

GROUP = 'group/l3metal.provision.redfish'
INFO = 'l3metal.provision.redfish_virtual_media_info'
VM = 'l3metal.provision.redfish_virtual_media'


def play(emulator, tasks, **defaults):
    return localhost_play(tasks, module_defaults={GROUP: emulator.module_defaults(**defaults)})


def test_info_lists_slots_and_suggests_two_cds(sushy_emulator, ansible_playbook):
    run = ansible_playbook(play(sushy_emulator, [{'name': 'info', INFO: {}}]), check=True).assert_ok()
    info = run.task('info').result
    assert info['changed'] is False
    assert [(s['id'], s['media_types'], s['mountable'], s['inserted']) for s in info['slots']] == [
        ('Cd', ['CD', 'DVD'], True, False), ('Cd2', ['CD', 'DVD'], True, False)]
    assert info['mountable'] == {'cd': 2, 'usb': 0}
    assert info['layout'] == {'boot': {'media_type': 'cd', 'slot': 1, 'slot_id': 'Cd'},
                              'task': {'media_type': 'cd', 'slot': 2, 'slot_id': 'Cd2', 'format': 'iso'}}
    assert info['virtual_media_path'] == sushy_emulator.system_path() + '/VirtualMedia'
    assert info['power_state'] == 'Off'
    assert info['boot_override']['pending'] is False and 'Cd' in info['boot_override']['allowed_targets']
    assert info['system']['manufacturer'] == 'Sushy Emulator'
    assert [q['key'] for q in info['quirks']] == ['sushy-emulator-override-enabled']


def test_tls_needs_the_ca_or_an_explicit_opt_out(sushy_emulator_tls, ansible_playbook):
    tasks = [
        {'name': 'with ca_path', INFO: {}},
        {'name': 'system trust store', INFO: {'ca_path': None}, 'ignore_errors': True},
        {'name': 'opt out', INFO: {'ca_path': None, 'validate_certs': False}},
        {'name': 'plain http to the TLS port', INFO: {'baseuri': sushy_emulator_tls.url.replace('https:', 'http:'), 'retries': 0},
         'ignore_errors': True},
    ]
    run = ansible_playbook(play(sushy_emulator_tls, tasks))
    assert run.task('with ca_path').status == 'ok'
    assert run.task('with ca_path').result['bmc'] == sushy_emulator_tls.url
    refused = run.task('system trust store')
    assert refused.status == 'ignored'
    assert refused.result['error_type'] == 'RedfishTLSError'
    assert 'CERTIFICATE_VERIFY_FAILED' in refused.result['msg'] and 'set ca_path' in refused.result['msg']
    assert run.task('opt out').status == 'ok'
    assert run.task('plain http to the TLS port').result['error_type'] == 'RedfishConnectionError'


def test_single_cd_bmc_takes_the_task_medium_as_fat_on_usb(sushy_emulator_tls, file_server, ansible_playbook, tmp_path):
    boot_url = file_server.add_file('maintenance.iso', b'MAINT' * 1000)
    recipe = {'task_target': 'install-linux.target', 'target_disk': '/dev/sda', 'oci_url': 'registry.example.com/os/ubuntu:24.04',
              'partition_layout': [{'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'mountpoint': '/'}]}
    tasks = [
        {'name': 'info', INFO: {}, 'register': 'vmedia'},
        {'name': 'build task medium', 'l3metal.provision.task_iso': {
            'dest': str(file_server.root) + "/task.{{ 'img' if vmedia.layout.task.format == 'fat' else 'iso' }}",
            'recipe': recipe, 'format': '{{ vmedia.layout.task.format }}'}},
        {'name': 'boot medium', VM: {'image_url': boot_url, 'media_type': '{{ vmedia.layout.boot.media_type }}',
                                     'slot': '{{ vmedia.layout.boot.slot }}'}},
        {'name': 'task medium', VM: {'image_url': file_server.url + "/task.{{ 'img' if vmedia.layout.task.format == 'fat' else 'iso' }}",
                                     'media_type': '{{ vmedia.layout.task.media_type }}', 'slot': '{{ vmedia.layout.task.slot }}'}},
        {'name': 'second cd', VM: {'image_url': boot_url, 'slot': 2}, 'ignore_errors': True},
    ]
    run = ansible_playbook(play(sushy_emulator_tls, tasks))
    info = run.task('info').result
    assert info['mountable'] == {'cd': 1, 'usb': 1}
    assert info['layout']['task'] == {'media_type': 'usb', 'slot': 1, 'slot_id': 'Usb', 'format': 'fat'}
    assert run.task('task medium').result['slot']['id'] == 'Usb'
    assert run.task('boot medium').result['slot']['id'] == 'Cd'
    usb = sushy_emulator_tls.slot('Usb')
    assert usb['Inserted'] is True and usb['Image'] == file_server.url + '/task.img'
    # the emulator downloaded the FAT image the controller built; it holds the recipe
    fetched = list((sushy_emulator_tls.workdir / 'tmp').rglob('task.img'))
    assert len(fetched) == 1 and sha256_of(fetched[0]) == sha256_of(file_server.root / 'task.img')
    on_medium = fat_files(fetched[0], tmp_path / 'fat')
    assert json.loads(on_medium['recipe.json'])['task_target'] == 'install-linux.target'
    # a second CD does not exist here; the error says where the task medium goes instead
    second = run.task('second cd')
    assert second.status == 'ignored'
    assert 'has 1 mountable cd slot' in second.result['msg'] and 'media_type usb as a FAT image' in second.result['msg']


def test_slots_follow_their_ids_whatever_order_the_emulator_lists(sushy_factory, file_server, ansible_playbook):
    """The emulator lists Cd2 before Cd (as iDRAC10 lists VirtualMedia/2 first): slot 1 is still Cd, for all modules."""
    emulator = sushy_factory(vmedia={'Cd2': {'Name': 'Virtual CD 2', 'MediaTypes': ['CD', 'DVD']},
                                     'Cd': {'Name': 'Virtual CD', 'MediaTypes': ['CD', 'DVD']}})
    listed = [m['@odata.id'].rsplit('/', 1)[-1] for m in emulator.get(emulator.system_path() + '/VirtualMedia')['Members']]
    assert listed == ['Cd2', 'Cd']  # what the BMC lists
    boot = file_server.add_file('maintenance.iso', b'M' * 2048)
    tasks = [{'name': 'info', INFO: {}},
             {'name': 'boot medium', VM: {'image_url': boot, 'media_type': '{{ info.layout.boot.media_type }}',
                                          'slot': '{{ info.layout.boot.slot }}'}, 'register': 'boot_medium'}]
    tasks[0]['register'] = 'info'
    run = ansible_playbook(play(emulator, tasks)).assert_ok()
    info = run.task('info').result
    assert [s['id'] for s in info['slots']] == ['Cd', 'Cd2']
    assert info['layout']['boot'] == {'media_type': 'cd', 'slot': 1, 'slot_id': 'Cd'}
    assert run.task('boot medium').result['slot']['id'] == 'Cd'
    assert emulator.slot('Cd')['Image'] == boot and not emulator.slot('Cd2')['Image']
