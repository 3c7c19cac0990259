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

Generated here, not committed: Ansible ships a module only with what lies under ``plugins/module_utils``,
so the shared packages of ``common/`` (``VENDORED``) are copied there byte for byte (community.docker
vendors docker-py as ``_api/`` the same way).  Only each ``__init__.py`` is written empty, because
ansible-test's ``empty-init`` sanity test requires that; the package docstring lives in ``common/``.
``tests/unit/plugins/module_utils/test_vendored.py`` checks the copies are identical.

With ``--pth``, run from the development virtualenv, the layout's ``ansible_collections`` is also put on
that virtualenv's import path (``l3metal-layout.pth`` in its site-packages), the way the runtime packages
are installed editable there: the lab, the demo and the benches import the collection's module_utils
without changing ``sys.path`` themselves.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import sysconfig

SKIP_DIRS = {'.git', '.venv', '.build', '.cache', '__pycache__', '.mypy_cache', '.ruff_cache', '.pytest_cache', '.hypothesis'}
KEEP_IN_DEST = ('tests/output', '.git')
# common/<package> -> plugins/module_utils/<copy>: the code shared with the receiver and the maintenance OS.
VENDORED = {'common/l3metal_contract': 'plugins/module_utils/_contract', 'common/l3metal_oci': 'plugins/module_utils/_oci'}


def vendored_files(src: str) -> dict[str, str]:
    """{path in the layout: path in the checkout} of the generated module_utils copies (``''``: an empty __init__.py)."""
    files = {}
    for package, copy in VENDORED.items():
        for name in sorted(os.listdir(os.path.join(src, package))):
            if name.endswith('.py'):
                files[os.path.join(copy, name)] = '' if name == '__init__.py' else os.path.join(package, name)
    return files


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


def write_generated(dest: str, rel: str, content: bytes) -> bool:
    path = os.path.join(dest, rel)
    try:
        with open(path, 'rb') as handle:
            if handle.read() == content:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(content)
    return True


def sync(src: str, dest: str) -> int:
    wanted = list_files(src)
    generated = vendored_files(src)
    clash = sorted(set(wanted) & set(generated))
    if clash:
        print('layout: %s exist in the checkout but are generated from common/; remove them' % ', '.join(clash), file=sys.stderr)
        return 1
    copied = 0
    for rel, origin in generated.items():
        content = b''
        if origin:
            with open(os.path.join(src, origin), 'rb') as handle:
                content = handle.read()
        copied += write_generated(dest, rel, content)
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
    wanted_set = set(wanted) | set(generated)
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
    print('layout: %d files in %s (%d generated from common/, %d copied, %d removed)' % (len(wanted_set), dest, len(generated), copied, removed))
    return 0


def write_pth(dest: str) -> None:
    if sys.prefix == sys.base_prefix:
        raise SystemExit('layout: --pth must run with the development virtualenv\'s python (make layout)')
    path = os.path.join(sysconfig.get_paths()['purelib'], 'l3metal-layout.pth')
    line = os.path.abspath(dest) + '\n'
    if not os.path.isfile(path) or open(path, encoding='utf-8').read() != line:
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('dest', help='directory that receives ansible_collections/l3metal/provision')
    parser.add_argument('--src', default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    parser.add_argument('--pth', action='store_true', help="put DEST on this virtualenv's import path")
    args = parser.parse_args()
    target = os.path.join(os.path.abspath(args.dest), 'ansible_collections', 'l3metal', 'provision')
    os.makedirs(target, exist_ok=True)
    if not os.path.exists(os.path.join(target, '.git')):
        subprocess.run(['git', 'init', '-q', target], check=True)
    if args.pth:
        write_pth(args.dest)
    return sync(os.path.abspath(args.src), target)


if __name__ == '__main__':
    sys.exit(main())
