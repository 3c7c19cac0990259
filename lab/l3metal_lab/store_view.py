# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a receiver has stored, read beside it (connections of its own, never through the receiver), on either backend:
its SQLite file (read-only URI) or its PostgreSQL database (the URL given with ``--database-url``).

Tests use it to prove that a refused request changed nothing (``snapshot()`` before and after; ``version()`` for a cheap
"can anything have been committed" first) and to check the store's invariants (``l3metal_lab.receiver_inprocess.StoreChecker``),
with the same assertions on both stores.  SQL is written once with ``?`` placeholders and what both backends understand
(no ``rowid``, no ``json_each``, no ``PRAGMA``).  Connections are kept and reused (``connection()``): the fuzz suite reads
the store after every case, and a new PostgreSQL session per read would cost more than the case.
"""

from __future__ import annotations

import contextlib
import sqlite3
import typing as t
from pathlib import Path

from l3metal_receiver.store import is_postgres_url

# every column the receiver stores, by table, in one order for both backends, sorted by each table's primary key
# (PostgreSQL's jobs.ord, the insertion order, is a detail of its schema and left out)
SNAPSHOT_TABLES: dict[str, tuple[str, str]] = {
    'jobs': ('job_id, server_serial, status, recipe, recipe_sha256, token, media_key, public_url, failed_step, reason, log_tail, '
             'created_at, last_update', 'job_id'),
    'events': ('seq, job_id, at, type, source, status, step, state, delivery_id', 'seq'),
    'job_media': ('job_id, name, sha256, size, content, created_at', 'job_id, name'),
}

Row = tuple[t.Any, ...]


class StoreView:
    """Read-only access to one receiver's database: an SQLite file path or a PostgreSQL URL (``backend`` says which)."""

    def __init__(self, database: str | Path) -> None:
        self.database = str(database)
        self.backend = 'postgresql' if is_postgres_url(self.database) else 'sqlite'
        self._idle: list[t.Any] = []
        self._version_conn: t.Any = None

    def connect(self) -> t.Any:
        """A new connection in autocommit mode (each statement sees what is committed at that moment)."""
        if self.backend == 'sqlite':
            return sqlite3.connect('file:%s?mode=ro' % self.database, uri=True, isolation_level=None, check_same_thread=False)
        import psycopg  # pylint: disable=import-outside-toplevel  # only needed on PostgreSQL
        return psycopg.connect(self.database, autocommit=True, application_name='l3metal-store-view')

    def acquire(self) -> t.Any:
        """A kept connection (or a new one), not in a transaction; give it back with ``release``."""
        return self._idle.pop() if self._idle else self.connect()

    def release(self, conn: t.Any) -> None:
        """End what ``conn`` read (its snapshot) and keep it for the next read."""
        try:
            self.end_snapshot(conn)
        except Exception:  # pylint: disable=broad-exception-caught  # a broken connection is not kept
            conn.close()
            return
        self._idle.append(conn)

    @contextlib.contextmanager
    def connection(self) -> t.Iterator[t.Any]:
        conn = self.acquire()
        try:
            yield conn
        finally:
            self.release(conn)

    def rows(self, conn: t.Any, sql: str, *args: t.Any) -> list[Row]:
        """``sql`` with ``?`` placeholders on ``conn``; rows as tuples."""
        if self.backend == 'postgresql':
            sql = sql.replace('?', '%s')
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]

    def begin_snapshot(self, conn: t.Any) -> None:
        """Pin what ``conn`` reads to this moment (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ), while the
        receiver goes on writing."""
        conn.execute('BEGIN ISOLATION LEVEL REPEATABLE READ' if self.backend == 'postgresql' else 'BEGIN')
        conn.execute('SELECT COUNT(*) FROM jobs').fetchone()  # the read snapshot starts with the first read

    def end_snapshot(self, conn: t.Any) -> None:
        in_transaction = conn.in_transaction if self.backend == 'sqlite' else conn.info.transaction_status != 0  # 0: IDLE
        if in_transaction:
            conn.execute('ROLLBACK')

    def tables(self, conn: t.Any) -> dict[str, list[Row]]:
        """Every stored row of every table, as ``conn`` sees them."""
        return {table: self.rows(conn, 'SELECT %s FROM %s ORDER BY %s' % (columns, table, order))
                for table, (columns, order) in SNAPSHOT_TABLES.items()}

    def snapshot(self) -> dict[str, list[Row]]:
        """Every stored row of every table, read in one snapshot."""
        with self.connection() as conn:
            self.begin_snapshot(conn)
            return self.tables(conn)

    def version(self) -> str:
        """A value that changes whenever something may have been committed since the last call (conservative: a change
        only means "compare the rows").

        SQLite: ``PRAGMA data_version`` (changes with every commit of another connection).  PostgreSQL: the current
        snapshot as text (``xmin:xmax:in-progress ids``): a transaction that gets an id (any write, committed or rolled
        back, on any database of the server) moves xmax when it ends, and one in progress at the last call leaves the
        list when it ends, so an equal value means nothing was committed in between."""
        if self._version_conn is None:
            self._version_conn = self.connect()
        sql = 'SELECT pg_current_snapshot()::text' if self.backend == 'postgresql' else 'PRAGMA data_version'
        return str(self._version_conn.execute(sql).fetchone()[0])

    def close(self) -> None:
        for conn in self._idle + ([self._version_conn] if self._version_conn is not None else []):
            conn.close()
        self._idle = []
        self._version_conn = None
