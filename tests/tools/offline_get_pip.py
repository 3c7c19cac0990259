# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Let ansible-test bootstrap pip where only the package index is reachable.

ansible-test creates its sanity (and --venv) virtual environments without pip and bootstraps pip with
a get-pip script downloaded from ci-files.testing.ansible.com, cached as
``~/.ansible/test/cache/get_pip_<version>.py`` (ansible_test/_util/target/setup/requirements.py).
This writes a stand-in under that name that installs pip with ``ensurepip`` (no network), upgrades it
to the version ansible-test pins from the package index, and drops setuptools/wheel when asked to, as
get-pip.py would.  Run it with the Python that has ansible-core installed.  Idempotent.
"""

from __future__ import annotations

import os
import sys

MARKER = '# l3metal.provision offline get-pip stand-in'

STAND_IN = MARKER + '''
import os, subprocess, sys

def run(*args):
    env = dict(os.environ, PIP_ROOT_USER_ACTION='ignore', PIP_DISABLE_PIP_VERSION_CHECK='1')
    return subprocess.call([sys.executable] + list(args), env=env)

def has(name):
    return subprocess.call([sys.executable, '-c', 'import ' + name], stderr=subprocess.DEVNULL) == 0

argv = sys.argv[1:]
drop = [name for name, flag in (('setuptools', '--no-setuptools'), ('wheel', '--no-wheel')) if flag in argv]
pip_args = [a for a in argv if a not in ('--no-setuptools', '--no-wheel')]
had = dict((name, has(name)) for name in drop)
if run('-m', 'ensurepip') != 0:
    sys.exit('offline get-pip: ensurepip failed (install python3-venv)')
if run('-m', 'pip', 'install', '--quiet', *pip_args) != 0:
    sys.stderr.write('offline get-pip: could not install %s from the package index; keeping the bundled pip\\n' % ' '.join(pip_args))
for name in drop:
    if not had[name] and has(name):
        run('-m', 'pip', 'uninstall', '--yes', '--quiet', name)
sys.exit(run('-m', 'pip', '--version'))
'''


def pinned_pip_versions() -> set[str]:
    from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS  # pylint: disable=import-outside-toplevel
    from ansible_test._internal.python_requirements import get_venv_packages  # pylint: disable=import-outside-toplevel

    class _Python:  # get_venv_packages() only reads .version
        def __init__(self, version: str) -> None:
            self.version = version

    return {get_venv_packages(_Python(version))['pip'] for version in SUPPORTED_PYTHON_VERSIONS}  # type: ignore[arg-type]


def main() -> int:
    try:
        versions = pinned_pip_versions()
    except ImportError as exc:
        print('offline_get_pip: ansible-test is not importable with %s: %s' % (sys.executable, exc), file=sys.stderr)
        return 1
    for version in sorted(versions):
        path = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % version.replace('.', '_'))
        current = None
        if os.path.exists(path):
            with open(path, encoding='utf-8', errors='replace') as handle:
                current = handle.read()
        if current == STAND_IN:
            state = 'up to date'
        elif current is not None and not current.startswith(MARKER):
            state = 'kept (a real get-pip script is cached)'
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + '.offline-tmp'
            with open(tmp, 'w', encoding='utf-8') as handle:
                handle.write(STAND_IN)
            os.replace(tmp, path)
            state = 'written'
        print('offline_get_pip: %s: %s' % (path, state))
    return 0


if __name__ == '__main__':
    sys.exit(main())
