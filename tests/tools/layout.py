# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mirror the checkout into <dest>/ansible_collections/l3metal/provision, where ansible-test and
Python imports (ansible_collections.l3metal.provision...) expect a collection to live.

Files come from ``git ls-files`` (tracked plus untracked-but-not-ignored, so new files are tested
before they are committed); outside a git checkout the tree is walked with the same exclusions as
.gitignore's main entries.  Only changed files are copied, symlinks stay symlinks, files that
disappeared from the checkout disappear from the copy, and ansible-test's own ``tests/output`` is
kept.  A copy, not a symlink: ansible-test resolves the real path of the current directory.

The copy gets an empty git repository of its own: ansible-test looks for ``.git`` upwards from the
collection root and lists files with ``git ls-files --cached --others --exclude-standard``; without
it, it would find the checkout's repository, in which the copy is ignored, and test nothing.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys

SKIP_DIRS = {'.git', '.venv', '.build', '.cache', '__pycache__', '.mypy_cache', '.ruff_cache', '.pytest_cache', '.hypothesis'}
KEEP_IN_DEST = ('tests/output', '.git')


def list_files(src: str) -> list[str]:
    if os.path.exists(os.path.join(src, '.git')) and shutil.which('git'):  # a worktree's .git is a file
        out = subprocess.run(['git', '-C', src, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                             check=True, stdout=subprocess.PIPE).stdout
        return sorted({name for name in out.decode('utf-8').split('\0') if name and os.path.lexists(os.path.join(src, name))})
    found = []
    for root, dirs, files in os.walk(src):
        rel_root = os.path.relpath(root, src)
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and os.path.join(rel_root, d).replace('./', '', 1) not in KEEP_IN_DEST]
        for name in files:
            if not name.endswith('.pyc'):
                found.append(os.path.normpath(os.path.join(rel_root, name)))
    return sorted(found)


def same(src: str, dst: str) -> bool:
    if os.path.islink(src) or os.path.islink(dst):
        return os.path.islink(src) and os.path.islink(dst) and os.readlink(src) == os.readlink(dst)
    if not os.path.isfile(dst):
        return False
    st_src, st_dst = os.stat(src), os.stat(dst)
    return st_src.st_mode == st_dst.st_mode and filecmp.cmp(src, dst, shallow=False)


def sync(src: str, dest: str) -> int:
    wanted = list_files(src)
    copied = 0
    for rel in wanted:
        s, d = os.path.join(src, rel), os.path.join(dest, rel)
        if same(s, d):
            continue
        os.makedirs(os.path.dirname(d), exist_ok=True)
        if os.path.lexists(d):
            os.unlink(d)
        if os.path.islink(s):
            os.symlink(os.readlink(s), d)
        else:
            shutil.copy2(s, d)
        copied += 1
    wanted_set = set(wanted)
    removed = 0
    for root, dirs, files in os.walk(dest, topdown=True):
        rel_root = os.path.relpath(root, dest)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel_root, d)) not in KEEP_IN_DEST]
        for name in files:
            rel = os.path.normpath(os.path.join(rel_root, name))
            if rel not in wanted_set and '__pycache__' not in rel.split(os.sep):
                os.unlink(os.path.join(root, name))
                removed += 1
    for root, _dirs, _files in os.walk(dest, topdown=False):
        rel_root = os.path.relpath(root, dest)
        if rel_root != '.' and not rel_root.startswith(KEEP_IN_DEST) and not os.listdir(root):
            os.rmdir(root)
    print('layout: %d files in %s (%d copied, %d removed)' % (len(wanted), dest, copied, removed))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dest', help='directory that receives ansible_collections/l3metal/provision')
    parser.add_argument('--src', default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    args = parser.parse_args()
    target = os.path.join(os.path.abspath(args.dest), 'ansible_collections', 'l3metal', 'provision')
    os.makedirs(target, exist_ok=True)
    if not os.path.exists(os.path.join(target, '.git')):
        subprocess.run(['git', 'init', '-q', target], check=True)
    return sync(os.path.abspath(args.src), target)


if __name__ == '__main__':
    sys.exit(main())
