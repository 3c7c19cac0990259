# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Input digests: every stage of the build is keyed on the SHA-256 of what it is made from.

A key covers contents, never timestamps: touching a file changes nothing, editing one changes the keys of
the stages that read it (and of the stages built from those), and nothing else.  Trees are hashed by
relative path, kind (file, directory, symlink), the executable bit (``COPY`` keeps modes) and content.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import typing as t

# Never part of a source tree's identity: bytecode and the metadata of editable installs.
IGNORED_NAMES = frozenset({'__pycache__', '.pytest_cache', '.mypy_cache', '.ruff_cache'})
IGNORED_SUFFIXES = ('.pyc', '.pyo', '.egg-info')

Value = None | bool | int | float | str | t.Sequence[t.Any] | t.Mapping[str, t.Any]


def ignored(name: str) -> bool:
    return name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES)


def file_sha256(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def tree_entries(root: str) -> t.Iterator[tuple[str, str]]:
    """(relative path, description) of every entry below ``root``, sorted; the description names kind and content."""
    if os.path.islink(root) or not os.path.isdir(root):
        yield '.', describe(root)
        return
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not ignored(d))
        rel_dir = os.path.relpath(current, root)
        for name in sorted(dirs):
            path = os.path.join(current, name)
            if os.path.islink(path):  # os.walk lists a symlink to a directory among the directories
                yield os.path.normpath(os.path.join(rel_dir, name)), describe(path)
        for name in sorted(files):
            if not ignored(name):
                yield os.path.normpath(os.path.join(rel_dir, name)), describe(os.path.join(current, name))
        if rel_dir != '.':
            yield rel_dir + '/', 'dir'


def describe(path: str) -> str:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return 'symlink ' + os.readlink(path)
    if stat.S_ISREG(info.st_mode):
        return 'file %s %s' % ('x' if info.st_mode & 0o111 else '-', file_sha256(path))
    if stat.S_ISDIR(info.st_mode):
        return 'dir'
    return 'special %o' % stat.S_IFMT(info.st_mode)


def tree_sha256(root: str) -> str:
    digest = hashlib.sha256()
    for rel, description in tree_entries(root):
        digest.update(('%s\0%s\n' % (rel, description)).encode('utf-8', 'surrogateescape'))
    return digest.hexdigest()


class Digest:
    """An ordered record of named inputs and its SHA-256 (``hexdigest``); ``inputs`` keeps what went in, for reports."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.inputs: dict[str, str] = {}
        self._hash = hashlib.sha256(('l3metal maintenance_iso stage %s\n' % stage).encode())

    def _put(self, name: str, text: str) -> Digest:
        if name in self.inputs:
            raise ValueError('input %r given twice to the %s digest' % (name, self.stage))
        self.inputs[name] = text
        self._hash.update(('%s\0%s\n' % (name, text)).encode('utf-8', 'surrogateescape'))
        return self

    def value(self, name: str, value: Value) -> Digest:
        """A setting: any JSON value (command lines, package lists, options)."""
        return self._put(name, json.dumps(value, sort_keys=True, separators=(',', ':')))

    def file(self, name: str, path: str) -> Digest:
        return self._put(name, describe(path) if os.path.lexists(path) else 'missing')

    def tree(self, name: str, path: str) -> Digest:
        return self._put(name, ('tree ' + tree_sha256(path)) if os.path.lexists(path) else 'missing')

    def key(self, name: str, other: Digest) -> Digest:
        """The key of a stage this one is built from."""
        return self._put(name, 'stage %s %s' % (other.stage, other.hexdigest()))

    def hexdigest(self) -> str:
        return self._hash.copy().hexdigest()

    def short(self, length: int = 16) -> str:
        return self.hexdigest()[:length]
