# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provisioner run / notify against the real webhook receiver.

Each test registers a job through the receiver's API (as the provision_job module does), puts the
job's callback into the recipe, builds the task medium with task_iso's code, runs the dispatcher
CLI and reads the job's status, failed_step, reason and events back through the receiver's API.
Failures before a per-job token is known go through the site fallback (site node key).
"""

from __future__ import annotations

import json
import stat

import pytest

from l3metal_contract import recipe_schema as _recipe_schema

from l3metal_lab.playbook import localhost_play
from l3metal_lab.provisioner import (DISPATCHER_UNIT, UNATTEND, USER_DATA, NodeJob, b64, build_medium, json_file, linux_recipe, read_env_names,
                                     run_provisioner, windows_recipe)
from l3metal_lab.receiver import NODE_KEY, write_node_key

QUEUED = {'type': 'status', 'source': 'user', 'status': 'queued'}


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def job(site_receiver):
    return NodeJob(site_receiver)


def site_env(receiver, tmp_path, key: str = NODE_KEY, url: str | None = None) -> dict[str, str]:
    """What provision-dispatcher.service gets from /etc/l3metal/site.env of a site image."""
    return {'L3METAL_RECEIVER_URL': url or receiver.url, 'L3METAL_NODE_KEY_FILE': str(write_node_key(tmp_path, key))}


def serial_file(tmp_path, serial: str):
    """Stands in for DMI's product_serial (the test host's is not the job's serial)."""
    path = tmp_path / 'product_serial'
    path.write_text(serial + '\n')
    return str(path)


@pytest.mark.parametrize('fmt', ['iso', 'fat'])
def test_dry_run_writes_the_run_directory_and_names_the_target(fmt, job, tmp_path):
    medium = build_medium(tmp_path / 'task.img', job.recipe(), fmt)
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'would start install-linux.target'

    assert sorted(p.name for p in run_dir.iterdir()) == ['callback.json', 'layout.json', 'meta-data', 'recipe.env', 'recipe.json', 'user-data']
    assert (run_dir / 'user-data').read_bytes() == USER_DATA
    assert (run_dir / 'meta-data').read_text() == 'instance-id: "%s"\n' % job.job_id
    assert json_file(run_dir / 'layout.json')[2] == {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}
    assert read_env_names(run_dir / 'recipe.env') == ['TASK_TARGET', 'TARGET_DISK', 'OCI_URL', 'JOB_ID', 'SERIAL_NUMBER']
    assert json_file(run_dir / 'callback.json') == job.callback
    # secrets are for root only; the token never reaches the env file the tool containers read
    for name in ('callback.json', 'user-data', 'recipe.json'):
        assert mode(run_dir / name) == 0o600, name
    for name in ('recipe.env', 'layout.json', 'meta-data'):
        assert mode(run_dir / name) == 0o644, name
    assert job.callback['token'] not in (run_dir / 'recipe.env').read_text()
    assert 'user_data' not in json_file(run_dir / 'recipe.json')
    assert job.events() == [QUEUED]  # a dry run that succeeds reports nothing


def test_medium_made_by_the_task_iso_module(ansible_playbook, site_receiver, tmp_path):
    job = NodeJob(site_receiver, windows_recipe(), attached=['unattend_xml'])
    dest = tmp_path / 'task.iso'
    play = localhost_play([{'name': 'medium', 'l3metal.provision.task_iso': {
        'dest': str(dest), 'recipe': job.doc['recipe'], 'unattend_xml': UNATTEND.decode()}}])
    ansible_playbook(play).assert_ok()
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(dest), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'would start install-windows.target'
    assert (run_dir / 'unattend.xml').read_bytes() == UNATTEND
    assert mode(run_dir / 'unattend.xml') == 0o600
    assert 'WIM_INDEX="2"' in (run_dir / 'recipe.env').read_text()
    assert json_file(run_dir / 'callback.json') == job.callback


def test_payloads_inside_the_recipe_are_accepted(job, tmp_path):
    # a medium whose recipe.json still carries the payload (base64) instead of a separate file
    recipe = job.recipe()
    medium = build_medium(tmp_path / 'task.iso', recipe, replace={'user-data': None, 'recipe.json': (json.dumps(recipe) + '\n').encode()})
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / 'user-data').read_bytes() == USER_DATA


def failed_at_dispatcher(job: NodeJob, source: str = 'node') -> str:
    """The job failed once, at provision-dispatcher.service, reported by the node; returns the reason."""
    state = job.wait_for_status('failed')
    assert state['failed_step'] == DISPATCHER_UNIT
    # a report for a queued job records provisioning first (the node booted before the playbook marked it)
    assert job.events() == [QUEUED, {'type': 'status', 'source': source, 'status': 'provisioning'},
                            {'type': 'status', 'source': source, 'status': 'failed'}]
    return state['reason']


def schema_with_version(version: str) -> bytes:
    schema = dict(_recipe_schema.RECIPE_SCHEMA, **{'$id': 'urn:l3metal:provision:recipe-schema:' + version})
    return (json.dumps(schema, indent=2, sort_keys=True) + '\n').encode()


def invalid_layout_recipe():
    recipe = linux_recipe()
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
    'unknown-target': (lambda: linux_recipe(task_target='rescue.target'), False, {},
                       ['task_target rescue.target is not a provisioning target installed', 'install-linux.target']),
    'unknown-firmware-target': (lambda: linux_recipe(task_target='acme-update.target', firmware_url='http://127.0.0.1/fw.bin'), True, {},
                                ['task_target acme-update.target is not a provisioning target installed']),
    'windows-without-unattend': (windows_recipe, False, {}, ['unattend_xml: is required for install-windows.target']),
    'payload-conflict': (linux_recipe, True, {'recipe.json': None}, ['user_data is both in recipe.json and in the file user-data']),
}


@pytest.mark.parametrize('case', sorted(PREFLIGHT_CASES))
def test_each_preflight_failure_fails_the_job_at_the_dispatcher(case, job, tmp_path):
    make_recipe, validate, replace, expected = PREFLIGHT_CASES[case]
    recipe = job.recipe(make_recipe())
    if case == 'payload-conflict':  # the recipe still has user_data, and a different user-data file sits beside it
        recipe_json = dict(recipe, user_data=b64(b'#cloud-config\nhostname: other\n'))
        replace = {'recipe.json': (json.dumps(recipe_json) + '\n').encode()}
    medium = build_medium(tmp_path / 'task.iso', recipe, validate=validate, replace=replace)
    run_dir = tmp_path / 'run'
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 1
    assert 'would start' not in proc.stdout
    assert 'failed webhook delivered (HTTP 200)' in proc.stderr
    reason = failed_at_dispatcher(job)
    for fragment in expected:
        assert fragment in reason, (fragment, reason)
    assert 'pre-flight failure' in proc.stderr
    assert not (run_dir / 'recipe.env').exists()  # nothing half-written for the units to pick up


def test_starting_the_target_failing_is_reported(job, tmp_path):
    # no systemd runs this host's services, so systemctl start fails: that must be a reported failure
    medium = build_medium(tmp_path / 'task.iso', job.recipe())
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'run'))
    assert proc.returncode == 1
    assert 'systemctl start install-linux.target' in failed_at_dispatcher(job)


# ---------------------------------------------------------------------------------------------------
# before a per-job token is known: the site fallback (receiver and node key of the site image)


def test_without_a_medium_the_site_key_reports_the_failure(job, site_receiver, tmp_path):
    missing = tmp_path / 'missing.iso'
    # without site settings there is nothing to sign with: logged, and the job stays as it was
    proc = run_provisioner('run', '--medium', str(missing), '--run-dir', str(tmp_path / 'run'), '--serial-file', serial_file(tmp_path, job.serial))
    assert proc.returncode == 1
    assert 'task medium %s does not exist' % missing in proc.stderr
    assert 'no usable per-job callback settings' in proc.stderr and 'no receiver is configured' in proc.stderr
    assert job.events() == [QUEUED]

    # the kernel command line's l3metal.receiver= wins over site.env (which names a dead port here)
    cmdline = tmp_path / 'cmdline'
    cmdline.write_text('BOOT_IMAGE=/vmlinuz root=live:CDLABEL=L3M quiet l3metal.receiver=%s console=ttyS0\n' % site_receiver.url)
    proc = run_provisioner('run', '--medium', str(missing), '--run-dir', str(tmp_path / 'run'), '--serial-file', serial_file(tmp_path, job.serial),
                           '--cmdline-file', str(cmdline), env=site_env(site_receiver, tmp_path, url='http://127.0.0.1:9'))
    assert proc.returncode == 1
    assert 'failed webhook through the site fallback to %s for serial %s delivered (HTTP 200)' % (site_receiver.url, job.serial) in proc.stderr
    assert 'task medium %s does not exist' % missing in failed_at_dispatcher(job, source='site')


@pytest.mark.parametrize('content', [b'{"task_target": "install-linux.target",', b'[1, 2]', b'\xff\xfe'])
def test_a_recipe_that_does_not_parse_is_reported_with_the_site_key(content, job, site_receiver, tmp_path):
    medium = build_medium(tmp_path / 'task.iso', job.recipe(), replace={'recipe.json': content})
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'run'), '--dry-run',
                           '--serial-file', serial_file(tmp_path, job.serial), env=site_env(site_receiver, tmp_path))
    assert proc.returncode == 1
    assert 'recipe.json on %s: recipe' % medium in proc.stderr
    assert 'recipe.json on %s: recipe' % medium in failed_at_dispatcher(job, source='site')


def test_a_wrong_site_key_is_refused_and_changes_nothing(job, site_receiver, tmp_path):
    medium = build_medium(tmp_path / 'task.iso', job.recipe(), replace={'recipe.json': b'not json'})
    before = site_receiver.snapshot()
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'run'), '--dry-run', '--serial-file',
                           serial_file(tmp_path, job.serial), env=site_env(site_receiver, tmp_path, key='another-site-' + '0' * 32))
    assert proc.returncode == 1
    assert 'failed webhook not delivered: HTTP 401' in proc.stderr and 'wrong site node key' in proc.stderr
    assert site_receiver.snapshot() == before
    assert job.state()['status'] == 'queued'


def test_the_site_key_cannot_fail_another_job_than_the_one_the_recipe_names(site_receiver, tmp_path):
    # an old job's medium whose callback lost its url and token: the site report names the old job, the receiver keeps the new one
    old = NodeJob(site_receiver)
    site_receiver.set_status(old.job_id, 'complete')
    new_doc = site_receiver.create_job(old.serial, {key: value for key, value in old.doc['recipe'].items() if key != 'callback'})
    recipe = dict(old.recipe(), callback={'job_id': old.job_id, 'serial': old.serial})
    medium = build_medium(tmp_path / 'task.iso', recipe, validate=False)
    before = site_receiver.snapshot()
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'run'), '--dry-run', '--serial-file',
                           serial_file(tmp_path, old.serial), env=site_env(site_receiver, tmp_path))
    assert proc.returncode == 1
    assert 'callback.url: is required' in proc.stderr
    assert 'the receiver did not take it (HTTP 409' in proc.stderr
    assert site_receiver.snapshot() == before
    assert site_receiver.get_job(new_doc['job_id'])['status'] == 'queued'


def test_site_fallback_and_callbacks_over_tls_with_the_site_ca(receiver_factory, tls_files, tmp_path):
    receiver = receiver_factory(tls=tls_files, extra_args=['--node-key-file', str(write_node_key(tmp_path))])
    env = dict(site_env(receiver, tmp_path), L3METAL_RECEIVER_CA_FILE=tls_files[2])
    fallback, per_job = NodeJob(receiver), NodeJob(receiver)
    medium = build_medium(tmp_path / 'a.iso', fallback.recipe(), replace={'recipe.json': b'{'})
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(tmp_path / 'a'), '--dry-run',
                           '--serial-file', serial_file(tmp_path, fallback.serial), env=env)
    assert 'through the site fallback to %s for serial %s delivered' % (receiver.url, fallback.serial) in proc.stderr, proc.stderr
    failed_at_dispatcher(fallback, source='site')
    # the CA is also written for the units' provisioner notify
    medium = build_medium(tmp_path / 'b.iso', per_job.recipe())
    run_dir = tmp_path / 'b'
    assert run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run', env=env).returncode == 0
    assert json_file(run_dir / 'callback.json') == dict(per_job.callback, ca_file=tls_files[2])
    proc = run_provisioner('notify', '--run-dir', str(run_dir), '--status', 'failed', '--step', 'partition.service', '--no-log-tail')
    assert proc.returncode == 0, proc.stderr
    assert per_job.wait_for_status('failed')['failed_step'] == 'partition.service'


def test_a_disk_that_is_no_task_medium(tmp_path):
    junk = tmp_path / 'junk.img'
    junk.write_bytes(b'\0' * 65536)
    proc = run_provisioner('run', '--medium', str(junk), '--run-dir', str(tmp_path / 'run'), '--dry-run')
    assert proc.returncode == 1
    assert 'neither an ISO 9660 nor a FAT filesystem' in proc.stderr


# ---------------------------------------------------------------------------------------------------
# provisioner notify (what the units run)


def test_notify_sends_each_kind_of_event(site_receiver, tmp_path):
    jobs = {}
    for outcome in ('success', 'failed'):
        job = jobs[outcome] = NodeJob(site_receiver)
        medium = build_medium(tmp_path / ('%s.iso' % outcome), job.recipe())
        run_dir = tmp_path / outcome
        assert run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run').returncode == 0
        final = ['--status', 'success'] if outcome == 'success' else ['--status', 'failed', '--step', 'image-linux.service', '--no-log-tail']
        for args in (['--status', 'progress', '--step', 'partition.service', '--state', 'started'],
                     ['--status', 'progress', '--step', 'partition.service', '--state', 'done'], final):
            proc = run_provisioner('notify', '--run-dir', str(run_dir), *args)
            assert proc.returncode == 0, proc.stderr
    node_events = [
        QUEUED,
        {'type': 'status', 'source': 'node', 'status': 'provisioning'},
        {'type': 'progress', 'source': 'node', 'step': 'partition.service', 'state': 'started'},
        {'type': 'progress', 'source': 'node', 'step': 'partition.service', 'state': 'done'},
    ]
    assert jobs['success'].events() == node_events + [{'type': 'status', 'source': 'node', 'status': 'succeeded'}]
    assert jobs['failed'].events() == node_events + [{'type': 'status', 'source': 'node', 'status': 'failed'}]
    failed = jobs['failed'].state()
    assert (failed['status'], failed['failed_step'], failed['reason']) == ('failed', 'image-linux.service', 'image-linux.service failed')


def test_notify_fails_without_settings_or_with_a_wrong_token(job, site_receiver, tmp_path):
    proc = run_provisioner('notify', '--run-dir', str(tmp_path), '--status', 'success')
    assert proc.returncode == 1
    assert 'callback.json does not exist' in proc.stderr
    # a receiver that refuses the token: not delivered, exit 1, nothing stored
    before = site_receiver.snapshot()
    (tmp_path / 'callback.json').write_text(json.dumps(dict(job.callback, token='wrong-token-0123456789')))
    proc = run_provisioner('notify', '--run-dir', str(tmp_path), '--status', 'success')
    assert proc.returncode == 1
    assert 'HTTP 401' in proc.stderr
    assert site_receiver.snapshot() == before
