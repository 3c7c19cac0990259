# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""redfish_virtual_media through ansible-playbook against the sushy-tools emulator (fake driver).

The emulator really downloads every inserted image from the lab file server, so the tests also
check what it fetched.  Slot state is asserted by reading the emulator directly, not through the module.
"""

from __future__ import annotations

import time

from l3metal_lab.playbook import localhost_play

GROUP = 'group/l3metal.provision.redfish'
VM = 'l3metal.provision.redfish_virtual_media'


def play(emulator, tasks, **defaults):
    """One play whose Redfish connection comes from module_defaults of the action group."""
    return localhost_play(tasks, module_defaults={GROUP: emulator.module_defaults(**defaults)})


def media(file_server):
    return {
        'boot': file_server.add_file('maintenance.iso', b'MAINT' * 2000),
        'task': file_server.add_file('task.iso', b'TASK' * 500),
        'other': file_server.add_file('other.iso', b'OTHER' * 300),
    }


def insert_both(urls):
    return [
        {'name': 'boot medium', VM: {'image_url': urls['boot'], 'media_type': 'cd', 'slot': 1}},
        {'name': 'task medium', VM: {'image_url': urls['task'], 'media_type': 'cd', 'slot': 2}},
    ]


def downloads(file_server, name):
    return [r for r in file_server.requests if r.path == '/' + name and r.method == 'GET' and r.status in (200, 206)]


def test_two_media_inserted_once_then_idempotent(sushy_emulator, file_server, ansible_playbook):
    urls = media(file_server)
    first = ansible_playbook(play(sushy_emulator, insert_both(urls))).assert_ok()
    boot, task = first.task('boot medium').result, first.task('task medium').result
    assert boot['changed'] and task['changed']
    assert boot['slot']['id'] == 'Cd' and task['slot']['id'] == 'Cd2'
    assert task['slot']['image'] == urls['task'] and task['slot']['inserted'] is True
    assert task['actions'] == ['insert %s into slot Cd2' % urls['task']]
    assert [s['id'] for s in task['slots']] == ['Cd', 'Cd2']
    assert task['auth_method'] == 'basic'  # the emulator offers no SessionService
    # the BMC itself shows both media, and fetched each image
    assert sushy_emulator.slot('Cd')['Image'] == urls['boot'] and sushy_emulator.slot('Cd')['Inserted'] is True
    assert sushy_emulator.slot('Cd2')['Image'] == urls['task']
    assert len(downloads(file_server, 'maintenance.iso')) == 1 and len(downloads(file_server, 'task.iso')) == 1

    second = ansible_playbook(play(sushy_emulator, insert_both(urls))).assert_ok()
    assert not second.changed, [t.task for t in second.changed]
    assert second.task('task medium').result['actions'] == []
    assert len(downloads(file_server, 'task.iso')) == 1  # nothing was inserted again


def test_check_mode_and_diff_change_nothing(sushy_emulator, file_server, ansible_playbook):
    urls = media(file_server)
    run = ansible_playbook(play(sushy_emulator, insert_both(urls)), check=True, diff=True).assert_ok()
    task = run.task('task medium').result
    assert task['changed'] is True
    assert task['slot']['image'] == urls['task']  # predicted
    assert task['diff']['before']['slots']['Cd2']['image'] is None
    assert task['diff']['after']['slots']['Cd2']['image'] == urls['task']
    assert 'Cd2' in run.stdout and urls['task'] in run.stdout  # the diff is shown
    for slot_id in ('Cd', 'Cd2'):
        assert sushy_emulator.slot(slot_id)['Inserted'] is False
    assert file_server.requests == []
    assert not [r for r in sushy_emulator.requests() if r.method != 'GET']


def test_other_image_is_replaced_and_eject_all(sushy_emulator, file_server, ansible_playbook):
    urls = media(file_server)
    tasks = insert_both(urls) + [
        {'name': 'replace', VM: {'image_url': urls['other'], 'slot': 2}},
        {'name': 'eject all', VM: {'state': 'absent', 'eject_all': True}},
        {'name': 'eject all again', VM: {'state': 'absent', 'eject_all': True}},
    ]
    run = ansible_playbook(play(sushy_emulator, tasks), diff=True).assert_ok()
    replace = run.task('replace').result
    assert replace['changed'] is True
    assert replace['actions'] == ['eject %s from slot Cd2' % urls['task'], 'insert %s into slot Cd2' % urls['other']]
    assert replace['diff']['before']['slots']['Cd2']['image'] == urls['task']
    assert replace['diff']['after']['slots'] == {'Cd': {'image': urls['boot'], 'inserted': True, 'write_protected': True},
                                                 'Cd2': {'image': urls['other'], 'inserted': True, 'write_protected': True}}
    assert len(downloads(file_server, 'other.iso')) == 1
    eject = run.task('eject all').result
    assert eject['changed'] is True and 'slot' not in eject
    assert sorted(eject['actions']) == sorted(['eject %s from slot Cd' % urls['boot'], 'eject %s from slot Cd2' % urls['other']])
    assert run.task('eject all again').result['changed'] is False
    assert all(not sushy_emulator.slot(s)['Inserted'] and not sushy_emulator.slot(s)['Image'] for s in ('Cd', 'Cd2'))
    # each slot got one EjectMedia (the replace's and eject_all's), never a blind repeat
    ejects = [r.path.split('/')[-3] for r in sushy_emulator.requests() if r.path.endswith('EjectMedia')]
    assert sorted(ejects) == ['Cd', 'Cd2', 'Cd2']


def test_absent_ejects_one_slot_only_when_it_holds_the_image(sushy_emulator, file_server, ansible_playbook):
    urls = media(file_server)
    tasks = insert_both(urls) + [
        {'name': 'not this image', VM: {'state': 'absent', 'slot': 1, 'image_url': urls['task']}},
        {'name': 'eject slot 2', VM: {'state': 'absent', 'slot': 2}},
        {'name': 'again', VM: {'state': 'absent', 'slot': 2}},
    ]
    run = ansible_playbook(play(sushy_emulator, tasks)).assert_ok()
    assert run.task('not this image').result['changed'] is False
    assert run.task('eject slot 2').result['changed'] is True
    assert run.task('again').result['changed'] is False
    assert sushy_emulator.slot('Cd')['Image'] == urls['boot']
    assert sushy_emulator.slot('Cd2')['Inserted'] is False


def test_image_that_404s_surfaces_the_bmc_error(sushy_emulator, file_server, ansible_playbook):
    urls = media(file_server)
    missing = file_server.url_for('missing.iso')
    ansible_playbook(play(sushy_emulator, [{'name': 'boot', VM: {'image_url': urls['boot']}}])).assert_ok()
    run = ansible_playbook(play(sushy_emulator, [{'name': 'missing', VM: {'image_url': missing}}]))
    assert run.rc != 0
    result = run.task('missing').result
    assert 'got error 404' in result['msg']  # the BMC's own message
    assert 'InsertMedia' in result['request'] and result['http_status'] == 400
    assert missing in result['msg']
    # the slot held another image: it was ejected for the insert and put back after the failure
    assert 'was inserted again' in result['msg']
    assert sushy_emulator.slot('Cd')['Image'] == urls['boot']


def test_wrong_password_is_a_clear_401(sushy_emulator, ansible_playbook):
    run = ansible_playbook(play(sushy_emulator, [{'name': 'bad', VM: {'image_url': 'http://127.0.0.1:1/x.iso'}}], password='Wr0ng-Pa55-x7'))
    assert run.rc != 0
    result = run.task('bad').result
    assert 'rejected the credentials' in result['msg'] and "user 'admin'" in result['msg'] and '401' in result['msg']
    assert result['http_status'] == 401 and result['error_type'] == 'RedfishAuthError'
    assert 'Wr0ng-Pa55-x7' not in run.stdout  # no_log


def test_unreachable_bmc_fails_within_the_timeout(silent_bmc, unused_port, ansible_playbook):
    tasks = [
        {'name': 'hangs', VM: {'baseuri': 'http://127.0.0.1:%d' % silent_bmc.port, 'image_url': 'http://x/a.iso', 'timeout': 2,
                               'retries': 0}, 'ignore_errors': True},
        {'name': 'refused', VM: {'baseuri': '127.0.0.1:%d' % unused_port, 'image_url': 'http://x/a.iso', 'retries': 1},
         'ignore_errors': True},
    ]
    start = time.monotonic()
    run = ansible_playbook(localhost_play(tasks))
    elapsed = time.monotonic() - start
    assert run.task('hangs').status == run.task('refused').status == 'ignored'  # failed, ignore_errors
    hangs, refused = run.task('hangs').result, run.task('refused').result
    assert 'did not answer within 2 s' in hangs['msg'] and str(silent_bmc.port) in hangs['msg']
    assert 'connection refused' in refused['msg'] and refused['bmc'] == 'https://127.0.0.1:%d' % unused_port
    assert hangs['error_type'] == refused['error_type'] == 'RedfishConnectionError'
    # 2 s timeout, no retry; one retry after 1 s for the refused port; the rest is ansible-playbook start-up
    assert elapsed < 20


def test_missing_slot_lists_what_the_bmc_has(sushy_emulator, ansible_playbook):
    tasks = [
        {'name': 'usb', VM: {'image_url': 'http://x/task.img', 'media_type': 'usb'}, 'ignore_errors': True},
        {'name': 'slot3', VM: {'image_url': 'http://x/a.iso', 'slot': 3}, 'ignore_errors': True},
    ]
    run = ansible_playbook(play(sushy_emulator, tasks))
    msg = run.task('usb').result['msg']
    assert 'media_type=usb slot=1' in msg and '0 mountable usb slots' in msg and 'Cd (CD/DVD)' in msg and 'Cd2 (CD/DVD)' in msg
    assert run.task('usb').result['error_type'] == 'RedfishSelectionError'
    assert 'has 2 mountable cd slots' in run.task('slot3').result['msg']


def test_bad_input_fails_before_any_request(sushy_emulator, ansible_playbook):
    mark = sushy_emulator.mark()
    tasks = [
        {'name': 'eject_all present', VM: {'image_url': 'http://x/a.iso', 'eject_all': True}, 'ignore_errors': True},
        {'name': 'slot 0', VM: {'image_url': 'http://x/a.iso', 'slot': 0}, 'ignore_errors': True},
        {'name': 'no url', VM: {'state': 'present'}, 'ignore_errors': True},
        {'name': 'credentials in url', VM: {'baseuri': 'https://u:p@bmc.example.com', 'image_url': 'http://x/a.iso'},
         'ignore_errors': True},
    ]
    run = ansible_playbook(play(sushy_emulator, tasks))
    assert 'state: absent' in run.task('eject_all present').result['msg']
    assert 'counted from 1' in run.task('slot 0').result['msg']
    assert 'image_url' in run.task('no url').result['msg']
    assert 'must not contain credentials' in run.task('credentials in url').result['msg']
    assert sushy_emulator.requests_since(mark) == []


def test_request_count_per_operation(sushy_emulator, file_server, ansible_playbook):
    """Each operation reads the tree once: no re-reading of the whole tree per call, no extra GET for ETags."""
    urls = media(file_server)
    mark = sushy_emulator.mark()
    ansible_playbook(play(sushy_emulator, [{'name': 'insert', VM: {'image_url': urls['boot']}}])).assert_ok()
    insert = sushy_emulator.requests_since(mark)
    # service root, Systems collection, the system, VirtualMedia collection, 2 slots, InsertMedia, read-back of the slot
    assert [(r.method, r.path.rsplit('/', 1)[-1]) for r in insert] == [
        ('GET', ''), ('GET', 'Systems'), ('GET', sushy_emulator.system_ids[0]), ('GET', 'VirtualMedia'), ('GET', 'Cd'), ('GET', 'Cd2'),
        ('POST', 'VirtualMedia.InsertMedia'), ('GET', 'Cd')]

    mark = sushy_emulator.mark()
    ansible_playbook(play(sushy_emulator, [{'name': 'again', VM: {'image_url': urls['boot']}}])).assert_ok()
    assert len(sushy_emulator.requests_since(mark)) == 6  # reads only

    mark = sushy_emulator.mark()
    ansible_playbook(play(sushy_emulator, [{'name': 'by id', VM: {'image_url': urls['boot'], 'system_id': sushy_emulator.system_ids[0]}}]))
    assert len(sushy_emulator.requests_since(mark)) == 5  # system_id given: no Systems collection
