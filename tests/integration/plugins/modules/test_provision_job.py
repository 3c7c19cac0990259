# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provision_job through ansible-playbook against a real receiver: register (idempotent, check mode,
token returned once), transitions, and task_iso fed with the returned recipe."""

from __future__ import annotations

import json

import pytest

from l3metal_contract import webhook as _webhook
from l3metal_lab.media import pycdlib_tree
from l3metal_lab.playbook import localhost_play
from l3metal_lab.receiver import FIRMWARE_RECIPE, LINUX_RECIPE, unique_serial

from ansible_collections.l3metal.provision.plugins.module_utils._receiver import ReceiverClient, TransitionRefused, ensure_status


def job_task(receiver, name='job', **options):
    args = dict({'url': receiver.url}, **options)
    if receiver.api_token and 'api_token' not in options:
        args['api_token'] = receiver.api_token
    return {'name': name, 'l3metal.provision.provision_job': args, 'register': name}


def run(ansible_playbook, tasks, check=False, diff=False, extra_vars=None):
    return ansible_playbook(localhost_play(tasks), check=check, diff=diff, extra_vars=extra_vars)


def test_register_is_idempotent_returns_the_token_once_and_feeds_task_iso(ansible_playbook, receiver_factory, tmp_path):
    receiver = receiver_factory(api_token='api-token-for-playbooks')
    serial = unique_serial()
    register = job_task(receiver, server_serial=serial, recipe='{{ recipe }}')
    medium = {'name': 'medium', 'l3metal.provision.task_iso': {'dest': '{{ job.media_dir }}/task.iso', 'recipe': '{{ job.recipe }}'},
              'when': 'job.token is not none'}

    check = run(ansible_playbook, [register], check=True, diff=True, extra_vars={'recipe': LINUX_RECIPE}).assert_ok()
    assert check.task('job').changed and check.task('job').result['created'] is True
    assert check.task('job').result['job_id'] is None
    assert receiver.list_jobs() == []

    first = run(ansible_playbook, [register, medium], extra_vars={'recipe': LINUX_RECIPE}).assert_ok()
    result = first.task('job').result
    assert result['changed'] and result['created'] and result['status'] == 'queued'
    job_id, token = result['job_id'], result['token']
    assert result['callback'] == {'url': receiver.url, 'job_id': job_id, 'token': token, 'serial': serial}
    assert token not in first.stdout
    assert 'loopback address: servers cannot reach it' in ' '.join(result.get('warnings', []))
    # the medium holds the recipe with its callback, at the per-job media URL
    recipe_on_medium = json.loads(pycdlib_tree(receiver.media_dir / 'jobs' / job_id / 'task.iso', 'rr')['recipe.json'])
    assert recipe_on_medium['callback'] == result['callback']
    medium_url = result['media_url'] + 'task.iso'
    assert receiver.request('GET', medium_url[len(receiver.url):]).status == 200

    # the same recipe, written differently (key order, case of sizes): found, unchanged, no token
    equivalent = dict(reversed(list(LINUX_RECIPE.items())))
    equivalent['partition_layout'] = [dict(p, size=p['size'].lower()) for p in LINUX_RECIPE['partition_layout']]
    second = run(ansible_playbook, [register, medium], extra_vars={'recipe': equivalent}).assert_ok()
    again = second.task('job').result
    assert not again['changed'] and again['job_id'] == job_id and again['token'] is None and again['recipe'] is None
    assert second.task('medium').status == 'skipped'
    assert run(ansible_playbook, [register], check=True, extra_vars={'recipe': LINUX_RECIPE}).assert_ok().task('job').changed is False

    # the medium is lost while queued: a new token on request, the old one stops working
    reissue = dict(register, **{'l3metal.provision.provision_job': dict(register['l3metal.provision.provision_job'], reissue_token=True)})
    third = run(ansible_playbook, [reissue], extra_vars={'recipe': LINUX_RECIPE}).assert_ok()
    new = third.task('job').result
    assert new['changed'] and not new['created'] and new['token'] not in (None, token) and new['job_id'] == job_id
    assert receiver.send_webhook({'server_serial': serial, 'token': token}, _webhook.success_body()).status == 401
    assert len(receiver.list_jobs(serial=serial)) == 1


def test_different_recipe_fails_unless_forced(ansible_playbook, receiver):
    serial = unique_serial()
    receiver.create_job(serial, FIRMWARE_RECIPE)
    other = dict(FIRMWARE_RECIPE, firmware_url='http://firmware.example.com/bios-2.0.bin')
    refused = run(ansible_playbook, [job_task(receiver, server_serial=serial, recipe=other)])
    assert refused.rc != 0
    assert 'different recipe' in refused.task('job').result['msg'] and 'force' in refused.task('job').result['msg']
    assert len(receiver.list_jobs(serial=serial)) == 1

    forced = run(ansible_playbook, [job_task(receiver, server_serial=serial, recipe=other, force=True)], diff=True).assert_ok()
    result = forced.task('job').result
    assert result['changed'] and result['created'] and result['replaced_job_id']
    assert receiver.get_job(result['replaced_job_id'])['status'] == 'complete'
    assert result['diff']['before']['status'] == 'queued' and result['diff']['after'] == {'job_id': result['job_id'], 'status': 'queued'}


def test_transitions_with_check_mode_and_idempotency(ansible_playbook, receiver):
    serial = unique_serial()
    job = receiver.create_job(serial)
    by_id = job_task(receiver, job_id=job['job_id'], state='provisioning')

    check = run(ansible_playbook, [by_id], check=True, diff=True).assert_ok()
    assert check.task('job').changed and check.task('job').result['status'] == 'provisioning'
    assert check.task('job').result['diff'] == {'before': {'job_id': job['job_id'], 'status': 'queued'},
                                                'after': {'job_id': job['job_id'], 'status': 'provisioning'}}
    assert receiver.get_job(job['job_id'])['status'] == 'queued'

    assert run(ansible_playbook, [by_id]).assert_ok().task('job').changed
    assert receiver.get_job(job['job_id'])['status'] == 'provisioning'
    assert not run(ansible_playbook, [by_id]).assert_ok().task('job').changed

    receiver.sender(job).send(_webhook.success_body())
    # the node reported its outcome before the playbook marked the job provisioning (a fast node, a slow controller):
    # the job is past that, nothing changes and the play goes on to wait for the outcome it already has
    overtaken = run(ansible_playbook, [by_id]).assert_ok().task('job')
    assert not overtaken.changed and overtaken.result['status'] == 'succeeded'
    assert receiver.get_job(job['job_id'])['status'] == 'succeeded'

    by_serial = job_task(receiver, server_serial=serial, state='complete')
    assert run(ansible_playbook, [by_serial]).assert_ok().task('job').result['status'] == 'complete'
    # no active job left: completing again changes nothing
    again = run(ansible_playbook, [by_serial]).assert_ok().task('job')
    assert not again.changed and again.result['job'] is None


def test_controller_side_failure(ansible_playbook, receiver):
    serial = unique_serial()
    job = receiver.create_job(serial)
    failed = run(ansible_playbook, [job_task(receiver, server_serial=serial, state='failed', failed_step='redfish-boot',
                                             reason='InsertMedia answered 500')]).assert_ok()
    assert failed.task('job').result['status'] == 'failed'
    stored = receiver.get_job(job['job_id'])
    assert (stored['failed_step'], stored['reason']) == ('redfish-boot', 'InsertMedia answered 500')


def test_failed_mark_of_a_job_its_node_took_to_an_outcome(ansible_playbook, receiver):
    """state=failed after the node reported (a play that gave up waiting just before the report, issue 17): a success
    cannot become failed, and the failed task's result holds the job as the receiver has it, for the play to go on with
    the node's outcome; a node's failure stays as the node reported it."""
    succeeded, failed = receiver.create_job(unique_serial()), receiver.create_job(unique_serial())
    receiver.sender(succeeded).send(_webhook.success_body())
    receiver.sender(failed).send(_webhook.failed_body('image-linux.service', 'digest mismatch', 'sha256 mismatch'))
    marks = [dict(job_task(receiver, name=name, job_id=job['job_id'], state='failed', failed_step='provision-wait', reason='deadline'),
                  ignore_errors=True) for name, job in (('succeeded', succeeded), ('failed', failed))]
    result = run(ansible_playbook, marks)

    refused = result.task('succeeded')
    assert refused.status == 'ignored' and 'a job that is succeeded cannot become failed' in refused.result['msg']
    assert refused.result['status'] == 'succeeded' and refused.result['job_id'] == succeeded['job_id']
    assert refused.result['job'] == receiver.get_job(succeeded['job_id']) and refused.result['job']['failed_step'] is None
    kept = result.task('failed')
    assert kept.status == 'ok' and not kept.changed and kept.result['status'] == 'failed'
    assert (kept.result['job']['failed_step'], kept.result['job']['reason']) == ('image-linux.service', 'digest mismatch')
    stored = receiver.get_job(failed['job_id'])
    assert (stored['status'], stored['failed_step'], stored['reason']) == ('failed', 'image-linux.service', 'digest mismatch')


def test_failed_mark_refused_by_the_receiver_reads_the_job_back(receiver):
    """The node's success lands between the backend's read of the job (provisioning) and its change: the receiver
    refuses the change (409 transition_refused), and the error carries the job read back, not just the message."""
    job = receiver.create_job(unique_serial())
    receiver.set_status(job['job_id'], 'provisioning')

    class ReportFirst(ReceiverClient):
        def set_status(self, job_id, status, failed_step=None, reason=None):
            receiver.sender(job).send(_webhook.success_body())  # the node, just before the controller's change
            return super().set_status(job_id, status, failed_step, reason)

    with pytest.raises(TransitionRefused) as caught:
        ensure_status(ReportFirst(receiver.url), 'failed', job['job_id'], failed_step='provision-wait', reason='deadline')
    assert caught.value.status == 409 and caught.value.problem['code'] == 'transition_refused'
    assert caught.value.job['status'] == 'succeeded' and caught.value.job == receiver.get_job(job['job_id'])


def test_bad_input_fails_with_a_clear_message(ansible_playbook, receiver_factory, unused_port):
    receiver = receiver_factory(api_token='right-token')
    bad_recipe = dict(LINUX_RECIPE, target_disk='sda')
    cases = [
        (job_task(receiver, server_serial='XF-1', recipe=bad_recipe), 'target_disk'),
        (job_task(receiver, server_serial='XF-1', recipe=dict(FIRMWARE_RECIPE, callback={'url': 'http://x', 'job_id': 'j', 'token': 'x' * 20})),
         'callback: is filled in by the webhook receiver'),
        (job_task(receiver, server_serial='bad serial', recipe=FIRMWARE_RECIPE), 'server_serial'),
        (job_task(receiver, server_serial='XF-1', recipe=FIRMWARE_RECIPE, api_token='wrong'), 'not the token the receiver was started with'),
        ({'name': 'job', 'l3metal.provision.provision_job': {'url': 'http://127.0.0.1:%d' % unused_port, 'server_serial': 'XF-1',
                                                             'recipe': FIRMWARE_RECIPE}}, 'cannot reach the webhook receiver'),
        (job_task(receiver, job_id='no-such-job', state='complete'), 'HTTP 404'),
        (job_task(receiver, server_serial='XF-NONE', state='provisioning'), 'has no active job'),
        (job_task(receiver, server_serial='XF-1', state='failed'), 'failed_step'),
    ]
    tasks = [dict(task, name='case-%d' % n, ignore_errors=True) for n, (task, _message) in enumerate(cases)]
    result = run(ansible_playbook, tasks)
    for n, (_task, message) in enumerate(cases):
        outcome = result.task('case-%d' % n)
        assert outcome.status == 'ignored', message
        assert message in outcome.result['msg'], (message, outcome.result['msg'])
    assert 'Traceback' not in result.stdout + result.stderr
    assert receiver.list_jobs() == []


def test_url_and_token_from_module_defaults_and_environment(ansible_playbook, receiver_factory, monkeypatch):
    receiver = receiver_factory(api_token='token-from-env')
    monkeypatch.setenv('L3METAL_RECEIVER_API_TOKEN', 'token-from-env')
    serial = unique_serial()
    play = localhost_play([{'name': 'job', 'l3metal.provision.provision_job': {'server_serial': serial, 'recipe': FIRMWARE_RECIPE},
                            'register': 'job'}],
                          module_defaults={'group/l3metal.provision.receiver': {'url': receiver.url}})
    assert ansible_playbook(play).assert_ok().task('job').result['created']
