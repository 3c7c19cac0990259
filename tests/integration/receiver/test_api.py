# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook receiver's job API and signed webhooks, against the real process on 127.0.0.1.

What is stored runs on both stores: ``receiver`` and ``shared_receiver`` here are ``receiver_on_both`` and
``shared_receiver_on_both`` (SQLite, and a database of its own on the session's PostgreSQL server), with the same
assertions (``Receiver.snapshot`` reads either store).  The API token, TLS and the node's command line are the HTTP
layer and the sender, the same on either store: they run once, on SQLite (``receiver_factory``).
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3metal_contract import webhook as _webhook
from l3metal_contract.recipe import validate_recipe
from l3metal_lab.receiver import FIRMWARE_RECIPE, LINUX_RECIPE, unique_serial
from l3metal_lab.waiting import wait_for


@pytest.fixture
def receiver(receiver_on_both):
    return receiver_on_both


@pytest.fixture(scope='module')
def shared_receiver(shared_receiver_on_both):
    return shared_receiver_on_both


def statuses(receiver, job_id):
    return [event['status'] for event in receiver.events(job_id) if event['type'] == 'status']


def test_job_lifecycle_success(shared_receiver):
    receiver = shared_receiver
    serial = unique_serial()
    job = receiver.create_job(serial, LINUX_RECIPE)
    job_id, token = job['job_id'], job['token']
    assert job['status'] == 'queued' and job['server_serial'] == serial
    assert job['callback'] == {'url': receiver.url, 'job_id': job_id, 'token': token, 'serial': serial}
    # the recipe to put on the task medium passes the one schema, callback included
    assert validate_recipe(job['recipe']) == job['recipe']
    assert job['recipe']['callback'] == job['callback'] and len(token) >= 32
    assert job['media_url'].startswith(receiver.url + '/media/jobs/%s/' % job_id)

    # reads never show the token again
    stored = receiver.get_job(job_id)
    assert token not in json.dumps(stored) and token not in json.dumps(receiver.list_jobs(serial=serial))
    assert {key: stored[key] for key in ('job_id', 'status', 'failed_step', 'server_serial')} == \
        {'job_id': job_id, 'status': 'queued', 'failed_step': None, 'server_serial': serial}
    assert stored['created_at'].endswith('Z') and stored['last_update'] == stored['created_at']

    assert receiver.set_status(job_id, 'provisioning')['changed'] is True
    assert receiver.set_status(job_id, 'provisioning')['changed'] is False  # idempotent
    sender = receiver.sender(job)
    for step in ('partition.service', 'image-linux.service'):
        assert sender.send(_webhook.progress_body(step, 'started')) == 200
        assert sender.send(_webhook.progress_body(step, 'done')) == 200
    assert sender.send(_webhook.success_body()) == 200

    done = receiver.get_job(job_id)
    assert done['status'] == 'succeeded' and done['failed_step'] is None
    assert done['last_progress']['step'] == 'image-linux.service' and done['last_progress']['state'] == 'done'
    assert done['last_update'] > done['created_at']
    progress = [(e['step'], e['state']) for e in receiver.events(job_id) if e['type'] == 'progress']
    assert progress == [('partition.service', 'started'), ('partition.service', 'done'),
                        ('image-linux.service', 'started'), ('image-linux.service', 'done')]
    assert statuses(receiver, job_id) == ['queued', 'provisioning', 'succeeded']

    # a completed job cannot go back, and the serial is free for the next job
    assert receiver.set_status(job_id, 'complete')['status'] == 'complete'
    answer = receiver.request('POST', '/api/v1/jobs/%s/status' % job_id, body={'status': 'provisioning'})
    assert answer.status == 409 and 'complete' in answer.json['detail']
    assert receiver.get_job(job_id)['status'] == 'complete'
    second = receiver.create_job(serial, LINUX_RECIPE)
    assert second['job_id'] != job_id and second['token'] != token


def test_job_lifecycle_failure_keeps_step_reason_and_log_tail(shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial(), LINUX_RECIPE)
    sender = receiver.sender(job)
    # no "provisioning" from the playbook yet: the node's first report moves the job on
    assert sender.send(_webhook.progress_body('bootloader-linux.service', 'started')) == 200
    assert receiver.get_job(job['job_id'])['status'] == 'provisioning'
    log = ''.join('line %d of the journal\n' % n for n in range(5000))
    assert sender.send(_webhook.failed_body('bootloader-linux.service', 'grub-install exited 1', _webhook.trim_log_tail(log))) == 200
    failed = receiver.get_job(job['job_id'])
    assert failed['status'] == 'failed' and failed['failed_step'] == 'bootloader-linux.service'
    assert failed['reason'] == 'grub-install exited 1'
    assert failed['log_tail'].endswith('line 4999 of the journal\n') and failed['log_tail'].startswith('line ')
    assert len(failed['log_tail']) <= _webhook.MAX_LOG_TAIL
    # a late success is refused: the outcome is recorded once
    assert receiver.send_webhook(job, _webhook.success_body()).status == 409
    assert receiver.get_job(job['job_id'])['status'] == 'failed'
    assert statuses(receiver, job['job_id']) == ['queued', 'provisioning', 'failed']


def test_one_active_job_per_serial(shared_receiver):
    receiver = shared_receiver
    serial = unique_serial()
    first = receiver.create_job(serial)
    before = receiver.snapshot()
    answer = receiver.request('POST', '/api/v1/jobs', body={'server_serial': serial, 'recipe': FIRMWARE_RECIPE})
    assert answer.status == 409
    assert answer.json['active_job'] == {'job_id': first['job_id'], 'status': 'queued', 'server_serial': serial,
                                         'recipe_sha256': first['recipe_sha256']}
    assert receiver.snapshot() == before
    assert receiver.list_jobs(serial=serial, active='true')[0]['job_id'] == first['job_id']


def test_a_nul_is_kept_as_the_replacement_character_in_a_report_and_refused_elsewhere(shared_receiver):
    """PostgreSQL text cannot hold a NUL: a report's free text keeps U+FFFD in its place, an identifier or a URL is refused
    naming the field, a path with one is no job; the same answers on both stores, never a 500."""
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    raw = b'{"failed_step":"bootloader-linux.service","log_tail":"grub\\u0000 end","reason":"exit\\u0000","status":"failed"}'
    assert receiver.send_webhook(job, raw).status == 200
    stored = receiver.get_job(job['job_id'])
    assert (stored['status'], stored['reason'], stored['log_tail']) == ('failed', 'exit\ufffd', 'grub\ufffd end')
    before = receiver.snapshot()
    for body, path in (({'server_serial': unique_serial(), 'recipe': FIRMWARE_RECIPE, 'public_url': 'http://10.0.0.1/\x00'}, 'public_url'),
                       ({'server_serial': unique_serial() + '\x00', 'recipe': FIRMWARE_RECIPE}, 'server_serial')):
        answer = receiver.request('POST', '/api/v1/jobs', body=body)
        assert answer.status == 400 and [error['path'] for error in answer.json['errors']] == [path], answer.body
    answer = receiver.request('POST', '/api/v1/jobs/%s/status' % job['job_id'], body={'status': 'complete', 'reason': '\x00'})
    assert answer.status == 400 and answer.json['errors'][0]['path'] == 'reason', answer.body
    assert receiver.request('GET', '/api/v1/jobs/%s%%00' % job['job_id']).status == 404
    assert receiver.send_webhook(dict(job, server_serial=job['server_serial'] + '\x00'), _webhook.success_body()).status == 404  # (quoted: %00)
    assert receiver.snapshot() == before


def test_list_filters(receiver):
    a = receiver.create_job('XF-A')
    b = receiver.create_job('XF-B')
    receiver.set_status(b['job_id'], 'complete')
    c = receiver.create_job('XF-B')
    receiver.set_status(c['job_id'], 'provisioning')

    def ids(jobs):
        return [job['job_id'] for job in jobs]

    assert ids(receiver.list_jobs()) == [c['job_id'], b['job_id'], a['job_id']]  # newest first
    assert ids(receiver.list_jobs(serial='XF-B')) == [c['job_id'], b['job_id']]
    assert ids(receiver.list_jobs(status='queued,provisioning')) == [c['job_id'], a['job_id']]
    assert ids(receiver.list_jobs(status='complete')) == [b['job_id']]
    assert ids(receiver.list_jobs(active='true', serial='XF-B')) == [c['job_id']]
    assert ids(receiver.list_jobs(limit='1', offset='1')) == [b['job_id']]
    for query in ('status=done', 'active=yes', 'limit=0', 'limit=abc', 'serial=a%20b'):
        answer = receiver.request('GET', '/api/v1/jobs?' + query)
        assert answer.status == 400, query


# ----------------------------------------------------------------------------------------------------
# bad input: the exact status, and nothing stored changes

HUGE = b'{"server_serial": "XF-1", "recipe": {"task_target": "' + b'x' * (17 * 1024 * 1024) + b'"}}'

BAD_JOB_REQUESTS = [
    ('not json', dict(raw=b'{"server_serial": '), 400),
    ('json array', dict(body=[1, 2]), 400),
    ('duplicate key', dict(raw=b'{"server_serial": "A", "server_serial": "B", "recipe": {}}'), 400),
    ('NaN', dict(raw=b'{"server_serial": "XF-1", "recipe": {"task_target": "x.target", "wim_index": NaN}}'), 400),
    ('not utf-8', dict(raw=b'{"server_serial": "\xff"}'), 400),
    ('serial is a number', dict(body={'server_serial': 12, 'recipe': FIRMWARE_RECIPE}), 400),
    ('serial with a slash', dict(body={'server_serial': 'a/b', 'recipe': FIRMWARE_RECIPE}), 400),
    ('serial missing', dict(body={'recipe': FIRMWARE_RECIPE}), 400),
    ('recipe missing', dict(body={'server_serial': 'XF-1'}), 400),
    ('recipe is a list', dict(body={'server_serial': 'XF-1', 'recipe': []}), 400),
    ('unknown field', dict(body={'server_serial': 'XF-1', 'recipe': FIRMWARE_RECIPE, 'priority': 1}), 400),
    ('recipe with a callback', dict(body={'server_serial': 'XF-1', 'recipe': dict(FIRMWARE_RECIPE, callback={
        'url': 'http://x', 'job_id': 'j', 'token': 't' * 20})}), 400),
    ('attached not a list', dict(body={'server_serial': 'XF-1', 'recipe': FIRMWARE_RECIPE, 'attached': 'unattend_xml'}), 400),
    ('public_url not a URL', dict(body={'server_serial': 'XF-1', 'recipe': FIRMWARE_RECIPE, 'public_url': 'ftp://x'}), 400),
    ('body too large', dict(raw=HUGE), 413),
    ('text/plain', dict(body={'server_serial': 'XF-1', 'recipe': FIRMWARE_RECIPE}, content_type='text/plain'), 415),
    ('no content type', dict(body={'server_serial': 'XF-1', 'recipe': FIRMWARE_RECIPE}, content_type=None), 415),
]


@pytest.mark.parametrize('request_kwargs, status', [case[1:] for case in BAD_JOB_REQUESTS], ids=[case[0] for case in BAD_JOB_REQUESTS])
def test_bad_job_request_is_refused_without_change(shared_receiver, request_kwargs, status):
    receiver = shared_receiver
    receiver.create_job(unique_serial())
    job_dirs = sorted(p.name for p in (receiver.media_dir / 'jobs').iterdir())
    before = receiver.snapshot()
    answer = receiver.request('POST', '/api/v1/jobs', **request_kwargs)
    assert answer.status == status, answer.body[:500]
    assert answer.header('Content-Type') == 'application/problem+json'
    assert answer.json['status'] == status and answer.json['detail']
    assert receiver.snapshot() == before
    assert sorted(p.name for p in (receiver.media_dir / 'jobs').iterdir()) == job_dirs


def test_invalid_recipe_lists_every_problem(shared_receiver):
    receiver = shared_receiver
    recipe = dict(LINUX_RECIPE, target_disk='sda', partition_layout=[{'size': '100%', 'type_guid': 'zz'}, {'size': '1G', 'type_guid': '8300'}])
    serial = unique_serial()
    answer = receiver.request('POST', '/api/v1/jobs', body={'server_serial': serial, 'recipe': recipe})
    assert answer.status == 400
    paths = {error['path'] for error in answer.json['errors']}
    assert {'recipe.target_disk', 'recipe.partition_layout[0].type_guid', 'recipe.partition_layout[0].size'} <= paths
    assert receiver.list_jobs(serial=serial) == []


def _webhook_cases():
    """(name, how to make the request from a provisioning job, expected status)."""
    def signed(body, skew=0, **kwargs):
        # the timestamp is taken when the test runs, not when the cases are collected
        return lambda receiver, job: receiver.send_webhook(job, body, timestamp=int(time.time()) + skew if skew else None, **kwargs)

    def raw(mutate):
        def send(receiver, job):
            path, data, headers = receiver.signed_request(job, _webhook.success_body())
            path, data, headers = mutate(path, data, headers)
            return receiver.request('POST', path, raw=data, headers=headers, auth=False, content_type=None)
        return send

    def drop(name):
        return raw(lambda p, d, h: (p, d, {k: v for k, v in h.items() if k != name}))

    return [
        ('unknown serial', raw(lambda p, d, h: (p + '-NOBODY', d, h)), 404),
        ('no signature header', drop(_webhook.SIGNATURE_HEADER), 401),
        ('no timestamp header', drop(_webhook.TIMESTAMP_HEADER), 401),
        ('no delivery header', drop(_webhook.DELIVERY_HEADER), 401),
        ('wrong token', signed(_webhook.success_body(), token='not-the-job-token-0123456789'), 401),
        ('body changed after signing', raw(lambda p, d, h: (p, d.replace(b'success', b'failed!'), h)), 401),
        ('signature of another scheme', raw(lambda p, d, h: (p, d, dict(h, **{_webhook.SIGNATURE_HEADER: 'v2=' + h[_webhook.SIGNATURE_HEADER][3:]}))), 401),
        ('stale timestamp', signed(_webhook.success_body(), skew=-301), 401),
        ('timestamp from the future', signed(_webhook.success_body(), skew=301), 401),
        ('malformed delivery id', raw(lambda p, d, h: (p, d, dict(h, **{_webhook.DELIVERY_HEADER: 'a b'}))), 401),
        ('not json', signed(b'{"status": "success"'), 400),
        ('json list', signed(b'["success"]'), 400),
        ('unknown status', signed({'status': 'done'}), 400),
        ('failed without step', signed({'status': 'failed'}), 400),
        ('step is a number', signed({'status': 'progress', 'step': 5, 'state': 'started'}), 400),
        ('unknown progress state', signed({'status': 'progress', 'step': 'a.service', 'state': 'half'}), 400),
        ('unknown field', signed({'status': 'success', 'extra': True}), 400),
        ('log_tail too long', signed({'status': 'failed', 'failed_step': 'a.service', 'log_tail': 'x' * (_webhook.MAX_LOG_TAIL + 1)}), 400),
        ('duplicate key', signed(b'{"status": "success", "status": "failed"}'), 400),
        ('job_id of another job', signed({'status': 'success', 'job_id': 'another-job'}), 409),
        ('body too large', signed(b'{"status": "success", "pad": "' + b'x' * _webhook.MAX_BODY_BYTES + b'"}'), 413),
        ('text/plain', raw(lambda p, d, h: (p, d, dict(h, **{'Content-Type': 'text/plain'}))), 415),
    ]


WEBHOOK_CASES = _webhook_cases()


@pytest.mark.parametrize('send, status', [case[1:] for case in WEBHOOK_CASES], ids=[case[0] for case in WEBHOOK_CASES])
def test_bad_webhook_is_refused_without_change(shared_receiver, send, status):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    receiver.set_status(job['job_id'], 'provisioning')
    before = receiver.snapshot()
    answer = send(receiver, job)
    assert answer.status == status, answer.body[:500]
    assert answer.json['status'] == status
    assert receiver.snapshot() == before
    # the job still takes a correct webhook afterwards
    assert receiver.send_webhook(job, _webhook.success_body()).status == 200


def test_replayed_delivery_is_refused_and_the_sender_counts_it_delivered(shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    first = receiver.send_webhook(job, _webhook.progress_body('partition.service', 'started'), delivery_id='delivery-0001')
    assert first.status == 200
    before = receiver.snapshot()
    # the same event again (a retry whose first answer was lost): new timestamp and signature, same delivery id
    again = receiver.send_webhook(job, _webhook.progress_body('partition.service', 'started'), delivery_id='delivery-0001')
    assert again.status == 409 and 'already accepted' in again.json['detail']
    assert receiver.sender(job).send(_webhook.progress_body('partition.service', 'started'), delivery_id='delivery-0001') == 409
    assert receiver.snapshot() == before


def test_illegal_user_transitions_change_nothing(shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    job_id = job['job_id']
    path = '/api/v1/jobs/%s/status' % job_id
    cases = [
        ({'status': 'succeeded'}, 400),                       # only a node reports success
        ({'status': 'queued'}, 400),
        ({'status': 'failed'}, 400),                          # failed_step is required
        ({'status': 'complete', 'failed_step': 'x'}, 400),
        ({'status': 'failed', 'failed_step': 'has space'}, 400),
        ({'status': 'provisioning', 'extra': 1}, 400),
    ]
    before = receiver.snapshot()
    for body, status in cases:
        assert receiver.request('POST', path, body=body).status == status, body
    assert receiver.request('POST', '/api/v1/jobs/no-such-job/status', body={'status': 'complete'}).status == 404
    assert receiver.snapshot() == before

    receiver.send_webhook(job, _webhook.success_body())
    before = receiver.snapshot()
    for wanted in ('provisioning', {'status': 'failed', 'failed_step': 'redfish-boot'}):
        body = wanted if isinstance(wanted, dict) else {'status': wanted}
        answer = receiver.request('POST', path, body=body)
        assert answer.status == 409 and answer.json['job_status'] == 'succeeded'
    assert receiver.snapshot() == before

    receiver.set_status(job_id, 'complete')
    before = receiver.snapshot()
    assert receiver.request('POST', path, body={'status': 'provisioning'}).status == 409
    assert receiver.set_status(job_id, 'complete')['changed'] is False
    # the node of a complete job has no active job to report to
    assert receiver.send_webhook(job, _webhook.success_body()).status == 404
    assert receiver.snapshot() == before


def test_user_marks_a_job_failed_from_the_controller(shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    receiver.set_status(job['job_id'], 'provisioning')
    failed = receiver.set_status(job['job_id'], 'failed', failed_step='redfish-boot', reason='BMC refused the one-time boot')
    assert failed['status'] == 'failed' and failed['failed_step'] == 'redfish-boot'
    assert [(e['status'], e['source']) for e in receiver.events(job['job_id']) if e['type'] == 'status'] == \
        [('queued', 'user'), ('provisioning', 'user'), ('failed', 'user')]


def test_token_reissue_only_while_queued(shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    reissued = receiver.expect(200, 'POST', '/api/v1/jobs/%s/token' % job['job_id'])
    assert reissued['token'] != job['token'] and reissued['recipe']['callback']['token'] == reissued['token']
    assert receiver.send_webhook(job, _webhook.progress_body('a.service', 'started')).status == 401  # the old token is dead
    assert receiver.send_webhook(reissued, _webhook.progress_body('a.service', 'started')).status == 200
    # provisioning now: the node holds the token, it cannot be replaced
    answer = receiver.request('POST', '/api/v1/jobs/%s/token' % job['job_id'])
    assert answer.status == 409 and 'provisioning' in answer.json['detail']


# ----------------------------------------------------------------------------------------------------
# durability

def test_restart_mid_job_keeps_state(receiver):
    job = receiver.create_job('XF-RESTART', LINUX_RECIPE)
    other = receiver.create_job('XF-OTHER')
    receiver.set_status(job['job_id'], 'provisioning')
    receiver.sender(job).send(_webhook.progress_body('partition.service', 'done'), delivery_id='before-restart')
    before = receiver.get_job(job['job_id'])
    events = receiver.events(job['job_id'])

    receiver.restart()
    assert receiver.get_job(job['job_id']) == before
    assert receiver.events(job['job_id']) == events
    assert receiver.get_job(other['job_id'])['status'] == 'queued'
    # the token survived, and so did the record of the delivery already accepted
    assert receiver.send_webhook(job, _webhook.progress_body('partition.service', 'done'), delivery_id='before-restart').status == 409
    assert receiver.sender(job).send(_webhook.success_body()) == 200
    assert receiver.get_job(job['job_id'])['status'] == 'succeeded'


def test_every_answered_webhook_survives_sigkill(receiver):
    jobs = [receiver.create_job('XF-KILL-%02d' % n) for n in range(20)]
    for job in jobs:
        receiver.set_status(job['job_id'], 'provisioning')
    answered: list[tuple[str, str]] = []
    lock = threading.Lock()

    def report(job, n):
        delivery = 'kill-%s-%03d' % (job['job_id'][:8], n)
        answer = receiver.send_webhook(job, _webhook.progress_body('step-%03d.service' % n, 'done'), delivery_id=delivery)
        if answer.status == 200:
            with lock:
                answered.append((job['job_id'], 'step-%03d.service' % n))

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda item: report(*item), [(job, n) for job in jobs for n in range(10)]))
    assert len(answered) == 200
    receiver.kill()
    receiver.start()
    stored = {(job['job_id'], event['step']) for job in jobs for event in receiver.events(job['job_id']) if event['type'] == 'progress'}
    assert stored == set(answered)


# ----------------------------------------------------------------------------------------------------
# authentication, TLS, long polls, the node-side command line

def test_api_token_guards_user_endpoints_only(receiver_factory):
    receiver = receiver_factory(api_token='api-secret-token-42')
    assert receiver.request('GET', '/healthz', auth=False).status == 200
    for method, path in (('GET', '/api/v1/jobs'), ('POST', '/api/v1/jobs'), ('GET', '/api/v1/jobs/x'), ('POST', '/api/v1/jobs/x/status')):
        answer = receiver.request(method, path, body={}, auth=False)
        assert answer.status == 401, path
        assert answer.header('WWW-Authenticate').startswith('Bearer')
        assert receiver.request(method, path, body={}, headers={'Authorization': 'Bearer wrong'}).status == 401
    job = receiver.create_job('XF-AUTH')
    # nodes authenticate with the job's signature, not the API token
    assert receiver.send_webhook(job, _webhook.success_body()).status == 200
    assert receiver.list_jobs()[0]['status'] == 'succeeded'


def test_tls(receiver_factory, tls_files):
    receiver = receiver_factory(tls=tls_files)
    job = receiver.create_job('XF-TLS')
    assert job['callback']['url'] == receiver.url and receiver.url.startswith('https://')
    assert receiver.sender(job).send(_webhook.success_body()) == 200
    assert receiver.get_job(job['job_id'])['status'] == 'succeeded'
    insecure = _webhook.WebhookSender(receiver.url, 'XF-TLS', job['token'], attempts=1)  # no CA: the certificate is not trusted
    with pytest.raises(_webhook.WebhookDeliveryError):
        insecure.send(_webhook.success_body())


def test_long_poll_answers_when_an_event_arrives(shared_receiver):
    receiver = shared_receiver
    job = receiver.create_job(unique_serial())
    last = receiver.events(job['job_id'])[-1]['seq']
    quiet = time.monotonic()
    answer = receiver.expect(200, 'GET', '/api/v1/jobs/%s/events?after=%d&wait=0.3' % (job['job_id'], last))
    assert answer['events'] == [] and answer['last_seq'] == last and time.monotonic() - quiet >= 0.3

    result = {}

    def poll():
        result['answer'] = receiver.expect(200, 'GET', '/api/v1/jobs/%s/events?after=%d&wait=30' % (job['job_id'], last))
        result['at'] = time.monotonic()

    waiting_before = receiver.expect(200, 'GET', '/healthz')['long_polls']
    poller = threading.Thread(target=poll)
    poller.start()
    # the poll has reached the receiver and parked: the answer below must come from the event, not the 30 s
    wait_for(lambda: receiver.expect(200, 'GET', '/healthz')['long_polls'] > waiting_before, 10, what='the long poll to park at the receiver')
    sent = time.monotonic()
    receiver.send_webhook(job, _webhook.progress_body('partition.service', 'started'))
    poller.join(timeout=10)
    assert result['at'] - sent < 5
    assert [e.get('step') for e in result['answer']['events']] == [None, 'partition.service']  # provisioning, then the progress
    assert result['answer']['job']['status'] == 'provisioning'
    for query in ('wait=61', 'wait=x', 'after=-1'):
        assert receiver.request('GET', '/api/v1/jobs/%s/events?%s' % (job['job_id'], query)).status == 400


def test_node_command_line_for_systemd_units(receiver_factory, tmp_path):
    receiver = receiver_factory()
    job = receiver.create_job('XF-CLI')
    token_file = tmp_path / 'token'
    token_file.write_text(job['token'] + '\n')
    base = [sys.executable, '-m', 'l3metal_contract.webhook', '--url', receiver.url, '--serial', 'XF-CLI', '--token-file', str(token_file),
            '--job-id', job['job_id']]
    run = subprocess.run(base + ['progress', '--step', 'partition.service', '--state', 'started'], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    run = subprocess.run(base + ['failed', '--step', 'image-linux.service', '--reason', 'pull failed', '--log-tail-file', '-'],
                         input='oras: 404 not found\n', capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    failed = receiver.get_job(job['job_id'])
    assert (failed['status'], failed['failed_step'], failed['reason'], failed['log_tail']) == \
        ('failed', 'image-linux.service', 'pull failed', 'oras: 404 not found\n')
    assert job['token'] not in run.stderr
    # refused (wrong token): exit 1, no retries; unreachable: exit 75 so a unit can retry later
    token_file.write_text('wrong-token-0123456789abcdef')
    run = subprocess.run(base + ['success'], capture_output=True, text=True, check=False)
    assert run.returncode == 1 and 'HTTP 401' in run.stderr
    receiver.stop()
    run = subprocess.run(base + ['--attempts', '1', 'success'], capture_output=True, text=True, check=False)
    assert run.returncode == 75 and 'cannot reach' in run.stderr


def test_webhooks_for_many_serials_at_once(shared_receiver):
    receiver = shared_receiver
    jobs = [receiver.create_job(unique_serial('MANY')) for _n in range(50)]
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(lambda job: receiver.sender(job).send(_webhook.success_body()), jobs))
    assert codes == [200] * 50
    assert [receiver.get_job(job['job_id'])['status'] for job in jobs] == ['succeeded'] * 50


# ----------------------------------------------------------------------------------------------------
# generated request bodies: never a server error, and a refusal never changes anything

JSON_SCALARS = st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)
RECIPE_LIKE = st.fixed_dictionaries({}, optional={
    'task_target': st.sampled_from(['install-linux.target', 'supermicro-update.target', 'x.target', '']) | JSON_SCALARS,
    'firmware_url': st.sampled_from(['http://fw.example.com/a.bin', 'ftp://x']) | JSON_SCALARS,
    'target_disk': st.sampled_from(['/dev/sda', 'sda']) | JSON_SCALARS,
    'partition_layout': JSON_VALUES,
    'callback': JSON_VALUES,
})
JOB_BODIES = st.fixed_dictionaries({}, optional={
    'server_serial': st.sampled_from(['XF-GEN', 'bad serial', '']) | JSON_SCALARS,
    'recipe': RECIPE_LIKE | JSON_VALUES,
    'attached': st.lists(st.sampled_from(['unattend_xml', 'user_data', 'nope'])) | JSON_SCALARS,
    'public_url': st.sampled_from(['http://10.0.0.1:8080', 'nope']) | JSON_SCALARS,
    'extra': JSON_SCALARS,
})
WEBHOOK_BODIES = st.fixed_dictionaries({}, optional={
    'status': st.sampled_from(['success', 'failed', 'progress', 'other']) | JSON_SCALARS,
    'failed_step': st.sampled_from(['a.service', 'bad step']) | JSON_SCALARS,
    'step': st.sampled_from(['partition.service', '']) | JSON_SCALARS,
    'state': st.sampled_from(['started', 'done', 'middle']) | JSON_SCALARS,
    'reason': JSON_SCALARS,
    'log_tail': JSON_SCALARS,
    'job_id': JSON_SCALARS,
})


def _encode(value):
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def generated(receiver, **strategies):
    """Hypothesis settings for ``receiver``'s store: 120 examples on SQLite, 40 on PostgreSQL (the same checks; each example
    costs a few more round trips there, and the unit fuzz suite runs thousands in-process)."""
    return lambda test: settings(max_examples=40 if receiver.database_url else 120, deadline=None,
                                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])(given(**strategies)(test))


def test_generated_job_bodies(shared_receiver):
    @generated(shared_receiver, body=JOB_BODIES | JSON_VALUES | st.binary(max_size=200))
    def run(body):
        check_generated_job_body(shared_receiver, body)
    run()


def check_generated_job_body(receiver, body):
    before = receiver.snapshot()
    answer = receiver.request('POST', '/api/v1/jobs', raw=_encode(body))
    assert answer.status in (202, 400, 409), (answer.status, answer.body[:300])
    assert answer.json['status'] == answer.status if answer.status != 202 else answer.json['status'] == 'queued'
    if answer.status == 202:
        validate_recipe(answer.json['recipe'])  # whatever was accepted is a recipe a node can run
        receiver.set_status(answer.json['job_id'], 'complete')
    else:
        assert receiver.snapshot() == before


def test_generated_webhook_bodies(shared_receiver):
    @generated(shared_receiver, body=WEBHOOK_BODIES | JSON_VALUES | st.binary(max_size=200), signed=st.booleans())
    def run(body, signed):
        check_generated_webhook_body(shared_receiver, body, signed)
    run()


def check_generated_webhook_body(receiver, body, signed):
    job = receiver.create_job(unique_serial('GEN'))
    receiver.set_status(job['job_id'], 'provisioning')
    before = receiver.snapshot()
    data = _encode(body)
    if signed:
        answer = receiver.send_webhook(job, data)
    else:
        path, _data, headers = receiver.signed_request(job, b'{"status":"success"}')
        answer = receiver.request('POST', path, raw=data, headers=headers, auth=False)  # signature of another body
    assert answer.status in ((200, 400, 409) if signed else (401,)), (answer.status, answer.body[:300])
    if answer.status == 200:
        parsed = _webhook.parse_body(data)
        assert receiver.get_job(job['job_id'])['status'] == {'success': 'succeeded', 'failed': 'failed'}.get(parsed['status'], 'provisioning')
    else:
        assert receiver.snapshot() == before
    receiver.set_status(job['job_id'], 'complete')
