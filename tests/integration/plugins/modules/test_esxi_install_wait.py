# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""esxi_install_wait through ansible-playbook against the real receiver and the sushy-tools emulator: whichever of the
report and the power-off comes first ends the wait; the BMC connection comes from the play's module_defaults."""

from __future__ import annotations

import threading
import time
import typing as t

import requests

from l3metal_lab.playbook import localhost_play

TASK = 'l3metal.provision.esxi_install_wait'


def play(lab, job_id: str, redfish: bool = True, **options: t.Any) -> list[dict[str, t.Any]]:
    defaults: dict[str, t.Any] = {'group/l3metal.provision.receiver': {'url': lab.receiver.url}}
    if redfish:
        host = lab.host_vars(0)
        defaults['group/l3metal.provision.redfish'] = {'baseuri': host['bmc_address'], 'username': host['bmc_username'],
                                                       'password': host['bmc_password'], 'system_id': host['bmc_system_id'],
                                                       'validate_certs': False}
    return localhost_play([{'name': 'wait', TASK: dict({'job_id': job_id, 'timeout': 60}, **options)}], module_defaults=defaults)


def later(seconds: float, action: t.Callable[[], t.Any]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def provisioning_job(lab) -> dict[str, t.Any]:
    job = lab.receiver.create_job('DEMO-0001', recipe={'task_target': 'install-esxi.target'})
    lab.receiver.set_status(job['job_id'], 'provisioning')
    return job


def reset(lab, reset_type: str) -> None:
    response = requests.post(lab.bmc.url + lab.bmc.system_path(0) + '/Actions/ComputerSystem.Reset', json={'ResetType': reset_type},
                             auth=lab.bmc.auth, verify=False, timeout=10)
    response.raise_for_status()


def test_the_report_ends_the_wait_while_the_power_stays_on(provisioning_lab_factory, ansible_playbook):
    lab = provisioning_lab_factory(nodes=1)
    reset(lab, 'On')
    job = provisioning_job(lab)
    sender = later(3, lambda: lab.receiver.send_webhook(job, {'status': 'success'}))
    run = ansible_playbook(play(lab, job['job_id'])).assert_ok()
    sender.join()
    result = run.task('wait').result
    assert result['ended_by'] == 'report' and result['status'] == 'succeeded' and result['power_state'] == 'On'
    assert 0 < result['elapsed'] < 15 and result['power_off_after'] is None
    assert [event['status'] for event in result['events'] if event['type'] == 'status'] == ['queued', 'provisioning', 'succeeded']
    assert 'status succeeded' in run.stdout and run.stdout.count('status provisioning') == 1  # each event shown once


def test_the_power_off_ends_the_wait(provisioning_lab_factory, ansible_playbook):
    lab = provisioning_lab_factory(nodes=1)
    reset(lab, 'On')
    job = provisioning_job(lab)
    later(3, lambda: reset(lab, 'ForceOff'))
    result = ansible_playbook(play(lab, job['job_id'])).assert_ok().task('wait').result
    assert result['ended_by'] == 'power_off' and result['power_state'] == 'Off' and result['status'] == 'provisioning'
    assert 0 < result['power_off_after'] < 15


def test_a_job_closed_meanwhile_and_the_deadline(provisioning_lab_factory, ansible_playbook):
    lab = provisioning_lab_factory(nodes=1)
    reset(lab, 'On')
    job = provisioning_job(lab)
    later(2, lambda: lab.receiver.set_status(job['job_id'], 'complete'))
    closed = ansible_playbook(play(lab, job['job_id'])).assert_ok().task('wait').result
    assert closed['ended_by'] == 'closed' and closed['status'] == 'complete'
    other = provisioning_job(lab)
    late = ansible_playbook(play(lab, other['job_id'], timeout=3)).assert_ok().task('wait')
    assert late.result['ended_by'] == 'timeout' and not late.failed
    assert late.result['msg'] == ('job %s (serial DEMO-0001) is still provisioning after 3 s: no report from the host and no power-off seen '
                                  '(last power state On)' % other['job_id'])


def test_without_a_bmc_connection_it_says_what_to_set(provisioning_lab_factory, ansible_playbook):
    lab = provisioning_lab_factory(nodes=1)
    job = provisioning_job(lab)
    run = ansible_playbook(play(lab, job['job_id'], redfish=False))
    assert run.rc == 2 and 'bmc: no BMC connection - set module_defaults for group/l3metal.provision.redfish' in run.task('wait').result['msg']
    report_only = ansible_playbook(play(lab, job['job_id'], redfish=False, watch_power=False, timeout=2)).assert_ok().task('wait')
    assert report_only.result['ended_by'] == 'timeout' and report_only.result['power_state'] is None
    assert lab.bmc_requests() == []  # watch_power=false: the BMC heard nothing


def test_an_unreachable_bmc_fails_after_five_tries(provisioning_lab_factory, ansible_playbook):
    lab = provisioning_lab_factory(nodes=1)
    job = provisioning_job(lab)
    bmc = {'baseuri': 'https://127.0.0.1:9', 'username': 'u', 'password': 'p', 'timeout': 2, 'retries': 0, 'validate_certs': False}
    run = ansible_playbook(play(lab, job['job_id'], bmc=bmc, interval=0.2))
    result = run.task('wait').result
    assert run.rc == 2 and '127.0.0.1:9' in result['msg'], result
