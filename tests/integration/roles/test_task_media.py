# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Role task_media on its own, against the real receiver: idempotent, check mode, and a lost medium of a queued job."""

from __future__ import annotations

import json
import os
from pathlib import Path

from l3metal_lab.media import pycdlib_tree
from l3metal_lab.playbook import localhost_play
from l3metal_lab.receiver import LINUX_RECIPE, unique_serial


def play(receiver, serial: str, **variables):
    tasks = [{'name': 'task medium', 'ansible.builtin.include_role': {'name': 'l3metal.provision.task_media'},
              'vars': dict({'task_media_server_serial': serial, 'task_media_recipe': LINUX_RECIPE,
                            'task_media_user_data': '#cloud-config\n'}, **variables)}]
    return localhost_play(tasks, module_defaults={'group/l3metal.provision.receiver': {'url': receiver.url}})


def fact(run) -> dict:
    return [t.result['ansible_facts']['task_media_result'] for t in run.tasks if 'task_media_result' in (t.result.get('ansible_facts') or {})][-1]


def test_idempotent_check_mode_and_lost_medium(shared_receiver, ansible_playbook):
    receiver, serial = shared_receiver, unique_serial()

    check = ansible_playbook(play(receiver, serial), check=True).assert_ok()
    assert fact(check)['job_id'] is None and fact(check)['image_url'] is None
    assert receiver.list_jobs(serial=serial) == []

    first = ansible_playbook(play(receiver, serial)).assert_ok()
    medium = fact(first)
    assert medium['created'] and medium['built'] and medium['status'] == 'queued'
    assert medium['file_name'] == serial + '-task.iso' and medium['image_url'] == medium['media_url'] + medium['file_name']
    assert oct(os.stat(medium['path']).st_mode & 0o777) == '0o640'
    on_medium = pycdlib_tree(medium['path'], 'rr')
    recipe = json.loads(on_medium['recipe.json'])
    assert recipe['callback']['job_id'] == medium['job_id'] and on_medium['user-data'] == b'#cloud-config\n'
    # the BMC downloads it from the job's media URL
    assert receiver.request('GET', medium['image_url'][len(receiver.url):]).body == Path(medium['path']).read_bytes()

    second = ansible_playbook(play(receiver, serial)).assert_ok()
    assert not second.changed and fact(second)['job_id'] == medium['job_id'] and not fact(second)['built']

    # the medium of a still queued job is lost: the job gets a new token and a new medium; the old token is dead
    os.unlink(medium['path'])
    third = ansible_playbook(play(receiver, serial)).assert_ok()
    assert fact(third)['job_id'] == medium['job_id'] and fact(third)['built']
    new_token = json.loads(pycdlib_tree(medium['path'], 'rr')['recipe.json'])['callback']['token']
    assert new_token != recipe['callback']['token']
    progress = {'status': 'progress', 'step': 'x.service', 'state': 'started'}
    assert receiver.send_webhook({'server_serial': serial, 'token': recipe['callback']['token']}, progress).status == 401
    assert receiver.send_webhook({'server_serial': serial, 'token': new_token}, progress).status == 200

    # a changed payload is a changed recipe: an error naming the active job, unless replacing is allowed
    changed = ansible_playbook(play(receiver, serial, task_media_user_data='#cloud-config\nhostname: other\n'))
    assert changed.rc == 2 and 'already has an active job %s' % medium['job_id'] in changed.output
    replaced = ansible_playbook(play(receiver, serial, task_media_user_data='#cloud-config\nhostname: other\n',
                                     task_media_replace_active_job=True)).assert_ok()
    assert fact(replaced)['job_id'] != medium['job_id'] and receiver.get_job(medium['job_id'])['status'] == 'complete'


def leaks(run, secret: str) -> list[str]:
    """The TASK headers under which ``secret`` appears in the run's output (empty: it does not)."""
    found, task = [], '(before the first task)'
    for line in (run.stdout + run.stderr).splitlines():
        if line.startswith('TASK ['):
            task = line
        if secret in line and task not in found:
            found.append(task)
    return found


def test_the_job_token_stays_out_of_verbose_output(shared_receiver, ansible_playbook):
    """``-vvv`` prints every registered result: the token (in the recipe provision_job returns) must not be among them."""
    receiver, serial = shared_receiver, unique_serial()
    first = ansible_playbook(play(receiver, serial), extra_args=['-vvv']).assert_ok()
    medium = fact(first)
    token = json.loads(pycdlib_tree(medium['path'], 'rr')['recipe.json'])['callback']['token']
    assert medium['built'] and len(token) >= 20 and leaks(first, token) == []

    # the reissue path returns a new token too
    os.unlink(medium['path'])
    again = ansible_playbook(play(receiver, serial), extra_args=['-vvv']).assert_ok()
    new_token = json.loads(pycdlib_tree(medium['path'], 'rr')['recipe.json'])['callback']['token']
    assert fact(again)['built'] and new_token != token and leaks(again, new_token) == []

    # what the module says when it fails still reaches the user (the result itself stays hidden)
    other = ansible_playbook(play(receiver, serial, task_media_user_data='#cloud-config\nhostname: other\n'), extra_args=['-vvv'])
    assert other.rc == 2 and 'already has an active job %s' % medium['job_id'] in other.output and leaks(other, new_token) == []
