# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The site node key (--node-key-file): a failure report of the dispatcher for the serial's active job, and nothing else.

The dispatcher's own use of it (no medium, unparsable recipe) is tested end to end in
tests/integration/maintenance_os/dispatcher/test_provisioner_run.py.
The reports run on both stores (``keyed``); a bad key file stops the start before any store is opened (SQLite only).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from l3metal_contract import webhook as _webhook
from l3metal_lab.receiver import LINUX_RECIPE, NODE_KEY, Receiver, unique_serial, write_node_key

DISPATCHER_FAILED = {'status': 'failed', 'failed_step': _webhook.SITE_KEY_STEP, 'reason': 'task medium /dev/sr1 does not exist'}
OLD_KEY = 'old-site-node-key-' + 'f' * 32


@pytest.fixture(scope='module', params=['sqlite', 'postgresql'])
def keyed(request, tmp_path_factory):
    """A receiver with two site keys in its file (the new one, and the old one while nodes still carry it), on each store
    (SQLite; a database of its own on the session's PostgreSQL server)."""
    work = tmp_path_factory.mktemp('keyed-receiver')
    key_file = write_node_key(work, '# rotated 2026-01\n%s\n%s' % (NODE_KEY, OLD_KEY))
    postgres = request.getfixturevalue('postgres_server') if request.param == 'postgresql' else None
    url = postgres.database() if postgres is not None else None
    server = Receiver(work, extra_args=['--node-key-file', str(key_file)] + (['--database-url', url] if url else [])).start()
    yield server
    server.stop()
    if postgres is not None:
        postgres.drop(url)


@pytest.mark.parametrize('body', [
    {'status': 'success'},
    {'status': 'progress', 'step': 'partition.service', 'state': 'started'},
    {'status': 'failed', 'failed_step': 'image-linux.service', 'reason': 'not the dispatcher'},
], ids=['success', 'progress', 'failed-other-step'])
def test_a_site_key_never_reports_progress_success_or_another_step(keyed, body):
    job = keyed.create_job(unique_serial(), LINUX_RECIPE)
    before = keyed.snapshot()
    answer = keyed.send_site_webhook(job['server_serial'], body, NODE_KEY)
    assert answer.status == 403, answer.body
    assert 'may only be status failed with failed_step provision-dispatcher.service' in answer.json['detail']
    assert keyed.snapshot() == before


def test_the_dispatcher_failure_with_either_site_key_fails_the_active_job(keyed):
    for key in (NODE_KEY, OLD_KEY):
        job = keyed.create_job(unique_serial(), LINUX_RECIPE)
        answer = keyed.send_site_webhook(job['server_serial'], DISPATCHER_FAILED, key, delivery_id='site-delivery-%s' % key[:3])
        assert answer.status == 200, answer.body
        stored = keyed.get_job(job['job_id'])
        assert (stored['status'], stored['failed_step'], stored['reason']) == ('failed', _webhook.SITE_KEY_STEP, DISPATCHER_FAILED['reason'])
        assert [(e['source'], e['status']) for e in keyed.events(job['job_id'])] == [('user', 'queued'), ('site', 'provisioning'),
                                                                                     ('site', 'failed')]
        # a retry of the same delivery is a duplicate, as for job tokens
        assert keyed.send_site_webhook(job['server_serial'], DISPATCHER_FAILED, key, delivery_id='site-delivery-%s' % key[:3]).status == 409


def test_refusals_change_nothing(keyed, shared_receiver):
    serial, other = unique_serial(), unique_serial()
    job = keyed.create_job(serial, LINUX_RECIPE)
    keyed.create_job(other, LINUX_RECIPE)
    before = keyed.snapshot()
    wrong = keyed.send_site_webhook(serial, DISPATCHER_FAILED, 'not-the-site-key-' + '0' * 32)
    assert wrong.status == 401 and 'wrong site node key' in wrong.json['detail']
    # the signature is bound to the serial: a report captured for one server does not fail another
    path, data, headers = keyed.signed_request({'server_serial': serial}, DISPATCHER_FAILED, token=_webhook.site_signing_key(NODE_KEY, serial))
    headers[_webhook.KEY_ID_HEADER] = _webhook.SITE_KEY_ID
    replayed = keyed.request('POST', path.replace(serial, other), raw=data, headers=headers, auth=False)
    assert replayed.status == 401
    # the job's token under the site key id is no site key; an unknown key id is refused
    path, data, headers = keyed.signed_request(job, DISPATCHER_FAILED)
    headers[_webhook.KEY_ID_HEADER] = _webhook.SITE_KEY_ID
    assert keyed.request('POST', path, raw=data, headers=headers, auth=False).status == 401
    answer = keyed.send_site_webhook(serial, DISPATCHER_FAILED, NODE_KEY, key_id='master')
    assert answer.status == 401 and 'X-L3metal-Key-Id must be job or site' in answer.json['detail']
    # a correct site report for a serial without an active job
    assert keyed.send_site_webhook(unique_serial(), DISPATCHER_FAILED, NODE_KEY).status == 404
    assert keyed.snapshot() == before
    # a receiver without --node-key-file takes no site-key report at all
    plain = shared_receiver
    job = plain.create_job(unique_serial(), LINUX_RECIPE)
    answer = plain.send_site_webhook(job['server_serial'], DISPATCHER_FAILED, NODE_KEY)
    assert answer.status == 401 and 'accepts no site-key reports' in answer.json['detail']
    assert plain.get_job(job['job_id'])['status'] == 'queued'


@pytest.mark.parametrize('content,message', [
    ('short-key\n', 'shorter than 32 characters; make one with: openssl rand -hex 32'),
    ('# only a comment\n\n', 'holds no key'),
])
def test_a_bad_node_key_file_stops_the_start(tmp_path, content, message):
    key_file = tmp_path / 'node-key'
    key_file.write_text(content)
    proc = subprocess.run([sys.executable, '-m', 'l3metal_receiver', '--data-dir', str(tmp_path / 'd'), '--media-dir', str(tmp_path / 'm'),
                           '--port', '0', '--node-key-file', str(key_file)], env={'PATH': '/usr/bin:/bin'},
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr and str(key_file) in proc.stderr
