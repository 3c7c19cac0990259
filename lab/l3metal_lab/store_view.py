# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a receiver has stored, read beside it (another connection, never through the receiver), on either backend:
its SQLite file (read-only URI) or its PostgreSQL database (the URL given with ``--database-url``).

Tests use it to prove that a refused request changed nothing (``snapshot()`` before and after, ``pin()`` for a cheap
"did anything commit" first) and to check the store's invariants (``l3metal_lab.receiver_inprocess.StoreChecker``).
SQL is written once with ``?`` placeholders and the statements both backends share (no ``rowid``, no ``json_each``).
"""

from __future__ import annotations

import sqlite3
import typing as t
from pathlib import Path

# every column the receiver stores, by table, in one order for both backends (PostgreSQL's jobs.ord is the insertion
# order, a detail of its schema), sorted by each table's primary key
SNAPSHOT_TABLES: dict[str, tuple[str, str]] = {
    'jobs': ('job_id, server_serial, status, recipe, recipe_sha256, token, media_key, public_url, failed_step, reason, log_tail, '
             'created_at, last_update', 'job_id'),
    'events': ('seq, job_id, at, type, source, status, step, state, delivery_id', 'seq'),
    'job_media': ('*', 'job_id, name'),
}


def is_postgres(database: str | Path) -> bool:
    return str(database).startswith(('postgresql://', 'postgres://'))


class StoreView:
    """Read-only connections to one receiver's database: an SQLite file path or a PostgreSQL URL."""

    def __init__(self, database: str | Path) -> None:
        self.database = str(database)
        self.backend = 'postgresql' if is_postgres(database) else 'sqlite'
        self._version_conn: t.Any = None

    def connect(self) -> t.Any:
        """A new connection in autocommit mode (every statement sees what is committed at that moment)."""
        if self.backend == 'sqlite':
            return sqlite3.connect('file:%s?mode=ro' % self.database, uri=True, isolation_level=None)
        import psycopg  # pylint: disable=import-outside-toplevel  # only needed on PostgreSQL
        return psycopg.connect(self.database, autocommit=True)

    def rows(self, conn: t.Any, sql: str, *args: t.Any) -> list[tuple[t.Any, ...]]:
        """``sql`` with ``?`` placeholders on ``conn``; rows as tuples."""
        if self.backend == 'postgresql':
            sql = sql.replace('?', '%s')
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]

    def begin_snapshot(self, conn: t.Any) -> None:
        """Pin what ``conn`` reads to this moment (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ)."""
        conn.execute('BEGIN ISOLATION LEVEL REPEATABLE READ' if self.backend == 'postgresql' else 'BEGIN')
        conn.execute('SELECT COUNT(*) FROM jobs').fetchone()  # the read snapshot starts with the first read

    def tables(self, conn: t.Any) -> dict[str, list[tuple[t.Any, ...]]]:
        return {table: self.rows(conn, 'SELECT %s FROM %s ORDER BY %s' % (columns, table, order))
                for table, (columns, order) in SNAPSHOT_TABLES.items()}

    def snapshot(self) -> dict[str, list[tuple[t.Any, ...]]]:
        """Every stored row of every table, read in one snapshot."""
        conn = self.connect()
        try:
            self.begin_snapshot(conn)
            return self.tables(conn)
        finally:
            conn.close()

    def version(self) -> t.Any:
        """A value that changes whenever something may have been committed since the last call.

        SQLite: ``PRAGMA data_version`` (changes with every commit of another connection).  PostgreSQL: the xmax of the
        current snapshot, the first transaction id not yet completed; any transaction that wrote (committed or rolled
        back, on any database of the server) moves it, so equal values mean nothing was committed, and a changed one
        only means "compare the rows"."""
        if self._version_conn is None:
            self._version_conn = self.connect()
        sql = 'SELECT pg_snapshot_xmax(pg_current_snapshot())' if self.backend == 'postgresql' else 'PRAGMA data_version'
        return self._version_conn.execute(sql).fetchone()[0]

    def close(self) -> None:
        if self._version_conn is not None:
            self._version_conn.close()
            self._version_conn = None
