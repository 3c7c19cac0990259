# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook_receiver role through ansible-playbook: foreground mode for one play, and the systemd
mode's virtual environment and unit (verified with systemd-analyze, then started from its ExecStart)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from l3metal_contract import webhook as _webhook
from l3metal_lab.playbook import localhost_play
from l3metal_lab.ports import port_is_open
from l3metal_lab.services import Service
from l3metal_lab.waiting import wait_for

ROLE = 'l3metal.provision.webhook_receiver'


def in_role(task_name):
    return '%s : %s' % (ROLE, task_name)


def role_play(role_vars, tasks=(), tasks_from=None):
    include = {'name': ROLE}
    if tasks_from:
        include['tasks_from'] = tasks_from
    return localhost_play([{'name': 'receiver', 'ansible.builtin.include_role': include}] + list(tasks), vars=role_vars)


@pytest.fixture
def foreground_vars(tmp_path, unused_port):
    base = tmp_path / 'fg'
    role_vars = {
        'webhook_receiver_mode': 'foreground',
        'webhook_receiver_foreground_dir': str(base),
        'webhook_receiver_host': '127.0.0.1',
        'webhook_receiver_port': unused_port,
        'webhook_receiver_python': sys.executable,  # has aiohttp: no virtual environment needed
        'webhook_receiver_api_token': 'role-api-token',
    }
    yield role_vars
    # whatever the test did, no receiver outlives it
    pid_file = base / 'data' / 'receiver.pid'
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        except (ProcessLookupError, ValueError):
            pass


def test_foreground_mode_serves_the_play_and_stops(ansible_playbook, foreground_vars):
    port = foreground_vars['webhook_receiver_port']
    register = {'name': 'job', 'l3metal.provision.provision_job': {
        'url': '{{ webhook_receiver_url }}', 'api_token': 'role-api-token', 'server_serial': 'XF-ROLE-1',
        'recipe': {'task_target': 'supermicro-update.target', 'firmware_url': 'http://fw.example.com/b.bin'}}}

    first = ansible_playbook(role_play(foreground_vars, [register])).assert_ok()
    assert first.task('job').result['created'] is True
    assert first.task(in_role('Tell the play where the receiver is')).result['ansible_facts']['webhook_receiver_url'] == \
        'http://127.0.0.1:%d' % port
    assert first.task(in_role('Start the receiver for this play')).changed
    base = Path(foreground_vars['webhook_receiver_foreground_dir'])
    assert (base / 'config' / 'api-token').stat().st_mode & 0o777 == 0o640
    assert 'role-api-token' not in first.stdout

    # the same configuration again: the running receiver (and its jobs) is kept, nothing changes
    second = ansible_playbook(role_play(foreground_vars, [register])).assert_ok()
    assert [task.task for task in second.changed] == []
    assert second.task('job').result['created'] is False

    # another configuration (a new API token): restarted with it, its jobs kept; then stopped at the end of the play
    changed = dict(foreground_vars, webhook_receiver_api_token='rotated-api-token')
    register['l3metal.provision.provision_job']['api_token'] = 'rotated-api-token'
    stop = {'name': 'stop', 'ansible.builtin.include_role': {'name': ROLE, 'tasks_from': 'stop'}}
    third = ansible_playbook(role_play(changed, [register, stop])).assert_ok()
    assert third.task(in_role('Send SIGTERM to the foreground receiver')).changed  # the old configuration's process
    assert third.task(in_role('Start the receiver for this play')).changed and third.task('job').result['created'] is False
    assert [task.status for task in third.tasks if task.task == in_role('Send SIGTERM to the foreground receiver')] == ['ok', 'ok']
    assert not port_is_open(port)
    assert not (base / 'data' / 'receiver.pid').exists()


SITE_KEY = 'c0ffee' * 8  # 48 characters, as openssl rand -hex 24 would give


def test_node_keys_let_the_dispatcher_report_without_a_job_token(ansible_playbook, foreground_vars):
    """webhook_receiver_node_keys reach the receiver as --node-key-file: a failure signed with the site key is stored."""
    role_vars = dict(foreground_vars, webhook_receiver_node_keys=['0123456789abcdef' * 4, SITE_KEY])
    register = {'name': 'job', 'l3metal.provision.provision_job': {
        'url': '{{ webhook_receiver_url }}', 'api_token': 'role-api-token', 'server_serial': 'XF-SITE-1',
        'recipe': {'task_target': 'supermicro-update.target', 'firmware_url': 'http://fw.example.com/b.bin'}}}
    stop = {'name': 'stop', 'ansible.builtin.include_role': {'name': ROLE, 'tasks_from': 'stop'}}
    result = ansible_playbook(role_play(role_vars, [register])).assert_ok()
    base = Path(role_vars['webhook_receiver_foreground_dir'])
    key_file = base / 'config' / 'node-keys'
    assert key_file.stat().st_mode & 0o777 == 0o640 and key_file.read_text().splitlines()[1] == SITE_KEY
    assert SITE_KEY not in result.stdout
    job = result.task('job').result
    url = 'http://127.0.0.1:%d' % role_vars['webhook_receiver_port']
    # the second key (a key being rotated in) is accepted, bound to the serial
    sender = _webhook.WebhookSender(url, 'XF-SITE-1', _webhook.site_signing_key(SITE_KEY, 'XF-SITE-1'), attempts=1,
                                    key_id=_webhook.SITE_KEY_ID)
    assert sender.send(_webhook.failed_body('provision-dispatcher.service', 'no task medium found')) == 200
    request = urllib.request.Request('%s/api/v1/jobs/%s' % (url, job['job_id']), headers={'Authorization': 'Bearer role-api-token'})
    with urllib.request.urlopen(request, timeout=10) as response:
        stored = json.load(response)
    assert (stored['status'], stored['failed_step']) == ('failed', 'provision-dispatcher.service')

    # without keys the role restarts the receiver without the file: such reports are refused again
    again = ansible_playbook(role_play(foreground_vars, [stop])).assert_ok()
    assert again.task(in_role('Remove the secret files of an earlier run that this configuration leaves empty')).changed
    assert not key_file.exists()


def test_settings_are_checked_before_anything_is_installed(ansible_playbook, tmp_path):
    base = tmp_path / 'never'
    cases = [
        ({'webhook_receiver_mode': 'daemon'}, 'webhook_receiver_mode'),
        ({'webhook_receiver_port': 'http'}, 'webhook_receiver_port'),
        ({'webhook_receiver_host': '0.0.0.0'}, 'job API would be open'),      # no token on all addresses
        ({'webhook_receiver_host': '127.0.0.1', 'webhook_receiver_tls_cert': '/x.pem'}, 'tls_key are not given together'),
        ({'webhook_receiver_host': '127.0.0.1', 'webhook_receiver_node_keys': ['short']}, 'webhook_receiver_node_keys: every key'),
    ]
    for role_vars, message in cases:
        result = ansible_playbook(role_play(dict({'webhook_receiver_mode': 'foreground', 'webhook_receiver_foreground_dir': str(base)},
                                                 **role_vars)))
        assert result.rc != 0, message
        assert message in result.stdout + result.stderr, result.output
    assert not base.exists()


def _unit_exec_start(unit: Path) -> list[str]:
    line = next(line for line in unit.read_text().splitlines() if line.startswith('ExecStart='))
    return shlex.split(line[len('ExecStart='):])


@pytest.mark.slow
def test_systemd_mode_installs_a_virtualenv_and_a_unit_that_runs(ansible_playbook, tmp_path, unused_port):
    role_vars = {
        'webhook_receiver_mode': 'systemd',
        'webhook_receiver_host': '127.0.0.1',
        'webhook_receiver_port': unused_port,
        'webhook_receiver_prefix': str(tmp_path / 'opt'),
        'webhook_receiver_config_dir': str(tmp_path / 'etc'),
        'webhook_receiver_data_dir': str(tmp_path / 'var'),
        'webhook_receiver_media_dir': str(tmp_path / 'srv' / 'media'),
        'webhook_receiver_unit_dir': str(tmp_path / 'units'),
        'webhook_receiver_user': 'root',
        'webhook_receiver_group': 'root',
        'webhook_receiver_create_user': False,
        'webhook_receiver_manage_service': False,   # no systemd as PID 1 here: write the unit, start it below
        'webhook_receiver_public_url': 'http://10.1.1.10:%d' % unused_port,
        'webhook_receiver_api_token': 'unit-api-token',
    }
    (tmp_path / 'units').mkdir()

    check = ansible_playbook(role_play(role_vars), check=True).assert_ok()
    assert check.changed and not (tmp_path / 'opt').exists()

    first = ansible_playbook(role_play(role_vars)).assert_ok()
    assert first.task(in_role('Install the receiver into its virtual environment')).changed
    unit = tmp_path / 'units' / 'l3metal-receiver.service'
    verify = subprocess.run(['systemd-analyze', 'verify', '--man=no', str(unit)], capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and 'Unknown' not in verify.stderr, verify.stderr
    argv = _unit_exec_start(unit)
    venv_python = tmp_path / 'opt' / 'venv' / 'bin' / 'python'
    assert argv[:3] == [str(venv_python), '-m', 'l3metal_receiver']
    assert '--api-token-file' in argv and 'unit-api-token' not in unit.read_text()
    assert 'PYTHONPATH' not in unit.read_text()  # installed into the venv, not run from a path
    # the receiver and the contract it shares with the node are installed packages of the venv, not the collection's files
    located = subprocess.run([str(venv_python), '-c', 'import l3metal_receiver, l3metal_contract.recipe_schema as s; '
                              'print(l3metal_receiver.__file__); print(s.__file__)'], capture_output=True, text=True, check=True, timeout=60)
    site = tmp_path / 'opt' / 'venv' / 'lib'
    assert [Path(line).is_relative_to(site) for line in located.stdout.split()] == [True, True], located.stdout

    # start it as systemd would (the unit's command line, nothing else in the environment), from the new virtual environment
    service = Service('unit', argv, tmp_path / 'unit.log', ready_url='http://127.0.0.1:%d/healthz' % unused_port,
                      env={'PATH': '/usr/bin:/bin', 'PYTHONDONTWRITEBYTECODE': '1'})
    with service:
        request = urllib.request.Request('http://127.0.0.1:%d/api/v1/jobs' % unused_port, method='POST', headers={
            'Authorization': 'Bearer unit-api-token', 'Content-Type': 'application/json'}, data=json.dumps({
                'server_serial': 'XF-UNIT', 'recipe': {'task_target': 'supermicro-update.target', 'firmware_url': 'http://fw/b.bin'}}).encode())
        with urllib.request.urlopen(request, timeout=10) as answer:
            job = json.load(answer)
        assert job['callback']['url'] == 'http://10.1.1.10:%d' % unused_port

    second = ansible_playbook(role_play(role_vars)).assert_ok()
    assert [task.task for task in second.changed] == []
    wait_for(lambda: not port_is_open(unused_port), timeout=10, what='the unit process to end')


def test_systemd_mode_installs_offline_from_a_wheelhouse(ansible_playbook, tmp_path, unused_port):
    """webhook_receiver_wheelhouse: the receiver and its dependencies install with no package index reachable."""
    wheelhouse = tmp_path / 'wheels'
    subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '-d', str(wheelhouse), 'setuptools>=61', 'aiohttp>=3.9,<4', 'jsonschema>=3.2,<5'],
                   check=True, timeout=600)
    role_vars = {
        'webhook_receiver_mode': 'systemd', 'webhook_receiver_host': '127.0.0.1', 'webhook_receiver_port': unused_port,
        'webhook_receiver_prefix': str(tmp_path / 'opt'), 'webhook_receiver_config_dir': str(tmp_path / 'etc'),
        'webhook_receiver_data_dir': str(tmp_path / 'var'), 'webhook_receiver_media_dir': str(tmp_path / 'media'),
        'webhook_receiver_unit_dir': str(tmp_path / 'units'), 'webhook_receiver_user': 'root', 'webhook_receiver_group': 'root',
        'webhook_receiver_create_user': False, 'webhook_receiver_manage_service': False,
        'webhook_receiver_wheelhouse': str(wheelhouse),
    }
    (tmp_path / 'units').mkdir()
    # nothing listens on port 9: any use of an index (or pip's own configured one) fails the install
    offline = {'PIP_INDEX_URL': 'http://127.0.0.1:9/simple', 'PIP_EXTRA_INDEX_URL': '', 'PIP_FIND_LINKS': ''}
    result = ansible_playbook(role_play(role_vars), env=offline).assert_ok()
    assert result.task(in_role('Install the receiver into its virtual environment')).changed
    venv_python = tmp_path / 'opt' / 'venv' / 'bin' / 'python'
    proc = subprocess.run([str(venv_python), '-m', 'l3metal_receiver', '--help'], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and '--node-key-file' in proc.stdout, proc.stderr
