# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The playbooks under ansible-runner, as AWX runs a job: a private_data_dir with project/ (a playbook that imports the
collection's), inventory/, env/extravars (survey answers and what the BMC credential type injects as extra vars) and
env/envvars (what the receiver credential type injects: L3METAL_RECEIVER_API_TOKEN, which no inventory holds).

Against the lab (l3metal_lab.lab.Lab): the real webhook receiver with an API token, sushy-tools' fake driver as the BMCs
(it downloads the media, boots nothing) and SIMULATED nodes (l3metal_lab.node_simulator: the real dispatcher on the
downloaded task medium, reporting with the real webhook client) - no server is installed. Checked: runner's status and
rc, the job events (runner_on_ok for the provisioning tasks, per-batch play starts), and the receiver's and the BMC's
state read back. One server as a job template with a survey would run it, then the fleet in batches with a failure, in
one lab: the fleet's first batch is the server already done (unchanged, seconds), so the second batch is the only other
install. On the shared 2-core host: as two tests in two labs 25 s + 48 s at load 4; merged, 305 s at load 9-12 (sanity
and other agents beside it: ansible forks a process per task and host, and the runs are load-bound), not yet measured quiet.
"""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import ansible_runner
import yaml

from l3metal_lab.lab import Lab
from l3metal_lab.playbook import ansible_env

OCI_URL = 'registry.example.com/os-images/ubuntu-rootfs:24.04'
API_TOKEN = 'awx-receiver-token-0123456789abcdef'
PROVISIONING_TASKS = ('Register the job with the webhook receiver', 'Boot medium on the first virtual CD', 'Boot once from the virtual media and reset')


def private_data_dir(lab: Lab, root: Path, extravars: dict[str, t.Any]) -> Path:
    """An AWX-like private_data_dir: the project, the inventory without credentials, extravars and envvars."""
    (root / 'project').mkdir(parents=True)
    (root / 'project' / 'provision_linux.yml').write_text(yaml.safe_dump([{
        'name': 'Provision Linux (l3metal.provision)', 'ansible.builtin.import_playbook': 'l3metal.provision.provision_linux'}]))
    (root / 'inventory').mkdir()
    inventory_file = lab.write_inventory(path=root / 'inventory' / 'hosts.yml', provision_oci_url=OCI_URL)
    inventory = yaml.safe_load(inventory_file.read_text())
    for host in inventory['baremetal']['hosts'].values():  # the credentials come from AWX credentials, not the inventory
        bmc_username, bmc_password = host.pop('bmc_username'), host.pop('bmc_password')
    token = inventory['baremetal']['vars'].pop('provision_receiver_api_token')
    inventory_file.write_text(yaml.safe_dump(inventory, sort_keys=False))
    (root / 'env').mkdir()
    # credential type "l3metal BMC": injectors.extra_vars; the survey's answers (docs/awx.md)
    (root / 'env' / 'extravars').write_text(json.dumps(dict(extravars, bmc_username=bmc_username, bmc_password=bmc_password)))
    # credential type "l3metal receiver API token": injectors.env; plus what the execution environment would provide
    env = {key: value for key, value in ansible_env(root).items() if key.startswith('ANSIBLE_') and 'CALLBACK' not in key}
    env.update(PATH=ansible_env(root)['PATH'], L3METAL_RECEIVER_API_TOKEN=token)
    (root / 'env' / 'envvars').write_text(yaml.safe_dump(env))
    return root


def run(root: Path, limit: str | None = None) -> ansible_runner.Runner:
    return ansible_runner.run(private_data_dir=str(root), playbook='provision_linux.yml', limit=limit, quiet=True, timeout=180)


def events(runner: ansible_runner.Runner, name: str) -> list[dict[str, t.Any]]:
    return [event['event_data'] for event in runner.events if event['event'] == name]


def ok_tasks(runner: ansible_runner.Runner, host: str) -> list[str]:
    return [data['task'] for data in events(runner, 'runner_on_ok') if data['host'] == host]


def node_result(runner: ansible_runner.Runner, host: str) -> dict[str, t.Any]:
    found = [data['res']['ansible_facts']['provision_node_result'] for data in events(runner, 'runner_on_ok')
             if data['host'] == host and 'provision_node_result' in (data['res'].get('ansible_facts') or {})]
    assert found, runner.stdout.read()
    return found[-1]


def test_one_server_then_the_fleet_in_batches(tmp_path):
    """A job template with a survey for one server (--limit), then the fleet in batches as a workflow stage runs it."""
    with Lab(tmp_path / 'lab', nodes=3, api_token=API_TOKEN) as lab:
        # 1. one server: successful, rc 0, the node's job complete with the survey's disk, media out, others untouched
        root = private_data_dir(lab, tmp_path / 'job-1', {'provision_target_disk': '/dev/vda', 'provision_timeout': 90})
        node = lab.simulate(0)  # SIMULATED node behind emulated system 0
        runner = run(root, limit='node-01')
        assert (runner.status, runner.rc) == ('successful', 0), runner.stdout.read()
        for task in PROVISIONING_TASKS:
            assert any(name.endswith(task) for name in ok_tasks(runner, 'node-01')), (task, ok_tasks(runner, 'node-01'))
        assert not ok_tasks(runner, 'node-02') and not events(runner, 'runner_on_failed')
        result = node_result(runner, 'node-01')
        assert result['outcome'] == 'succeeded' and result['status'] == 'complete'
        assert node.result()['outcome'] == 'succeeded'
        assert [job['job_id'] for job in lab.jobs(0)] == [result['job_id']]  # the receiver's jobs of serial(0)
        job = lab.receiver.get_job(result['job_id'])
        assert job['status'] == 'complete' and job['recipe']['target_disk'] == '/dev/vda'  # the survey's answer
        assert lab.inserted(0) == {} and lab.system(0)['Boot']['BootSourceOverrideTarget'] == 'Hdd'
        assert lab.jobs(1) == [] and lab.system(1)['PowerState'] == 'Off'  # the other servers were not touched
        assert runner.stats['ok'].get('node-01') and not runner.stats['failures']
        stdout = runner.stdout.read()  # nothing secret in the job's output (AWX shows and keeps it)
        assert API_TOKEN not in stdout and lab.bmc.auth is not None and lab.bmc.auth[1] not in stdout

        # 2. the fleet: serial [1, 2] (two play starts), one Redfish task at a time (throttle 1). node-01, the first
        # batch, already ran this recipe well: unchanged, nothing but reads at its BMC (docs/awx.md's canary stage).
        # node-02 fails at a step: runner says failed, rc 2, runner_on_failed for node-02 only; node-03 succeeds.
        root = private_data_dir(lab, tmp_path / 'job-2', {'provision_target_disk': '/dev/vda', 'provision_serial': [1, 2],
                                                          'provision_max_fail_percentage': 50, 'provision_bmc_throttle': 1,
                                                          'provision_timeout': 90})
        lab.simulate(1, fail_step='bootloader-linux.service')
        lab.simulate(2)
        mark = len(lab.changing_requests())
        runner = run(root)
        output = runner.stdout.read()
        assert (runner.status, runner.rc) == ('failed', 2), output
        starts = [event['counter'] for event in runner.events if event['event'] == 'playbook_on_play_start']
        assert len(starts) == 2, output
        first_batch = {e['event_data']['host'] for e in runner.events if e['event'] == 'runner_on_ok' and e['counter'] < starts[1]}
        assert first_batch == {'node-01'}
        assert node_result(runner, 'node-01')['outcome'] == 'unchanged' and len(lab.jobs(0)) == 1
        assert not [r for r in lab.changing_requests()[mark:] if lab.bmc.system_ids[0] in r]
        for host in ('node-02', 'node-03'):
            for task in PROVISIONING_TASKS:
                assert any(name.endswith(task) for name in ok_tasks(runner, host)), (host, task)
        assert {data['host'] for data in events(runner, 'runner_on_failed') if not data.get('ignore_errors')} == {'node-02'}
        assert node_result(runner, 'node-03')['outcome'] == 'succeeded'
        failed = node_result(runner, 'node-02')
        assert failed['outcome'] == 'failed' and failed['failed_step'] == 'bootloader-linux.service'
        for index, step in ((1, 'bootloader-linux.service'), (2, None)):
            job = lab.jobs(index)[0]
            assert job['status'] == 'complete' and job.get('failed_step') == step, job
        assert lab.inserted(2) == {} and set(lab.inserted(1)) == {'Cd', 'Cd2'}  # a failed node's media stay in
        assert runner.stats['failures'] == {'node-02': 1}
