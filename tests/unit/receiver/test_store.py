# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The receiver's storage and group commit, without HTTP, on both backends: SQLite and a real PostgreSQL server
(``postgres_url``: a fresh database per test on the session's temporary cluster, lab/l3metal_lab/postgres.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from l3metal_receiver import store as st
from l3metal_receiver.committer import GroupCommitter

AT = '2025-11-03T20:30:00.000Z'
TOKEN = 't' * 43


def new_job(job_id, serial='XF-1'):
    return st.NewJob(job_id=job_id, server_serial=serial, recipe_json='{"task_target": "x-update.target"}', recipe_sha256='0' * 64,
                     token=TOKEN, media_key='k' * 32, public_url='http://127.0.0.1:8080')


def integrity_errors():
    errors: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,)
    try:
        import psycopg
    except ImportError:
        return errors
    return errors + (psycopg.errors.IntegrityError,)


@pytest.fixture(params=['sqlite', 'postgresql'])
def database(request, tmp_path):
    """Where a store lives: an SQLite file, or a new database on the session's PostgreSQL server."""
    if request.param == 'sqlite':
        return str(tmp_path / 'receiver.sqlite3')
    return request.getfixturevalue('postgres_url')


@pytest.fixture
def store(database):
    db = st.open_store(database)
    db.migrate()
    yield db
    db.close()


def in_transaction(db, operation):
    db.begin()
    try:
        result = operation()
    except BaseException:
        db.rollback()
        raise
    db.commit()
    return result


def test_database_is_private_wal_and_migration_is_repeatable(tmp_path):
    store = st.JobStore(str(tmp_path / 'receiver.sqlite3'))
    store.migrate()
    assert (tmp_path / 'receiver.sqlite3').stat().st_mode & 0o777 == 0o600
    assert store.conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
    assert store.conn.execute('PRAGMA synchronous').fetchone()[0] == 2  # FULL
    store.migrate()
    assert store.schema_version() == st.SCHEMA_VERSION
    store.conn.execute('UPDATE schema_version SET version = ?', (st.SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match='newer receiver'):
        store.migrate()
    store.close()


def test_migration_is_repeatable_and_refuses_a_newer_schema(store):
    store.migrate()
    assert store.schema_version() == st.SCHEMA_VERSION
    store.execute('UPDATE schema_version SET version = ?', (st.SCHEMA_VERSION + 1,))
    with pytest.raises(st.SchemaTooNew, match='newer receiver'):
        store.migrate()


# The schema of main before schema_version (store.py at e990ca8, SCHEMA_VERSION 1), as its receiver created it.
MAIN_SCHEMA = st._SQLITE_V1 + 'PRAGMA user_version=1;'


def test_a_database_of_the_previous_receiver_is_upgraded_in_place(tmp_path):
    path = tmp_path / 'receiver.sqlite3'
    old = sqlite3.connect(path)
    old.executescript(MAIN_SCHEMA)
    old.execute("INSERT INTO jobs VALUES ('job-1', 'XF-1', 'failed', '{}', '', 'tok', 'key', 'http://x', 'a.service', NULL, NULL, ?, ?)", (AT, AT))
    old.executemany("INSERT INTO events (job_id, at, type, source, status, delivery_id) VALUES ('job-1', ?, 'status', ?, ?, ?)",
                    [(AT, 'user', 'queued', None), (AT, 'node', 'provisioning', None), (AT, 'node', 'failed', 'd-1')])
    old.commit()
    old.close()
    store = st.JobStore(str(path))
    assert store.schema_version() == 1
    store.migrate()
    assert store.schema_version() == st.SCHEMA_VERSION == 3
    assert store.get_job('job-1').status == 'failed' and [e.status for e in store.events('job-1')] == ['queued', 'provisioning', 'failed']
    # what version 2 adds: a second outcome of the job is refused by the database
    with pytest.raises(sqlite3.IntegrityError):
        store.execute("INSERT INTO events (job_id, at, type, source, status) VALUES ('job-1', ?, 'status', 'node', 'succeeded')", (AT,))
    store.close()


def test_one_active_job_per_serial_and_a_new_one_after_complete(store):
    in_transaction(store, lambda: store.create_job(new_job('job-1'), AT))
    with pytest.raises(st.ActiveJobExists):
        in_transaction(store, lambda: store.create_job(new_job('job-2'), AT))
    # the database refuses it too, whatever the code does
    with pytest.raises(integrity_errors()):
        store.execute("INSERT INTO jobs (job_id, server_serial, status, recipe, recipe_sha256, token, media_key, public_url, created_at, "
                      "last_update) VALUES ('job-3', 'XF-1', 'queued', '{}', '', '', '', '', '', '')")
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


def test_group_commit_batches_and_isolates_failures(database):
    committer = GroupCommitter(database)

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
    db = st.open_store(database)
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


def test_two_writers_one_active_job_and_one_outcome_by_the_database(postgres_url):
    """Two receivers' connections: the second creation of a job for the serial waits for the first commit and is refused
    (the partial unique index, not a check in the process), and the outcome is recorded once whoever records it."""
    first, second = st.open_store(postgres_url), st.open_store(postgres_url)
    first.migrate()
    try:
        first.begin()
        first.create_job(new_job('job-1'), AT)
        # the second writer checked before the first committed: its insert waits on the index, then is refused
        results: list[object] = []
        second.begin()

        def race():
            try:
                results.append(second.create_job(new_job('job-2'), AT))
            except st.StoreError as exc:
                results.append(exc)
            second.rollback()

        thread = threading.Thread(target=race)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive(), 'the second insert should wait for the first transaction'
        first.commit()
        thread.join(10)
        assert isinstance(results[0], st.ActiveJobExists) and results[0].job.job_id == 'job-1'
        in_transaction(first, lambda: first.transition('job-1', 'provisioning', AT))
        in_transaction(first, lambda: first.apply_webhook('XF-1', 'job-1', TOKEN, 'd-1', {'status': 'success'}, AT))
        with pytest.raises(st.OutcomeRecorded):
            in_transaction(second, lambda: second.apply_webhook('XF-1', 'job-1', TOKEN, 'd-2', {'status': 'success'}, AT))
        with pytest.raises(integrity_errors()):
            second.execute("INSERT INTO events (job_id, at, type, source, status) VALUES ('job-1', ?, 'status', 'node', 'failed')", (AT,))
    finally:
        first.close()
        second.close()


def test_database_url_option_and_an_unreachable_server_stops_the_start_with_one_line(tmp_path, capsys):
    from l3metal_lab.ports import free_port
    from l3metal_receiver.server import main, parse_args

    dirs = ['--data-dir', str(tmp_path / 'data'), '--media-dir', str(tmp_path / 'media')]
    with pytest.raises(SystemExit) as stop:
        parse_args(dirs + ['--database-url', 'mysql://db.example/jobs'])
    assert stop.value.code == 2 and '--database-url must start with postgresql://' in capsys.readouterr().err
    assert parse_args(dirs + ['--database-url', 'postgresql://l3metal@db.example/jobs']).database_url == 'postgresql://l3metal@db.example/jobs'
    # nothing listens there: exit 1 with one line naming the server, without the password
    url = 'postgresql://l3metal:s3cret-password@127.0.0.1:%d/jobs?connect_timeout=2' % free_port()
    assert main(dirs + ['--port', str(free_port()), '--database-url', url, '--log-file', str(tmp_path / 'receiver.log')]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('l3metal-receiver: cannot start: postgresql://l3metal:***@127.0.0.1:'), lines
    assert 'PostgreSQL: ' in lines[0] and 's3cret' not in lines[0] and 's3cret' not in (tmp_path / 'receiver.log').read_text()
