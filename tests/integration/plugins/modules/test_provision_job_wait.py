# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provision_job_wait through ansible-playbook, against a job the test drives as a node would."""

from __future__ import annotations

import concurrent.futures
import re

from l3metal_contract import webhook as _webhook
from l3metal_lab.playbook import localhost_play
from l3metal_lab.receiver import unique_serial
from l3metal_lab.waiting import wait_for


def wait_task(receiver, job_id, name='wait', **options):
    return {'name': name, 'l3metal.provision.provision_job_wait': dict({'url': receiver.url, 'job_id': job_id}, **options)}


def while_waiting(receiver, ansible_playbook, tasks, node, check=False):
    """Run the play; once its wait is parked on the receiver, play the node's part; return the play's result."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        play = pool.submit(ansible_playbook, localhost_play(tasks), check=check)
        wait_for(lambda: play.done() or receiver.expect(200, 'GET', '/healthz')['long_polls'] > 0, timeout=60, what='the wait to start')
        assert not play.done(), play.result().output
        node()
        return play.result(timeout=120)


def test_waits_for_success_and_prints_progress_as_it_comes(ansible_playbook, shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    receiver.set_status(job['job_id'], 'provisioning')
    sender = receiver.sender(job)

    def node():
        for step in ('partition.service', 'image-linux.service'):
            sender.send(_webhook.progress_body(step, 'started'))
            sender.send(_webhook.progress_body(step, 'done'))
        sender.send(_webhook.success_body())

    result = while_waiting(receiver, ansible_playbook, [dict(wait_task(receiver, job['job_id'], timeout=120), register='outcome')], node)
    result.assert_ok()
    outcome = result.task('wait').result
    assert outcome['status'] == 'succeeded' and outcome['failed_step'] is None and not outcome['changed']
    assert [(e['step'], e['state']) for e in outcome['events'] if e['type'] == 'progress'] == [
        ('partition.service', 'started'), ('partition.service', 'done'), ('image-linux.service', 'started'), ('image-linux.service', 'done')]
    lines = [line for line in result.stdout.splitlines() if 'job %s' % job['job_id'] in line]
    shown = [re.sub(r' \(\d+\.\d s\)$', ' (N s)', line.split('  ')[-1]) for line in lines]
    # a finished step shows how long it took (from its 'started' event)
    assert shown == [
        'status queued (controller)', 'status provisioning (controller)', 'partition.service started', 'partition.service done (N s)',
        'image-linux.service started', 'image-linux.service done (N s)', 'status succeeded (node)']


def test_failure_returns_step_reason_and_log_tail(ansible_playbook, shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    quiet = receiver.create_job(unique_serial())

    def node():
        receiver.sender(job).send(_webhook.failed_body('bootloader-linux.service', 'grub-install exited 1', 'grub-install: error: no EFI dir\n'))
        receiver.sender(quiet).send(_webhook.failed_body('partition.service', 'sgdisk failed'))

    tasks = [dict(wait_task(receiver, job['job_id'], timeout=120), ignore_errors=True),
             dict(wait_task(receiver, quiet['job_id'], name='lenient', fail_on_failed=False))]
    result = while_waiting(receiver, ansible_playbook, tasks, node).assert_ok()
    failed = result.task('wait')
    assert failed.status == 'ignored'
    assert failed.result['msg'] == ('job %s (serial %s) failed at bootloader-linux.service: grub-install exited 1; the last journal lines '
                                    'are in log_tail' % (job['job_id'], job['server_serial']))
    assert (failed.result['failed_step'], failed.result['log_tail']) == ('bootloader-linux.service', 'grub-install: error: no EFI dir\n')
    lenient = result.task('lenient')
    assert lenient.status == 'ok' and lenient.result['status'] == 'failed' and lenient.result['failed_step'] == 'partition.service'


def test_deadline_and_unreachable_statuses(ansible_playbook, shared_receiver):
    receiver = shared_receiver
    slow = receiver.create_job(unique_serial())
    receiver.set_status(slow['job_id'], 'provisioning')
    receiver.sender(slow).send(_webhook.progress_body('image-linux.service', 'started'))
    closed = receiver.create_job(unique_serial())
    receiver.set_status(closed['job_id'], 'complete')
    tasks = [dict(wait_task(receiver, slow['job_id'], timeout=2), ignore_errors=True),
             dict(wait_task(receiver, closed['job_id'], name='closed'), ignore_errors=True),
             dict(wait_task(receiver, 'no-such-job', name='missing'), ignore_errors=True),
             dict(wait_task(receiver, slow['job_id'], name='provisioning', until=['provisioning']))]
    result = ansible_playbook(localhost_play(tasks), check=True).assert_ok()  # waiting only reads: check mode waits too
    late = result.task('wait')
    assert late.status == 'ignored' and late.result['status'] == 'provisioning'
    assert 'is still provisioning after 2 s (deadline), last progress: image-linux.service started at' in late.result['msg']
    assert 2 <= late.result['elapsed'] < 30
    assert 'is complete and can no longer become succeeded or failed' in result.task('closed').result['msg']
    assert 'HTTP 404' in result.task('missing').result['msg']
    assert result.task('provisioning').result['status'] == 'provisioning'
