# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The node's senders against the real receiver (issue 15, class 1): a failure whose journal or reason holds bytes that
are not UTF-8 is delivered, with U+FFFD in their place, and a sender exits 0 only for a delivery the receiver confirmed.

Both command lines a node runs: ``python -m l3metal_contract.webhook`` (for units) and ``provisioner notify``
(the step units' OnFailure= handler), in the C locale that a maintenance image's units run in.
Each on both stores (SQLite, PostgreSQL): ``receiver`` here is ``receiver_on_both``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from l3metal_contract import webhook as _webhook
from l3metal_lab.receiver import unique_serial


@pytest.fixture
def receiver(receiver_on_both):
    return receiver_on_both


C_LOCALE = {'LC_ALL': 'C', 'LANG': 'C', 'PYTHONIOENCODING': '', 'PYTHONUTF8': '0'}
# what firmware tools and BIOS strings put in a journal: Latin-1, a truncated UTF-8 sequence, garbage
JOURNAL = b'flashing BIOS "Supermicro \xae X11" ...\nerror: \xc3 checksum \xff\xfe mismatch\n'
REASON = b'flash tool exited 3: \xe9chec'


def webhook_cli(receiver, job, token_file, *args, stdin=b''):
    argv = [os.fsencode(sys.executable), b'-m', b'l3metal_contract.webhook', b'--url', receiver.url.encode(), b'--serial',
            job['server_serial'].encode(), b'--token-file', os.fsencode(token_file), b'--job-id', job['job_id'].encode(), b'--attempts', b'2']
    return subprocess.run(argv + list(args), input=stdin, capture_output=True, check=False, env=dict(os.environ, **C_LOCALE), timeout=60)


def test_a_failure_with_a_journal_that_is_not_utf8_is_delivered_not_lost(receiver, tmp_path):
    job = receiver.create_job(unique_serial())
    receiver.set_status(job['job_id'], 'provisioning')
    token_file = tmp_path / 'token'
    token_file.write_text(job['token'])
    run = webhook_cli(receiver, job, token_file, b'failed', b'--step', b'firmware-flash.service', b'--reason', REASON, b'--log-tail-file', b'-',
                      stdin=JOURNAL)
    assert run.returncode == 0, run.stderr
    stored = receiver.get_job(job['job_id'])
    assert stored['status'] == 'failed' and stored['failed_step'] == 'firmware-flash.service'
    assert stored['reason'] == 'flash tool exited 3: \ufffdchec'
    assert stored['log_tail'] == JOURNAL.decode('utf-8', 'replace')
    # a later success is refused, and the command line says so with exit 1: the outcome is recorded once
    run = webhook_cli(receiver, job, token_file, b'success')
    assert run.returncode == 1 and b'did not take it' in run.stderr and b'outcome' in run.stderr, run.stderr
    assert receiver.get_job(job['job_id'])['status'] == 'failed'


def test_provisioner_notify_delivers_a_reason_that_is_not_utf8(receiver, tmp_path):
    job = receiver.create_job(unique_serial())
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'callback.json').write_text(json.dumps({'url': receiver.url, 'job_id': job['job_id'], 'token': job['token'],
                                                       'serial': job['server_serial']}))
    argv = [os.fsencode(sys.executable), b'-m', b'provisioner', b'notify', b'--status', b'failed', b'--step', b'bootloader-linux.service',
            b'--reason', REASON, b'--no-log-tail', b'--run-dir', os.fsencode(run_dir), b'--attempts', b'2']
    run = subprocess.run(argv, capture_output=True, check=False, env=dict(os.environ, **C_LOCALE), timeout=60)
    assert run.returncode == 0 and b'delivered (HTTP 200)' in run.stderr, run.stderr
    stored = receiver.get_job(job['job_id'])
    assert (stored['status'], stored['reason']) == ('failed', 'flash tool exited 3: \ufffdchec')
    statuses = [(event['source'], event['status']) for event in receiver.events(job['job_id']) if event['type'] == 'status']
    assert statuses == [('user', 'queued'), ('node', 'provisioning'), ('node', 'failed')]
    # the unit runs again (a second failure of the same step): not delivered, and not claimed
    run = subprocess.run(argv, capture_output=True, check=False, env=dict(os.environ, **C_LOCALE), timeout=60)
    assert run.returncode == 1 and b'not delivered' in run.stderr, run.stderr


def test_a_retry_whose_first_answer_was_lost_counts_as_delivered(receiver):
    job = receiver.create_job(unique_serial())
    body = _webhook.failed_body('partition.service', 'sgdisk failed', 'log')
    assert receiver.send_webhook(job, body, delivery_id='lost-answer-0001').status == 200  # stored; say its answer never arrived
    assert receiver.sender(job, attempts=1).send(body, delivery_id='lost-answer-0001') == 409  # the sender's retry: already stored
    assert receiver.get_job(job['job_id'])['status'] == 'failed'
