# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The build cache: one directory per stage and key, complete or absent (built in a temporary directory, then renamed).

Layout of ``cache_dir``::

    .lock                   one build at a time per cache (flock)
    stages/<stage>-<key>/   a finished stage (its files, DONE); at most ``keep`` per stage are kept
    podman/                 the image store of the builds (base images, the maintenance image, tool images)
    debs/<chain>/           every .deb mmdebstrap downloaded (apt checks them; never invalidated)
    apt/<chain>/            apt lists and archives mounted into the podman builds (never part of an image layer)
    site/<key>/             a site directory written from the ``site`` option (0700: it holds the node key)
    logs/<time>/            each stage's command output
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
import typing as t

DONE = 'DONE'


class Cache:
    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def ensure(self) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        for sub in ('stages', 'podman', 'debs', 'apt', 'site', 'logs', 'work'):
            os.makedirs(self.path(sub), mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> t.Iterator[None]:
        """Hold the cache for one build; a second build on the same cache waits for the first."""
        self.ensure()
        with open(self.path('.lock'), 'a+', encoding='utf-8') as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stage_dir(self, stage: str, key: str) -> str:
        return self.path('stages', '%s-%s' % (stage, key))

    def has(self, stage: str, key: str) -> bool:
        return os.path.isfile(os.path.join(self.stage_dir(stage, key), DONE))

    @contextlib.contextmanager
    def building(self, stage: str, key: str) -> t.Iterator[str]:
        """A fresh temporary directory for the stage; renamed to its final place only when the block succeeds."""
        final = self.stage_dir(stage, key)
        work = final + '.tmp'
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work, mode=0o755)
        try:
            yield work
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        with open(os.path.join(work, DONE), 'w', encoding='utf-8') as done:
            done.write('%s\n' % time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(work, final)

    def work_dir(self, name: str) -> str:
        """A scratch directory, emptied first (its content is not kept)."""
        path = self.path('work', name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, mode=0o700)
        return path

    def log_dir(self) -> str:
        return self.path('logs', time.strftime('%Y%m%dT%H%M%S') + '-%d' % os.getpid())

    def prune(self, stage: str, keep: int) -> list[str]:
        """Remove all but the ``keep`` newest finished directories of ``stage``; returns what was removed."""
        prefix = stage + '-'
        entries = [os.path.join(self.path('stages'), name) for name in os.listdir(self.path('stages'))
                   if name.startswith(prefix) and not name.endswith('.tmp') and '-' not in name[len(prefix):]]
        entries.sort(key=lambda path: os.stat(path).st_mtime, reverse=True)
        removed = entries[keep:] if keep else []
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed

    def prune_logs(self, keep: int = 10) -> None:
        logs = sorted(os.listdir(self.path('logs')), reverse=True)
        for name in logs[keep:]:
            shutil.rmtree(self.path('logs', name), ignore_errors=True)
