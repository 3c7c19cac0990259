# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures: the receiver in-process (``l3metal_lab.receiver_inprocess.InProcess``), per test or per module."""

from __future__ import annotations

import os
import shutil
import tempfile
import typing as t
from pathlib import Path

import pytest

from l3metal_lab.postgres import Postgres
from l3metal_lab.receiver_inprocess import InProcess


@pytest.fixture(scope='session')
def postgres_server() -> t.Iterator[Postgres]:
    """One real PostgreSQL server (a temporary cluster, ~1.5 s to start) for the session, stopped and removed at the end."""
    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> str:
    """A new empty database on the session's server."""
    return postgres_server.database()


@pytest.fixture
def inprocess(tmp_path: Path) -> t.Iterator[InProcess]:
    """A receiver for one test."""
    harness = InProcess(tmp_path)
    yield harness
    harness.close()


@pytest.fixture(scope='module')
def shared_inprocess(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[InProcess]:
    """One receiver for the tests of a module (each uses serials of its own): the fuzz suite's thousands of cases.

    Its directories are on a tmpfs (/dev/shm) when there is one: thousands of commits, each an fsync on a disk, would
    take minutes, and these tests are about what is stored, not whether it reached the disk (durability is what the
    kill -9 tests of the real process show, tests/integration/receiver)."""
    shm = Path('/dev/shm')
    if shm.is_dir() and os.access(shm, os.W_OK):
        directory = Path(tempfile.mkdtemp(prefix='l3metal-receiver-fuzz-', dir=shm))
    else:
        directory = tmp_path_factory.mktemp('receiver')
    try:
        harness = InProcess(directory)
        try:
            yield harness
        finally:
            harness.close()
    finally:
        if directory.parent == shm:
            shutil.rmtree(directory, ignore_errors=True)
