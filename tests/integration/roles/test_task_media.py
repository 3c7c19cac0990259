# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Role task_media on its own, against the real receiver: idempotent, check mode, and a lost medium of a queued job;
in directory mode (the receiver's media directory is visible) and in upload mode (forced, or auto where the receiver's
file system is not the controller's)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest

from l3metal_lab.media import pycdlib_tree
from l3metal_lab.playbook import localhost_play
from l3metal_lab.receiver import LINUX_RECIPE, Receiver, unique_serial


def play(receiver, serial: str, **variables):
    tasks = [{'name': 'task medium', 'ansible.builtin.include_role': {'name': 'l3metal.provision.task_media'},
              'vars': dict({'task_media_server_serial': serial, 'task_media_recipe': LINUX_RECIPE,
                            'task_media_user_data': '#cloud-config\n'}, **variables)}]
    return localhost_play(tasks, module_defaults={'group/l3metal.provision.receiver': {'url': receiver.url}})


def fact(run) -> dict:
    return [t.result['ansible_facts']['task_media_result'] for t in run.tasks if 'task_media_result' in (t.result.get('ansible_facts') or {})][-1]


UPLOAD_TASK = 'Upload the task medium to the webhook receiver'


def ran(run, name: str) -> list:
    """The results of the role's task ``name`` that ran (were not skipped)."""
    return [task for task in run.tasks if task.task.endswith(' : ' + name) and task.status != 'skipped']


def test_idempotent_check_mode_and_lost_medium(shared_receiver, ansible_playbook):
    receiver, serial = shared_receiver, unique_serial()

    check = ansible_playbook(play(receiver, serial), check=True).assert_ok()
    assert fact(check)['job_id'] is None and fact(check)['image_url'] is None
    assert receiver.list_jobs(serial=serial) == []

    first = ansible_playbook(play(receiver, serial)).assert_ok()
    medium = fact(first)
    assert medium['created'] and medium['built'] and medium['status'] == 'queued'
    assert medium['file_name'] == serial + '-task.iso' and medium['image_url'] == medium['media_url'] + medium['file_name']
    # auto (the default) with the media directory visible on the build host: written there, not uploaded
    assert medium['uploaded'] is False and ran(first, UPLOAD_TASK) == []
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


# ------------------------------------------------------------------------------------------------ upload mode

def stored_media(receiver: Receiver, job_id: str) -> list[dict[str, t.Any]]:
    return t.cast(list[dict[str, t.Any]], receiver.expect(200, 'GET', '/api/v1/jobs/%s/media' % job_id)['media'])


def downloaded(receiver: Receiver, image_url: str, tmp_path: Path) -> tuple[bytes, dict[str, bytes]]:
    """What the BMC gets from the image URL (a GET without credentials), and the files on it."""
    assert image_url.startswith(receiver.url)
    response = receiver.request('GET', image_url[len(receiver.url):], auth=False)
    assert response.status == 200, response
    path = tmp_path / ('downloaded-%s.iso' % hashlib.sha256(response.body).hexdigest()[:12])
    path.write_bytes(response.body)
    return response.body, pycdlib_tree(path, 'rr')


@pytest.fixture
def scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The controller's temporary directory for the run (TMPDIR of ansible-playbook and its modules): empty after each run
    proves the scratch copy of the medium (it holds the token) is removed."""
    directory = tmp_path / 'controller-tmp'
    directory.mkdir()
    return directory, {'TMPDIR': str(directory)}


def test_upload_mode_builds_on_the_controller_uploads_and_is_idempotent(shared_receiver, ansible_playbook, scratch, tmp_path):
    receiver, serial = shared_receiver, unique_serial()
    scratch_dir, env = scratch

    check = ansible_playbook(play(receiver, serial, task_media_upload=True), check=True, env=env).assert_ok()
    assert fact(check)['job_id'] is None and receiver.list_jobs(serial=serial) == [] and list(scratch_dir.iterdir()) == []

    first = ansible_playbook(play(receiver, serial, task_media_upload=True), env=env, extra_args=['-vvv']).assert_ok()
    medium = fact(first)
    assert medium['created'] and medium['built'] and medium['uploaded'] is True and medium['path'] is None
    assert medium['image_url'] == medium['media_url'] + serial + '-task.iso'
    [upload] = [task.result for task in ran(first, UPLOAD_TASK)]
    assert upload['changed'] and upload['url'] == medium['image_url']
    # the medium was built in a scratch directory under the controller's TMPDIR, and that directory is gone
    assert upload['invocation']['module_args']['src'].startswith(str(scratch_dir) + '/l3metal-task-media.')
    assert list(scratch_dir.iterdir()) == []
    # the BMC's GET returns exactly the bytes that were built (their sha256, computed by the module from the built file)
    body, on_medium = downloaded(receiver, medium['image_url'], tmp_path)
    assert hashlib.sha256(body).hexdigest() == upload['sha256'] and len(body) == upload['size']
    recipe = json.loads(on_medium['recipe.json'])
    assert recipe['callback']['job_id'] == medium['job_id'] and on_medium['user-data'] == b'#cloud-config\n'
    assert len(recipe['callback']['token']) >= 20 and leaks(first, recipe['callback']['token']) == []  # -vvv printed no token
    [stored] = stored_media(receiver, medium['job_id'])
    assert stored['name'] == serial + '-task.iso' and stored['sha256'] == upload['sha256']

    # the job is still queued and the receiver holds the medium: nothing is rebuilt, reissued or uploaded
    second = ansible_playbook(play(receiver, serial, task_media_upload=True), env=env).assert_ok()
    assert second.changed == [] and fact(second)['job_id'] == medium['job_id'] and not fact(second)['built']
    assert fact(second)['image_url'] == medium['image_url'] and fact(second)['path'] is None
    assert ran(second, UPLOAD_TASK) == []

    again = ansible_playbook(play(receiver, serial, task_media_upload=True), check=True, env=env).assert_ok()
    assert again.changed == [] and not fact(again)['built']
    assert stored_media(receiver, medium['job_id']) == [stored] and list(scratch_dir.iterdir()) == []
    assert receiver.request('GET', medium['image_url'][len(receiver.url):], auth=False).body == body
    assert receiver.get_job(medium['job_id'])['status'] == 'queued'
    # the medium's token is the job's: the receiver takes the node's report signed with it
    progress = {'status': 'progress', 'step': 'x.service', 'state': 'started'}
    assert receiver.send_webhook({'server_serial': serial, 'token': recipe['callback']['token']}, progress).status == 200


def test_upload_mode_gives_a_queued_job_without_its_medium_a_new_token_and_uploads(shared_receiver, ansible_playbook, scratch, tmp_path):
    """Lost, in upload mode: the receiver does not hold the medium, as after a run that registered the job and stopped
    before its upload (here: the job registered over the API with the recipe the role registers, its token thrown away)."""
    receiver, serial = shared_receiver, unique_serial()
    scratch_dir, env = scratch
    recipe = dict(LINUX_RECIPE, user_data=base64.b64encode(b'#cloud-config\n').decode())
    earlier = receiver.create_job(serial, recipe)

    before = receiver.snapshot()
    check = ansible_playbook(play(receiver, serial, task_media_upload='true'), check=True, env=env).assert_ok()
    assert fact(check)['job_id'] == earlier['job_id'] and stored_media(receiver, earlier['job_id']) == []
    assert receiver.snapshot() == before  # check mode reissued nothing (the token is a column of the job's row)
    progress = {'status': 'progress', 'step': 'x.service', 'state': 'started'}

    run = ansible_playbook(play(receiver, serial, task_media_upload='true'), env=env).assert_ok()
    medium = fact(run)
    assert medium['job_id'] == earlier['job_id'] and not medium['created'] and medium['built'] and medium['uploaded']
    _body, on_medium = downloaded(receiver, medium['image_url'], tmp_path)
    new_token = json.loads(on_medium['recipe.json'])['callback']['token']
    assert new_token != earlier['token'] and list(scratch_dir.iterdir()) == []
    assert receiver.send_webhook(earlier, progress).status == 401
    assert receiver.send_webhook({'server_serial': serial, 'token': new_token}, progress).status == 200

    # provisioning now, medium held: a re-run leaves it alone
    again = ansible_playbook(play(receiver, serial, task_media_upload='true'), env=env).assert_ok()
    assert again.changed == [] and not fact(again)['built']


def test_a_refused_upload_fails_naming_src_and_removes_the_scratch_copy(receiver_factory, ansible_playbook, scratch):
    receiver = receiver_factory(extra_args=['--max-medium-bytes', '4096'])  # a task ISO is far larger
    serial = unique_serial()
    scratch_dir, env = scratch
    run = ansible_playbook(play(receiver, serial, task_media_upload=True), env=env)
    assert run.rc == 2 and 'larger than the receiver takes (4096 bytes' in run.output
    [upload] = ran(run, UPLOAD_TASK)
    assert upload.failed and upload.result['msg'].startswith('src: ')
    assert list(scratch_dir.iterdir()) == []
    [job] = receiver.list_jobs(serial=serial)
    assert stored_media(receiver, job['job_id']) == []


# ------------------------------------------------------------------------------------------------ auto where the media dir is not visible

class PrivateMediaReceiver(Receiver):
    """The receiver process in a mount namespace of its own, with a tmpfs mounted over its --media-dir: it creates, writes
    and serves its media there, while every other process (the controller, ansible-playbook) sees the empty directory
    beneath.  The controller then does not share the receiver's file system - as an AWX pod, or a controller on another
    host - with the receiver still on 127.0.0.1."""

    def argv(self) -> list[str]:
        mount = 'mount -t tmpfs -o mode=0755 l3metal-private-media "$0" && exec "$@"'
        return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', mount, str(self.media_dir)] + super().argv()


def private_mounts_work() -> bool:
    if shutil.which('unshare') is None:
        return False
    return subprocess.run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs none /mnt'],
                          capture_output=True, check=False).returncode == 0


def test_auto_uploads_when_the_build_host_does_not_see_the_media_dir(tmp_path, ansible_playbook, scratch):
    if not private_mounts_work():
        pytest.skip('needs mount namespaces (unshare --mount and mount -t tmpfs) to give the receiver a media dir the controller cannot see')
    receiver = PrivateMediaReceiver(tmp_path / 'private-receiver').start()
    try:
        serial = unique_serial()
        scratch_dir, env = scratch
        run = ansible_playbook(play(receiver, serial), env=env).assert_ok()   # task_media_upload: auto, the default
        medium = fact(run)
        job = receiver.get_job(medium['job_id'])
        # the premise: the receiver has the job's media dir (it serves from it), the controller does not see it
        assert job['media_dir'].startswith(str(receiver.media_dir)) and not os.path.exists(job['media_dir'])
        assert medium['uploaded'] is True and medium['built'] and medium['path'] is None
        [upload] = [task.result for task in ran(run, UPLOAD_TASK)]
        body, on_medium = downloaded(receiver, medium['image_url'], tmp_path)
        assert hashlib.sha256(body).hexdigest() == upload['sha256'] and json.loads(on_medium['recipe.json'])['callback']['job_id'] == job['job_id']
        # still nothing on the controller's side of the media dir, though the receiver wrote the file to serve it
        assert list(receiver.media_dir.iterdir()) == [] and list(scratch_dir.iterdir()) == []

        second = ansible_playbook(play(receiver, serial), env=env).assert_ok()
        assert second.changed == [] and fact(second)['uploaded'] is True and not fact(second)['built']
        check = ansible_playbook(play(receiver, serial), check=True, env=env).assert_ok()
        assert check.changed == [] and len(stored_media(receiver, job['job_id'])) == 1
    finally:
        receiver.stop()
