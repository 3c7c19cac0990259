# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The receiver's storage and group commit, without HTTP."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from l3metal_receiver import store as st
from l3metal_receiver.committer import GroupCommitter

AT = '2025-11-03T20:30:00.000Z'
TOKEN = 't' * 43


def new_job(job_id, serial='XF-1'):
    return st.NewJob(job_id=job_id, server_serial=serial, recipe_json='{"task_target": "x-update.target"}', recipe_sha256='0' * 64,
                     token=TOKEN, media_key='k' * 32, public_url='http://127.0.0.1:8080')


@pytest.fixture
def store(tmp_path):
    db = st.JobStore(str(tmp_path / 'receiver.sqlite3'))
    db.migrate()
    yield db
    db.close()


def in_transaction(db, operation):
    db.conn.execute('BEGIN IMMEDIATE')
    try:
        result = operation()
    except BaseException:
        db.conn.execute('ROLLBACK')
        raise
    db.conn.execute('COMMIT')
    return result


def test_database_is_private_wal_and_migration_is_repeatable(tmp_path, store):
    assert (tmp_path / 'receiver.sqlite3').stat().st_mode & 0o777 == 0o600
    assert store.conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    assert store.conn.execute('PRAGMA synchronous').fetchone()[0] == 2  # FULL
    store.migrate()
    store.conn.execute('PRAGMA user_version=%d' % (st.SCHEMA_VERSION + 1))
    with pytest.raises(RuntimeError, match='newer receiver'):
        store.migrate()


def test_one_active_job_per_serial_and_a_new_one_after_complete(store):
    in_transaction(store, lambda: store.create_job(new_job('job-1'), AT))
    with pytest.raises(st.ActiveJobExists):
        in_transaction(store, lambda: store.create_job(new_job('job-2'), AT))
    # the database refuses it too, whatever the code does
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute("INSERT INTO jobs VALUES ('job-3', 'XF-1', 'queued', '{}', '', '', '', '', NULL, NULL, NULL, '', '')")
    in_transaction(store, lambda: store.transition('job-1', 'complete', AT))
    assert in_transaction(store, lambda: store.create_job(new_job('job-2'), AT)).status == 'queued'


def test_refused_webhook_leaves_no_trace(store):
    in_transaction(store, lambda: store.create_job(new_job('job-1'), AT))
    started = {'status': 'progress', 'step': 'a.service', 'state': 'started'}
    in_transaction(store, lambda: store.apply_webhook('XF-1', 'job-1', TOKEN, 'delivery-1', started, AT))
    before = [store.get_job('job-1'), store.events('job-1')]
    for body, delivery, error in (({'status': 'success'}, 'delivery-1', st.DuplicateDelivery),
                                  ({'status': 'success', 'job_id': 'other'}, 'delivery-2', st.JobMismatch)):
        with pytest.raises(error):
            in_transaction(store, lambda body=body, delivery=delivery: store.apply_webhook('XF-1', 'job-1', TOKEN, delivery, body, AT))
    with pytest.raises(st.JobMismatch):
        in_transaction(store, lambda: store.apply_webhook('XF-1', 'job-0', TOKEN, 'delivery-3', {'status': 'success'}, AT))
    with pytest.raises(st.JobMismatch):  # signed with a token that was replaced in between
        in_transaction(store, lambda: store.apply_webhook('XF-1', 'job-1', 'old-token', 'delivery-4', {'status': 'success'}, AT))
    assert [store.get_job('job-1'), store.events('job-1')] == before


def test_group_commit_batches_and_isolates_failures(tmp_path):
    committer = GroupCommitter(str(tmp_path / 'receiver.sqlite3'))

    async def scenario():
        committer.start(asyncio.get_running_loop())
        await committer.run(lambda db: db.create_job(new_job('job-1'), AT))
        await committer.run(lambda db: db.transition('job-1', 'provisioning', AT))
        bodies = [{'status': 'progress', 'step': 'step-%d.service' % n, 'state': 'done'} for n in range(200)]
        calls = [committer.run(lambda db, n=n, body=body: db.apply_webhook('XF-1', 'job-1', TOKEN, 'delivery-%04d' % n, body, AT))
                 for n, body in enumerate(bodies)]
        calls.append(committer.run(lambda db: db.apply_webhook('XF-1', 'job-1', TOKEN, 'delivery-0000', bodies[0], AT)))  # a replay
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(scenario())
    committer.stop()
    assert all(isinstance(result, st.WebhookOutcome) for result in results[:200])
    assert isinstance(results[200], st.DuplicateDelivery)
    # 203 operations, far fewer commits: writes that arrive together share one fsync
    assert committer.operations == 203 and 0 < committer.commits < 50
    db = st.JobStore(str(tmp_path / 'receiver.sqlite3'))
    assert len([event for event in db.events('job-1') if event.type == 'progress']) == 200
    db.close()


def test_a_site_key_report_is_recorded_with_its_source(store):
    in_transaction(store, lambda: store.create_job(new_job('job-1'), AT))
    failed = {'status': 'failed', 'failed_step': 'provision-dispatcher.service', 'reason': 'no task medium'}
    outcome = in_transaction(store, lambda: store.apply_webhook('XF-1', 'job-1', TOKEN, 'delivery-1', failed, AT, source='site'))
    assert (outcome.previous_status, outcome.status) == ('queued', 'failed')
    # a report for a queued job records provisioning first (the node booted before the playbook marked it)
    assert [(e.source, e.status) for e in store.events('job-1')] == [('user', 'queued'), ('site', 'provisioning'), ('site', 'failed')]
    assert store.get_job('job-1').reason == 'no task medium'
