# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/provision_linux.yml (roles provision_node, task_media, redfish_media_boot, provision_wait) through real
services: the webhook receiver, the sushy-tools emulator (which really downloads both media), and simulated nodes that
read the downloaded task medium with the real dispatcher and report with the real ``provisioner notify``."""

from __future__ import annotations

import json
import typing as t

import pycdlib
import pytest

from l3metal_lab.lab import MAINTENANCE_ISO, role_task, serial
from l3metal_lab.sushy import ONE_CD_AND_USB

OCI_URL = 'registry.example.com/os-images/ubuntu-rootfs:24.04'
USER_DATA = '#cloud-config\nhostname: {{ inventory_hostname }}\n'
FAST = {'provision_serial': '100%', 'provision_max_fail_percentage': 100, 'provision_timeout': 90}


def node_result(run, host: str) -> dict[str, t.Any]:
    """The role's ``provision_node_result`` for ``host`` (its 'Sum up' task)."""
    found = [task.result['ansible_facts']['provision_node_result'] for task in run.tasks
             if task.host == host and 'provision_node_result' in (task.result.get('ansible_facts') or {})]
    assert found, run.output
    return found[-1]


def history(lab, job_id: str) -> list[str]:
    return [event['status'] for event in lab.receiver.events(job_id) if event['type'] == 'status']


def read_iso(path: str) -> dict[str, bytes]:
    import io  # pylint: disable=import-outside-toplevel
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        files = {}
        for name in ('recipe.json', 'user-data'):
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path='/' + name)
            files[name] = out.getvalue()
        return files
    finally:
        iso.close()


def test_one_node_succeeds_one_fails(provisioning_lab, collection_playbook):
    """The demo's flow: both servers in one batch; node-01 reports success, node-02 fails at bootloader-linux.service."""
    lab = provisioning_lab
    inventory = lab.write_inventory(provision_oci_url=OCI_URL, provision_user_data=USER_DATA)
    good = lab.simulate(0)
    bad = lab.simulate(1, fail_step='bootloader-linux.service')

    run = collection_playbook('provision_linux', inventory, FAST)
    assert run.rc == 2, run.output  # one host failed
    good_report, bad_report = good.result(), bad.result()

    ok = node_result(run, 'node-01')
    assert ok['outcome'] == 'succeeded' and ok['status'] == 'complete' and ok['failed_step'] is None
    assert history(lab, ok['job_id']) == ['queued', 'provisioning', 'succeeded', 'complete']
    progress = ['%s %s' % (e['step'], e['state']) for e in lab.receiver.events(ok['job_id']) if e['type'] == 'progress']
    assert progress[0] == 'provision-dispatcher.service done'
    assert [p for p in progress if p.endswith(' done')][1:] == ['%s done' % s for s in good_report['steps']]
    assert good_report['steps'] == ['partition.service', 'image-linux.service', 'bootloader-linux.service', 'config-drive.service']
    # what the BMC downloaded: the maintenance ISO on CD 1, this job's task medium on CD 2, which holds this job's callback
    assert ok['boot_medium']['id'] == 'Cd' and ok['boot_medium']['image'] == lab.maintenance_iso_url
    assert ok['task_medium']['id'] == 'Cd2' and ok['task_medium']['image'].endswith('/%s-task.iso' % serial(0))
    assert 'downloaded by the BMC' in good_report['medium_source']
    medium = read_iso(good_report['medium'])
    recipe = json.loads(medium['recipe.json'])
    assert recipe['callback']['job_id'] == ok['job_id'] and recipe['callback']['serial'] == serial(0)
    assert recipe['oci_url'] == OCI_URL and 'user_data' not in recipe
    assert medium['user-data'] == b'#cloud-config\nhostname: node-01\n'
    # cleanup: everything ejected, one-time boot from the disk, restarted
    assert lab.inserted(0) == {}
    assert lab.system(0)['Boot']['BootSourceOverrideTarget'] == 'Hdd' and lab.system(0)['PowerState'] == 'On'
    assert len(ok['ejected']) == 2
    # the job's media URL ends with the job
    assert lab.receiver.request('GET', ok['task_medium']['image'].split(lab.receiver.url, 1)[1]).status == 410

    failed = node_result(run, 'node-02')
    assert failed['outcome'] == 'failed' and failed['failed_step'] == 'bootloader-linux.service'
    assert bad_report['outcome'] == 'failed'
    job = lab.receiver.get_job(failed['job_id'])
    assert job['status'] == 'complete' and job['failed_step'] == 'bootloader-linux.service'
    assert 'grub-install: error: cannot find EFI directory.' in job['log_tail']
    assert history(lab, failed['job_id']) == ['queued', 'provisioning', 'failed', 'complete']
    # the media stay in for debugging (provision_eject_after_failure=true ejects them: test_failure_ejects_by_option)
    assert lab.inserted(1) == {'Cd': lab.maintenance_iso_url, 'Cd2': failed['task_medium']['image']} and failed['ejected'] == []
    # after_failure defaults to none: no reset, the node stays on the maintenance OS (override still Cd)
    assert lab.system(1)['Boot']['BootSourceOverrideTarget'] == 'Cd'
    report = role_task(run, "Report the node's failure")
    assert report.host == 'node-02' and report.failed
    assert 'failed at bootloader-linux.service' in report.result['msg'] and 'media left in for debugging' in report.result['msg']
    assert [t.host for t in run.failed] == ['node-02']
    journal = role_task(run, "Show the node's last journal lines", 'node-02')
    assert 'grub-install: error: cannot find EFI directory.' in journal.result['msg']


def test_failure_ejects_by_option(provisioning_lab_factory, collection_playbook):
    """provision_eject_after_failure=true: a failed node's media are ejected like a successful one's; the job is closed."""
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(provision_oci_url=OCI_URL, provision_eject_after_failure=True)
    lab.simulate(0, fail_step='image-linux.service')
    run = collection_playbook('provision_linux', inventory, FAST)
    assert run.rc == 2, run.output
    failed = node_result(run, 'node-01')
    assert failed['outcome'] == 'failed' and failed['failed_step'] == 'image-linux.service' and len(failed['ejected']) == 2
    assert lab.inserted(0) == {} and lab.receiver.get_job(failed['job_id'])['status'] == 'complete'
    assert 'media ejected, job complete' in role_task(run, "Report the node's failure").result['msg']


def test_kick_off_twice_then_collect(provisioning_lab_factory, collection_playbook):
    """provision_wait=false starts the job and returns; a second such run changes nothing (no second reboot of a node
    that may be installing); a run that waits collects the outcome and cleans up; a run after that changes nothing."""
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(provision_oci_url=OCI_URL)
    kick_off = dict(FAST, provision_wait=False)

    first = collection_playbook('provision_linux', inventory, kick_off).assert_ok()
    started = node_result(first, 'node-01')
    assert started['outcome'] == 'started' and started['status'] == 'provisioning' and started['booted']
    assert lab.inserted(0) == {'Cd': lab.maintenance_iso_url, 'Cd2': started['task_medium']['image']}
    resets = [r for r in lab.changing_requests() if r.endswith('ComputerSystem.Reset')]
    assert len(resets) == 1

    mark = len(lab.changing_requests())
    second = collection_playbook('provision_linux', inventory, kick_off).assert_ok()
    assert not second.changed, [(t.task, t.result) for t in second.changed]
    assert lab.changing_requests()[mark:] == []
    again = node_result(second, 'node-01')
    assert again['job_id'] == started['job_id'] and not again['booted']
    assert len(lab.jobs(0)) == 1

    node = lab.simulate(0)  # the node boots now (the reset is already in the BMC's log)
    collect = collection_playbook('provision_linux', inventory, FAST).assert_ok()
    done = node_result(collect, 'node-01')
    assert node.result()['outcome'] == 'succeeded'
    assert done['job_id'] == started['job_id'] and done['outcome'] == 'succeeded' and done['status'] == 'complete'
    assert not done['booted']  # the collecting run did not reset the node again
    assert history(lab, done['job_id']) == ['queued', 'provisioning', 'succeeded', 'complete']
    assert lab.inserted(0) == {}

    # the server ran this recipe well: a new run leaves it alone (no job, nothing but reads at the BMC) ...
    mark = len(lab.changing_requests())
    rerun = collection_playbook('provision_linux', inventory, FAST).assert_ok()
    assert not rerun.changed, [(t.task, t.result) for t in rerun.changed]
    unchanged = node_result(rerun, 'node-01')
    assert unchanged['outcome'] == 'unchanged' and unchanged['job_id'] == done['job_id'] and unchanged['status'] == 'complete'
    assert lab.changing_requests()[mark:] == [] and len(lab.jobs(0)) == 1
    # ... unless asked to install again, or the recipe changed
    again = collection_playbook('provision_linux', inventory, dict(kick_off, provision_reinstall=True)).assert_ok()
    assert node_result(again, 'node-01')['job_id'] != done['job_id'] and node_result(again, 'node-01')['booted']
    assert len(lab.jobs(0)) == 2


def test_check_mode_changes_nothing(provisioning_lab, collection_playbook):
    """--check reads the BMC and reports what it would do; no job is registered and nothing is sent to the BMC."""
    lab = provisioning_lab
    inventory = lab.write_inventory(provision_oci_url=OCI_URL)
    run = collection_playbook('provision_linux', inventory, FAST, check=True).assert_ok()
    assert lab.receiver.list_jobs() == []
    assert lab.changing_requests() == []
    assert role_task(run, 'Register the job with the webhook receiver').changed
    assert role_task(run, 'Boot medium on the first virtual CD').changed
    assert role_task(run, 'Boot once from the virtual media and reset').changed
    assert node_result(run, 'node-01')['outcome'] == 'started'


def test_single_cd_bmc_gets_a_fat_medium_on_usb(provisioning_lab_factory, collection_playbook):
    """A BMC with one virtual CD: the task medium is built as FAT and inserted into the removable slot; the node reads it."""
    lab = provisioning_lab_factory(nodes=1, vmedia=ONE_CD_AND_USB)
    inventory = lab.write_inventory(provision_oci_url=OCI_URL, provision_after_success='power_off')
    node = lab.simulate(0)
    run = collection_playbook('provision_linux', inventory, FAST).assert_ok()
    result = node_result(run, 'node-01')
    assert result['outcome'] == 'succeeded'
    assert result['task_medium']['id'] == 'Usb' and result['task_medium']['image'].endswith('/%s-task.img' % serial(0))
    report = node.result()
    assert report['medium'].endswith('.img') and report['target'] == 'install-linux.target'
    assert lab.system(0)['PowerState'] == 'Off'  # provision_after_success=power_off


@pytest.mark.parametrize('extra, message', [
    pytest.param({}, 'provision_oci_url', id='no-image'),
    pytest.param({'provision_oci_url': 'ubuntu:latest'}, 'oci_url', id='bad-image-reference'),
    pytest.param({'provision_oci_url': OCI_URL, 'provision_after_success': 'explode'}, 'provision_node_after_success', id='bad-choice'),
    pytest.param({'provision_oci_url': OCI_URL, 'provision_partition_layout': [{'size': '100%', 'type_guid': '8300'},
                                                                               {'size': '10G', 'type_guid': '8300', 'format': 'ext4'}]},
                 'partition_layout[0].size', id='bad-layout'),
])
def test_bad_input_fails_before_the_bmc_is_touched(provisioning_lab_factory, collection_playbook, extra, message):
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(**extra)
    run = collection_playbook('provision_linux', inventory, FAST)
    assert run.rc == 2 and message in run.output, run.output
    assert lab.bmc_requests() == [] and lab.receiver.list_jobs() == []


def test_missing_host_vars_are_named(provisioning_lab_factory, collection_playbook):
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(provision_oci_url=OCI_URL)
    text = inventory.read_text().replace('bmc_address:', 'bmc_addr:')
    inventory.write_text(text)
    run = collection_playbook('provision_linux', inventory, FAST)
    assert run.rc == 2 and 'missing: bmc_address' in run.output, run.output
    assert lab.bmc_requests() == [] and lab.receiver.list_jobs() == []


def test_bmc_refusing_the_medium_fails_and_closes_the_job(provisioning_lab_factory, collection_playbook):
    """The BMC cannot download the boot medium (404): the job is marked failed at redfish-media-boot and closed."""
    lab = provisioning_lab_factory(nodes=1)
    inventory = lab.write_inventory(provision_oci_url=OCI_URL, provision_maintenance_iso_url=lab.maintenance_iso_url.replace(MAINTENANCE_ISO, 'missing.iso'))
    run = collection_playbook('provision_linux', inventory, FAST)
    assert run.rc == 2, run.output
    failure = role_task(run, "Report the failure on the controller's side")
    assert failure.failed
    assert failure.result['msg'].startswith('redfish-media-boot failed (job ') and 'marked failed and closed' in failure.result['msg']
    assert 'got error 404' in failure.result['msg']
    job = lab.jobs(0)[0]
    assert job['status'] == 'complete' and job['failed_step'] == 'redfish-media-boot' and '404' in job['reason']
    assert lab.inserted(0) == {}
    assert not [r for r in lab.changing_requests() if r.endswith('ComputerSystem.Reset')]


# A test-only callback plugin: when the task "Wait for the node to report" of role provision_wait comes back at its
# deadline, it plays what happens just then. The node reporting: it reads the job's token from the task medium the play
# built (as the node reads it) and sends the signed report with the node's own sender. Or, for the controls: another
# run closing the job through the job API, or the receiver going away. Callbacks run in the controller's main process
# before the linear strategy queues the next task, so this always lands between the wait and the mark.
LATE_REPORT_CALLBACK = '''
from __future__ import annotations

import json
import os
import signal
import urllib.request
from pathlib import Path

from ansible.plugins.callback import CallbackBase
from l3metal_contract import webhook
from provisioner.medium import open_medium

DOCUMENTATION = """
name: l3metal_late_report
type: aggregate
short_description: Test only - something happens to the job right after the wait's deadline
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'l3metal_late_report'
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_on_ok(self, result):
        if not result._task.get_name().endswith('Wait for the node to report'):
            return
        job = result._result.get('job') or {}
        record = {'status_seen': job.get('status')}
        late = json.loads(os.environ['L3METAL_LATE_REPORT'])
        try:
            medium = Path(job['media_dir']) / ('%s-task.iso' % job['server_serial'])
            with open_medium(str(medium)) as source:
                callback = json.loads(source.read('recipe.json'))['callback']
            if late['status'] == 'receiver-gone':
                os.killpg(late['pid'], signal.SIGKILL)
                record['http_status'] = None
            elif late['status'] == 'closed':
                request = urllib.request.Request('%s/api/v1/jobs/%s/status' % (callback['url'], callback['job_id']),
                                                 data=json.dumps({'status': 'complete'}).encode(), method='POST',
                                                 headers={'Content-Type': 'application/json'})
                with urllib.request.urlopen(request, timeout=10) as answer:
                    record['http_status'] = answer.status
            else:
                sender = webhook.WebhookSender(callback['url'], callback['serial'], callback['token'], job_id=callback['job_id'], attempts=1)
                body = webhook.success_body() if late['status'] == 'success' else webhook.failed_body(late['step'], late['reason'], late['log_tail'])
                record['http_status'] = sender.send(body)
        except Exception as exc:  # the test reads the record: what was not done fails it there
            record['error'] = repr(exc)
        with open(os.environ['L3METAL_LATE_REPORT_FILE'], 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(record) + '\\n')
'''

LATE_FAILURE = {'status': 'failed', 'step': 'image-linux.service', 'reason': 'the image digest did not match',
                'log_tail': 'image-linux: sha256 mismatch for layer 2'}


def wait_result(run, host: str) -> dict[str, t.Any]:
    """The role provision_wait's ``provision_wait_result`` for ``host`` (the last time it was set)."""
    found = [task.result['ansible_facts']['provision_wait_result'] for task in run.tasks
             if task.host == host and 'provision_wait_result' in (task.result.get('ansible_facts') or {})]
    assert found, run.output
    return found[-1]


def run_with_late_report(lab, collection_playbook, tmp_path, report: dict[str, t.Any]):
    """provision_linux for node-01 whose node reports ``report`` just after the wait's deadline (see LATE_REPORT_CALLBACK);
    (the run, what the callback did)."""
    from l3metal_lab.paths import LAB_DIR  # pylint: disable=import-outside-toplevel
    plugins = tmp_path / 'late_report_plugins'
    plugins.mkdir()
    (plugins / 'l3metal_late_report.py').write_text(LATE_REPORT_CALLBACK)
    sent = tmp_path / 'late_report.jsonl'
    inventory = lab.write_inventory(provision_oci_url=OCI_URL)
    env = {'ANSIBLE_CALLBACK_PLUGINS': '%s:%s' % (LAB_DIR / 'callback_plugins', plugins),
           'ANSIBLE_CALLBACKS_ENABLED': 'l3metal_record,l3metal_late_report',
           'L3METAL_LATE_REPORT': json.dumps(report), 'L3METAL_LATE_REPORT_FILE': str(sent)}
    # no simulated node: nothing reports while the play waits, so the wait always reaches its deadline
    run = collection_playbook('provision_linux', inventory, dict(FAST, provision_timeout=2), env=env)
    records = [json.loads(line) for line in sent.read_text().splitlines()] if sent.exists() else []
    # done once, after a wait that ended with the job still provisioning
    assert records == [{'status_seen': 'provisioning', 'http_status': 200 if report['status'] != 'receiver-gone' else None}], (records, run.output)
    return run


def test_success_reported_between_deadline_and_mark_is_a_success(provisioning_lab_factory, collection_playbook, tmp_path):
    """The node's success lands after the wait's deadline but before the controller marks the job failed (issue 17,
    fleet bench at 100 nodes): the receiver refuses the mark, and the role goes on with the stored outcome - a success,
    cleaned up as one - instead of failing the host with "run again to finish it"."""
    lab = provisioning_lab_factory(nodes=1)
    run = run_with_late_report(lab, collection_playbook, tmp_path, {'status': 'success'})
    run.assert_ok()
    result = wait_result(run, 'node-01')
    assert result['outcome'] == 'succeeded' and result['failed_step'] is None and result['status'] == 'complete', result
    job = lab.receiver.get_job(result['job_id'])
    assert job['status'] == 'complete' and job['failed_step'] is None and job['reason'] is None
    assert history(lab, result['job_id']) == ['queued', 'provisioning', 'succeeded', 'complete']
    # the success path's cleanup: everything ejected, one-time boot from the disk, restarted
    assert len(result['ejected']) == 2 and lab.inserted(0) == {}
    assert lab.system(0)['Boot']['BootSourceOverrideTarget'] == 'Hdd' and lab.system(0)['PowerState'] == 'On'
    assert node_result(run, 'node-01')['outcome'] == 'succeeded'
    assert not run.failed, [(task.task, task.result.get('msg')) for task in run.failed]


def test_failure_reported_between_deadline_and_mark_keeps_the_nodes_failure(provisioning_lab_factory, collection_playbook, tmp_path):
    """Control: a node that reports ``failed`` in the same window stays a failure, with the node's step, reason and
    journal lines (not the controller's provision-wait), cleaned up as a failure (media left in)."""
    lab = provisioning_lab_factory(nodes=1)
    run = run_with_late_report(lab, collection_playbook, tmp_path, LATE_FAILURE)
    assert run.rc == 2, run.output
    result = wait_result(run, 'node-01')
    assert result['outcome'] == 'failed' and result['failed_step'] == 'image-linux.service', result
    assert result['reason'] == LATE_FAILURE['reason'] and LATE_FAILURE['log_tail'] in result['log_tail']
    job = lab.receiver.get_job(result['job_id'])
    assert job['status'] == 'complete' and job['failed_step'] == 'image-linux.service' and job['reason'] == LATE_FAILURE['reason']
    assert history(lab, result['job_id']) == ['queued', 'provisioning', 'failed', 'complete']
    assert result['ejected'] == [] and len(lab.inserted(0)) == 2
    report = role_task(run, "Report the node's failure")
    assert report.failed and 'failed at image-linux.service: the image digest did not match' in report.result['msg']
    assert [task.task for task in run.failed] == [report.task]


@pytest.mark.parametrize('late, error', [
    pytest.param({'status': 'closed'}, 'a job that is complete cannot become failed', id='closed-by-another-run'),
    pytest.param({'status': 'receiver-gone'}, 'cannot reach the webhook receiver', id='receiver-gone'),
])
def test_other_errors_of_the_late_mark_still_fail(provisioning_lab_factory, collection_playbook, tmp_path, late, error):
    """Controls: only a reported outcome lets the play go on. A job closed in the window (not an outcome of the node)
    or a receiver that went away fails the mark as before, and the host with it."""
    lab = provisioning_lab_factory(nodes=1)
    if late['status'] == 'receiver-gone':
        late = dict(late, pid=lab.receiver.service.process.pid)
    run = run_with_late_report(lab, collection_playbook, tmp_path, late)
    assert run.rc == 2, run.output
    mark = role_task(run, 'Mark the job failed, since the node did not report in time')
    assert mark.failed and error in mark.result['msg'], mark.result
    assert role_task(run, "Report the failure on the controller's side").failed
    assert [task.task for task in run.failed][0] == mark.task
