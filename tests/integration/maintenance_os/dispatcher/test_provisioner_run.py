# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provisioner run / notify on task media built by task_iso's code, reporting to a signature-checking endpoint."""

from __future__ import annotations

import json
import stat

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils import _recipe_schema

from harness.playbook import localhost_play
from harness.provisioner import (JOB_ID, SERIAL, TOKEN, UNATTEND, USER_DATA, b64, build_medium, json_file, linux_recipe, read_env_names,
                                 run_provisioner, windows_recipe)

DISPATCHER = 'provision-dispatcher.service'


@pytest.fixture
def receiver(webhook_receiver):
    webhook_receiver.add_job(SERIAL, JOB_ID, TOKEN)
    return webhook_receiver


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize('fmt', ['iso', 'fat'])
def test_dry_run_writes_the_run_directory_and_names_the_target(fmt, receiver, tmp_path):
    medium = build_medium(tmp_path / 'task.img', linux_recipe(receiver.url), fmt)
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'would start install-linux.target'

    assert sorted(p.name for p in run_dir.iterdir()) == ['callback.json', 'layout.json', 'meta-data', 'recipe.env', 'recipe.json', 'user-data']
    assert (run_dir / 'user-data').read_bytes() == USER_DATA
    assert (run_dir / 'meta-data').read_text() == 'instance-id: "%s"\n' % JOB_ID
    assert json_file(run_dir / 'layout.json')[2] == {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}
    assert read_env_names(run_dir / 'recipe.env') == ['TASK_TARGET', 'TARGET_DISK', 'OCI_URL', 'JOB_ID', 'SERIAL_NUMBER']
    assert json_file(run_dir / 'callback.json') == {'url': receiver.url, 'job_id': JOB_ID, 'token': TOKEN, 'serial': SERIAL}
    # secrets are for root only; the token never reaches the env file the tool containers read
    for name in ('callback.json', 'user-data', 'recipe.json'):
        assert mode(run_dir / name) == 0o600, name
    for name in ('recipe.env', 'layout.json', 'meta-data'):
        assert mode(run_dir / name) == 0o644, name
    assert TOKEN not in (run_dir / 'recipe.env').read_text()
    assert 'user_data' not in json_file(run_dir / 'recipe.json')
    assert receiver.bodies() == []  # a dry run that succeeds reports nothing


def test_medium_made_by_the_task_iso_module(ansible_playbook, receiver, tmp_path):
    dest = tmp_path / 'task.iso'
    play = localhost_play([{'name': 'medium', 'l3metal.provision.task_iso': {
        'dest': str(dest), 'recipe': windows_recipe(receiver.url), 'unattend_xml': UNATTEND.decode()}}])
    ansible_playbook(play).assert_ok()
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(dest), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'would start install-windows.target'
    assert (run_dir / 'unattend.xml').read_bytes() == UNATTEND
    assert mode(run_dir / 'unattend.xml') == 0o600
    assert 'WIM_INDEX="2"' in (run_dir / 'recipe.env').read_text()


def test_payloads_inside_the_recipe_are_accepted(receiver, tmp_path):
    # a medium whose recipe.json still carries the payload (base64) instead of a separate file
    recipe = linux_recipe(receiver.url)
    medium = build_medium(tmp_path / 'task.iso', recipe, replace={'user-data': None, 'recipe.json': (json.dumps(recipe) + '\n').encode()})
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / 'user-data').read_bytes() == USER_DATA


def failed_reason(receiver) -> str:
    bodies = receiver.wait_for_bodies(lambda b: len(b) >= 1, SERIAL)
    assert len(bodies) == 1, bodies
    body = bodies[0]
    assert body['status'] == 'failed'
    assert body['failed_step'] == DISPATCHER
    assert body['job_id'] == JOB_ID
    return body['reason']


def schema_with_version(version: str) -> bytes:
    schema = dict(_recipe_schema.RECIPE_SCHEMA, **{'$id': 'urn:l3metal:provision:recipe-schema:' + version})
    return (json.dumps(schema, indent=2, sort_keys=True) + '\n').encode()


def invalid_layout_recipe(url):
    recipe = linux_recipe(url)
    recipe['partition_layout'] = [{'size': '100%', 'type_guid': '8300', 'format': 'ext4'}, {'size': '512M', 'type_guid': 'ef00'}]
    del recipe['oci_url']
    return recipe


PREFLIGHT_CASES = {
    'schema-version': (linux_recipe, True, {'recipe.schema.json': schema_with_version('0.9')},
                       ['recipe schema mismatch', 'recipe-schema:0.9', _recipe_schema.SCHEMA_ID]),
    'schema-content': (linux_recipe, True, {'recipe.schema.json': b'{"$id": "%s"}' % _recipe_schema.SCHEMA_ID.encode()},
                       ['differs from the schema of that version']),
    'no-schema-file': (linux_recipe, True, {'recipe.schema.json': None}, ['no recipe.schema.json']),
    'schema-errors': (invalid_layout_recipe, False, {}, ['oci_url: is required', 'only allowed on the last partition']),
    'unknown-target': (lambda url: linux_recipe(url, task_target='rescue.target'), False, {},
                       ['task_target rescue.target is not a provisioning target installed', 'install-linux.target']),
    'unknown-firmware-target': (lambda url: linux_recipe(url, task_target='acme-update.target', firmware_url='http://127.0.0.1/fw.bin'), True, {},
                                ['task_target acme-update.target is not a provisioning target installed']),
    'windows-without-unattend': (windows_recipe, False, {}, ['unattend_xml: is required for install-windows.target']),
    'payload-conflict': (linux_recipe, True, {'recipe.json': None}, ['user_data is both in recipe.json and in the file user-data']),
}


@pytest.mark.parametrize('case', sorted(PREFLIGHT_CASES))
def test_each_preflight_failure_sends_a_signed_failed_webhook(case, receiver, tmp_path):
    make_recipe, validate, replace, expected = PREFLIGHT_CASES[case]
    recipe = make_recipe(receiver.url)
    if case == 'payload-conflict':  # the recipe still has user_data, and a different user-data file sits beside it
        recipe_json = dict(recipe, user_data=b64(b'#cloud-config\nhostname: other\n'))
        replace = {'recipe.json': (json.dumps(recipe_json) + '\n').encode()}
    medium = build_medium(tmp_path / 'task.iso', recipe, validate=validate, replace=replace)
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 1
    assert 'would start' not in proc.stdout
    reason = failed_reason(receiver)
    for fragment in expected:
        assert fragment in reason, (fragment, reason)
    assert 'pre-flight failure' in proc.stderr
    assert receiver.rejected == []
    assert not (run_dir / 'recipe.env').exists()  # nothing half-written for the units to pick up


def test_starting_the_target_failing_is_reported(receiver, tmp_path):
    # no systemd runs this host's services, so systemctl start fails: that must be a reported failure
    medium = build_medium(tmp_path / 'task.iso', linux_recipe(receiver.url))
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'run'))
    assert proc.returncode == 1
    assert 'systemctl start install-linux.target' in failed_reason(receiver)


def test_without_a_medium_there_is_nothing_to_sign_with(receiver, tmp_path):
    proc = run_provisioner('run', '--medium', str(tmp_path / 'missing.iso'), '--run-dir', str(tmp_path / 'run'))
    assert proc.returncode == 1
    assert 'task medium %s does not exist' % (tmp_path / 'missing.iso') in proc.stderr
    assert 'no usable callback settings' in proc.stderr
    assert receiver.bodies() == []


@pytest.mark.parametrize('content', [b'{"task_target": "install-linux.target",', b'[1, 2]', b'\xff\xfe'])
def test_a_recipe_that_does_not_parse_fails_without_webhook(content, receiver, tmp_path):
    medium = build_medium(tmp_path / 'task.iso', linux_recipe(receiver.url), replace={'recipe.json': content})
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'run'), '--dry-run')
    assert proc.returncode == 1
    assert 'recipe.json on %s: recipe' % medium in proc.stderr
    assert receiver.bodies() == []


def test_a_disk_that_is_no_task_medium(receiver, tmp_path):
    junk = tmp_path / 'junk.img'
    junk.write_bytes(b'\0' * 65536)
    proc = run_provisioner('run', '--medium', str(junk), '--run-dir', str(tmp_path / 'run'), '--dry-run')
    assert proc.returncode == 1
    assert 'neither an ISO 9660 nor a FAT filesystem' in proc.stderr


def test_notify_sends_each_kind_of_event(receiver, tmp_path):
    medium = build_medium(tmp_path / 'task.iso', linux_recipe(receiver.url))
    run_dir = tmp_path / 'run'
    assert run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run').returncode == 0
    for args in (['--status', 'progress', '--step', 'partition.service', '--state', 'started'],
                 ['--status', 'progress', '--step', 'partition.service', '--state', 'done'],
                 ['--status', 'failed', '--step', 'image-linux.service', '--no-log-tail'],
                 ['--status', 'success']):
        proc = run_provisioner('notify', '--run-dir', str(run_dir), *args)
        assert proc.returncode == 0, proc.stderr
    assert receiver.bodies(SERIAL) == [
        {'status': 'progress', 'step': 'partition.service', 'state': 'started', 'job_id': JOB_ID},
        {'status': 'progress', 'step': 'partition.service', 'state': 'done', 'job_id': JOB_ID},
        {'status': 'failed', 'failed_step': 'image-linux.service', 'reason': 'image-linux.service failed', 'job_id': JOB_ID},
        {'status': 'success', 'job_id': JOB_ID},
    ]


def test_notify_fails_without_settings_or_receiver(receiver, tmp_path):
    proc = run_provisioner('notify', '--run-dir', str(tmp_path), '--status', 'success')
    assert proc.returncode == 1
    assert 'callback.json does not exist' in proc.stderr
    # a receiver that refuses the token: not delivered, exit 1
    (tmp_path / 'callback.json').write_text(json.dumps({'url': receiver.url, 'job_id': JOB_ID, 'token': 'wrong-token-0123456789', 'serial': SERIAL}))
    proc = run_provisioner('notify', '--run-dir', str(tmp_path), '--status', 'success')
    assert proc.returncode == 1
    assert 'HTTP 401' in proc.stderr
    assert receiver.bodies() == []
