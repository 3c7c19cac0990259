# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures: one real PostgreSQL server per session, and the receiver in-process (``l3metal_lab.receiver_inprocess.InProcess``),
per test or per module, each on both stores: SQLite and a new database on that server.

``ansible-test units`` (make units) runs every test in a fork of its own (its ``ansible_forked`` plugin): a fixture a
test sets up lives in that child, and a child never tears down what outlives its test (session and module fixtures).
A server started by the session fixture would then be started once per test and never stopped.  So the server is
started in the process that runs or forks the tests, after collection and only when a selected test uses it
(``pytest_collection_finish``); the children inherit it, and that process stops it at the end
(``pytest_sessionfinish``).  Directories on /dev/shm are made below one per session, removed at the end too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import typing as t
from pathlib import Path

import pytest

from l3metal_lab.postgres import Postgres
from l3metal_lab.receiver_inprocess import InProcess

BACKENDS = ['sqlite', 'postgresql']
# what the session started, and in which process (the one that may stop it)
_SESSION: dict[str, t.Any] = {'server': None, 'owner': None, 'shm': None}


def _uses_postgres(item: pytest.Item) -> bool:
    names = set(getattr(item, 'fixturenames', ()))
    callspec = getattr(item, 'callspec', None)
    return bool(names & {'postgres_server', 'postgres_url'}) or (callspec is not None and 'postgresql' in callspec.params.values())


def pytest_collection_finish(session: pytest.Session) -> None:
    if _SESSION['owner'] is not None:
        return
    _SESSION['owner'] = os.getpid()
    if any(_uses_postgres(item) for item in session.items):
        _SESSION['server'] = Postgres().start()
    shm = Path('/dev/shm')
    if shm.is_dir() and os.access(shm, os.W_OK) and any('shared_inprocess' in getattr(item, 'fixturenames', ()) for item in session.items):
        _SESSION['shm'] = tempfile.mkdtemp(prefix='l3metal-receiver-tests-', dir=shm)


def pytest_sessionfinish(session: pytest.Session) -> None:  # pylint: disable=unused-argument
    if _SESSION['owner'] == os.getpid():
        if _SESSION['server'] is not None:
            _SESSION['server'].stop()
        if _SESSION['shm'] is not None:
            shutil.rmtree(_SESSION['shm'], ignore_errors=True)
        _SESSION.update(server=None, owner=None, shm=None)


@pytest.fixture(scope='session')
def postgres_server() -> t.Iterator[Postgres]:
    """The session's real PostgreSQL server (a temporary cluster, ~1.5 s to start), stopped and removed at the end."""
    if _SESSION['server'] is not None:
        yield _SESSION['server']  # started before the first test; stopped by pytest_sessionfinish
        return
    server = Postgres().start()  # a test that asks for it at run time only (getfixturevalue), outside a forked run
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> t.Iterator[str]:
    """A new empty database on the session's server, dropped after the test."""
    url = postgres_server.database()
    yield url
    postgres_server.drop(url)


def store_settings(request: pytest.FixtureRequest) -> dict[str, t.Any]:
    """``InProcess`` keyword arguments for the backend of the fixture's parameter: none for SQLite (its file in the data
    directory), ``database_url`` of a new database (``postgres_url``, dropped after the test) for ``postgresql``."""
    if request.param == 'postgresql':
        return {'database_url': request.getfixturevalue('postgres_url')}
    return {}


@pytest.fixture(params=BACKENDS)
def inprocess(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[InProcess]:
    """A receiver for one test, on SQLite and on PostgreSQL (``snapshot``/``invariants`` read either: l3metal_lab.store_view)."""
    harness = InProcess(tmp_path, **store_settings(request))
    yield harness
    harness.close()


@pytest.fixture(params=BACKENDS)
def store_options(request: pytest.FixtureRequest) -> dict[str, t.Any]:
    """``InProcess`` keyword arguments for a test that starts its receivers itself (a restart on the same store)."""
    return store_settings(request)


def _fast_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new directory below the session's on /dev/shm (made by pytest_collection_finish when there is a writable one,
    removed at the end), else a temporary one."""
    if _SESSION['shm'] is None:
        return tmp_path_factory.mktemp('receiver')
    return Path(tempfile.mkdtemp(prefix='fuzz-', dir=_SESSION['shm']))


@pytest.fixture(scope='module', params=BACKENDS)
def shared_inprocess(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[InProcess]:
    """One receiver for the tests of a module (each uses serials of its own), per backend: the fuzz suite's thousands of cases.

    Its directories are on a tmpfs (/dev/shm) when there is one: thousands of commits, each an fsync on a disk, would
    take minutes, and these tests are about what is stored, not whether it reached the disk (durability is what the
    kill -9 tests of the real process show, tests/integration/receiver).  The PostgreSQL cluster's data directory is
    on /dev/shm too (l3metal_lab.postgres); its database is one of its own, dropped with the fixture."""
    server: Postgres | None = request.getfixturevalue('postgres_server') if request.param == 'postgresql' else None
    url = server.database() if server is not None else None
    directory = _fast_directory(tmp_path_factory)
    try:
        harness = InProcess(directory, database_url=url)
        try:
            yield harness
        finally:
            harness.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if server is not None and url is not None:
            server.drop(url)
