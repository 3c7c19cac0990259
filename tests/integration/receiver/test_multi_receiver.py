# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Two receiver processes on one real PostgreSQL server behind a real load balancer (nginx upstream, round robin):
a job's webhooks land on either, one active job per serial across both, a long poll on one sees what the other
stored, and kill -9 of one under load loses no acknowledged webhook while the other keeps answering."""

from __future__ import annotations

import concurrent.futures
import threading
import time
import typing as t
from pathlib import Path

import pytest

from l3metal_contract import webhook
from l3metal_lab.nginx import NginxBalancer
from l3metal_lab.postgres import Postgres
from l3metal_lab.receiver import Receiver, unique_serial

TOKEN = 'multi-receiver-api-token'


@pytest.fixture
def cluster(tmp_path: Path, postgres_server: Postgres) -> t.Iterator[tuple[Postgres, str, Receiver, Receiver, Receiver]]:
    """(server, a new database's URL, receiver A, receiver B, a client of the balancer in front of both)."""
    started: list[t.Any] = []
    try:
        postgres = postgres_server
        url = postgres.database()
        first = Receiver(tmp_path / 'a', api_token=TOKEN, extra_args=['--database-url', url]).start()
        started.append(first)
        second = Receiver(tmp_path / 'b', api_token=TOKEN, extra_args=['--database-url', url]).start()
        started.append(second)
        balancer = NginxBalancer(['127.0.0.1:%d' % first.port, '127.0.0.1:%d' % second.port], tmp_path / 'nginx').start()
        started.append(balancer)
        client = Receiver(tmp_path / 'client', api_token=TOKEN, port=balancer.port)  # not started: its HTTP helpers, aimed at nginx
        yield postgres, url, first, second, client
    finally:
        for service in reversed(started):
            service.stop()


def test_two_receivers_share_jobs_enforce_one_active_job_and_serve_long_polls(cluster):
    _postgres, _url, first, second, client = cluster
    serial = unique_serial('MR')
    job = client.create_job(serial)
    # one active job per serial across both receivers (each asked directly)
    for receiver in (first, second):
        recipe = {'task_target': 'x-update.target', 'firmware_url': 'http://f.example/b.bin'}
        answer = receiver.request('POST', '/api/v1/jobs', body={'server_serial': serial, 'recipe': recipe})
        assert answer.status == 409, answer.body
    client.set_status(job['job_id'], 'provisioning')
    # the node's webhooks through the balancer: round robin puts them on both receivers; each is stored once
    for n in range(6):
        answer = client.send_webhook(job, {'status': 'progress', 'step': 'step-%d.service' % n, 'state': 'done'})
        assert answer.status == 200, answer.body
    assert [e['step'] for e in first.events(job['job_id']) if e['type'] == 'progress'] == ['step-%d.service' % n for n in range(6)]
    assert first.events(job['job_id']) == second.events(job['job_id'])
    # the same delivery sent to both receivers: stored once, the other answers it as a duplicate (409 with the duplicate code,
    # which a sender counts as delivered)
    delivery = webhook.new_delivery_id()
    answers = [receiver.send_webhook(job, {'status': 'progress', 'step': 'dup.service', 'state': 'done'}, delivery_id=delivery)
               for receiver in (first, second)]
    assert [answer.status for answer in answers] == [200, 409]
    assert answers[1].json['code'] == webhook.DUPLICATE_DELIVERY_CODE
    assert len([e for e in second.events(job['job_id']) if e.get('step') == 'dup.service']) == 1
    # a long poll on A is answered by an event B stores (LISTEN/NOTIFY), well before the poll's own re-read
    last = first.events(job['job_id'])[-1]['seq']
    polled: dict[str, t.Any] = {}

    def poll() -> None:
        started = time.monotonic()
        polled['answer'] = first.expect(200, 'GET', '/api/v1/jobs/%s/events?after=%d&wait=20' % (job['job_id'], last))
        polled['seconds'] = time.monotonic() - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.5)
    sent = time.monotonic()
    assert second.send_webhook(job, {'status': 'success'}).status == 200
    thread.join(25)
    assert [e.get('status') for e in polled['answer']['events']] == ['succeeded']
    assert time.monotonic() - sent < 1.5, 'the long poll on A waited for its re-read instead of the notification'
    # the outcome is recorded once, whichever receiver the second report reaches
    assert first.send_webhook(job, {'status': 'failed', 'failed_step': 'x.service'}).status == 409
    assert client.get_job(job['job_id'])['status'] == 'succeeded'


def test_kill_9_of_one_receiver_under_load_loses_no_acknowledged_webhook(cluster):
    _postgres, _url, first, second, client = cluster
    jobs = []
    for _n in range(4):
        job = client.create_job(unique_serial('MK'))
        client.set_status(job['job_id'], 'provisioning')
        jobs.append(job)
    acknowledged: dict[str, set[str]] = {job['job_id']: set() for job in jobs}
    lock = threading.Lock()
    killed = threading.Event()

    def node(job: dict[str, t.Any]) -> int:
        """Send 40 progress webhooks as a node does: a delivery is retried (same id) until it is answered 200."""
        retries = 0
        for n in range(40):
            delivery = webhook.new_delivery_id()
            body = {'status': 'progress', 'step': 'load-%02d.service' % n, 'state': 'done'}
            for _attempt in range(50):
                try:
                    answer = client.send_webhook(job, body, delivery_id=delivery)
                except OSError:
                    answer = None
                delivered = answer is not None and (answer.status == 200 or answer.status == 409 and
                                                    answer.json.get('code') == webhook.DUPLICATE_DELIVERY_CODE)
                if delivered:
                    with lock:
                        acknowledged[job['job_id']].add('load-%02d.service' % n)
                    break
                retries += 1
                time.sleep(0.1)
            else:
                raise AssertionError('delivery %s never acknowledged' % delivery)
            if n == 10 and job is jobs[0]:
                first.kill()  # SIGKILL while the other nodes are sending
                killed.set()
        return retries

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        retries = sum(pool.map(node, jobs))
    assert killed.is_set()
    # every acknowledged webhook is stored (read through the receiver that lives), each once
    for job in jobs:
        steps = [e['step'] for e in second.events(job['job_id']) if e['type'] == 'progress']
        assert sorted(steps) == sorted(acknowledged[job['job_id']]) and len(acknowledged[job['job_id']]) == 40, job['job_id']
    # the survivor and the balancer keep answering
    assert client.get_job(jobs[0]['job_id'])['status'] == 'provisioning'
    assert second.get_job(jobs[1]['job_id'])['status'] == 'provisioning'
    assert retries < 4 * 40, retries
