# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real PostgreSQL server for tests: a temporary cluster (Debian ``postgresql-15``: initdb, postgres)
on 127.0.0.1, a free port and a socket directory of its own, stopped and removed by ``stop()``.

PostgreSQL refuses to run as root: as root, the cluster belongs to ``nobody`` and its commands run
through ``setpriv`` (the receiver connects over TCP as role ``l3metal``, so the OS user does not matter).
The data directory is on /dev/shm when there is one: the receiver's tests are about what is stored and
in which order, not about the disk (fsync stays on; on tmpfs it costs nothing).  ``database()`` makes a
fresh empty database per test (``CREATE DATABASE``, tens of milliseconds).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

from .ports import free_port
from .services import Service

ROLE = 'l3metal'


def postgres_bin() -> Path | None:
    """The newest installed ``/usr/lib/postgresql/N/bin`` holding initdb, or None."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


class Postgres:
    """``initdb`` + ``postgres`` in the foreground until ``stop()``; ``url`` is the superuser's URL of database ``postgres``."""

    def __init__(self, work_dir: Path | None = None) -> None:
        found = postgres_bin()
        if found is None:
            raise RuntimeError('PostgreSQL is not installed (Debian package postgresql; tests/apt-packages.d/receiver.txt)')
        self.bin = found
        shm = Path('/dev/shm')
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.dir = Path(tempfile.mkdtemp(prefix='l3metal-postgres-', dir=str(base or work_dir or tempfile.gettempdir())))
        self.data = self.dir / 'data'
        self.socket_dir = self.dir / 'socket'
        self.port = free_port()
        self.service: Service | None = None
        self._names = itertools.count(1)
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam('nobody')
            self._prefix = ['setpriv', '--reuid=%d' % nobody.pw_uid, '--regid=%d' % nobody.pw_gid, '--clear-groups', '--']
            self._owner: tuple[int, int] | None = (nobody.pw_uid, nobody.pw_gid)
        else:
            self._owner = None

    @property
    def url(self) -> str:
        return self.url_of('postgres')

    def url_of(self, database: str) -> str:
        return 'postgresql://%s@127.0.0.1:%d/%s' % (ROLE, self.port, database)

    def start(self) -> Postgres:
        os.chmod(self.dir, 0o755)
        self.socket_dir.mkdir(mode=0o755)
        if self._owner is not None:
            os.chown(self.socket_dir, *self._owner)
            self.data.mkdir(mode=0o700)
            os.chown(self.data, *self._owner)
        log = self.dir / 'initdb.log'
        with open(log, 'wb') as handle:
            done = subprocess.run(self._prefix + [str(self.bin / 'initdb'), '-D', str(self.data), '-U', ROLE, '--auth=trust', '-E', 'UTF8',
                                                  '--locale=C.UTF-8', '--no-instructions'], stdout=handle, stderr=subprocess.STDOUT,
                                  check=False, cwd='/')
        if done.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError('initdb failed:\n%s' % log.read_text(errors='replace')[-3000:])
        argv = self._prefix + [str(self.bin / 'postgres'), '-D', str(self.data), '-h', '127.0.0.1', '-p', str(self.port), '-k', str(self.socket_dir),
                               '-c', 'max_connections=200', '-c', 'shared_buffers=32MB', '-c', 'fsync=on', '-c', 'synchronous_commit=on',
                               '-c', 'deadlock_timeout=100ms', '-c', 'log_min_messages=warning']
        # the server's log in the cluster's directory (nobody can write there)
        self.service = Service('postgres', argv, self.dir / 'postgres.log', port=self.port, cwd=Path('/'))
        self.service.start()
        # the port opens before the server accepts sessions ("the database system is starting up")
        deadline = time.monotonic() + 60
        while True:
            try:
                self.execute('SELECT 1')
                break
            except Exception:  # pylint: disable=broad-exception-caught  # psycopg.OperationalError until it is up
                if time.monotonic() > deadline or not self.service.running:
                    self.stop()
                    raise
                time.sleep(0.05)
        return self

    def execute(self, sql: str, database: str = 'postgres') -> list[tuple[t.Any, ...]]:
        """Run one statement as the superuser (autocommit) and return its rows."""
        import psycopg  # pylint: disable=import-outside-toplevel
        with psycopg.connect(self.url_of(database), autocommit=True) as conn:
            cursor = conn.execute(sql.encode())
            return list(cursor.fetchall()) if cursor.description else []

    def database(self) -> str:
        """A new empty database; its URL.  The name holds the process id: test processes forked from the one that started
        the server (ansible-test runs each unit test in a fork of its own) share it and each counts from the same number."""
        name = 'l3metal_%d_%d_%s' % (os.getpid(), next(self._names), secrets.token_hex(3))  # (a process id may come again)
        self.execute('CREATE DATABASE %s TEMPLATE template0' % name)
        return self.url_of(name)

    def drop(self, url: str) -> None:
        """Remove a database made by ``database()``, ending the sessions still connected to it."""
        name = url.rsplit('/', 1)[-1]
        if not name.replace('_', '').isalnum():
            raise ValueError('not a database of this server: %s' % url)
        self.execute('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)

    def kill_connections(self, database: str) -> int:
        """Terminate every session on ``database`` (a server restart as the receiver sees it); how many."""
        rows = self.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND pid != pg_backend_pid()"
                            % database.rsplit('/', 1)[-1].replace("'", ''))
        return len(rows)

    def stop(self) -> None:
        if self.service is not None and self.service.process is not None and self.service.running:
            try:
                self.service.process.send_signal(signal.SIGINT)  # fast shutdown: sessions are ended, nothing waits for clients
                self.service.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            self.service.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
