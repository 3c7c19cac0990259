# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""meta/execution-environment.yml: ``ansible-builder create`` makes the build context of an AWX execution environment,
and ansible-builder's own introspection finds the collection's requirements in the installed tarball.

Only the build context is checked: building the image (``ansible-builder build``) needs the base image
quay.io/centos/centos:stream9, which cannot be pulled on the project's test machines (no container registry access), so
whether dnf finds the bindep packages and pip the wheels in that image is not tested here. 7 s at load 4, 14 s at load 10.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.playbook import ansible_env

BIN = Path(sys.executable).parent
# the third-party packages the modules and module_utils import, and the receiver's when it runs from the EE
MODULE_PACKAGES = {'jsonschema', 'fastjsonschema', 'pycdlib', 'PyYAML', 'requests', 'sushy', 'aiohttp'}
SYSTEM_PACKAGES = {'mtools', 'xorriso'}


def names(lines: list[str]) -> set[str]:
    return {line.split('#')[0].strip().split('[')[0].split('>')[0].split('<')[0].split('=')[0].strip() for line in lines}


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith('#')]


def test_ansible_builder_create_and_introspection(tmp_path):
    env = ansible_env(tmp_path)
    # a checkout after `make build`: the EE definition with its meta/ files, the tarball next to galaxy.yml
    checkout = tmp_path / 'checkout'
    shutil.copytree(COLLECTION_ROOT / 'meta', checkout / 'meta')
    build = subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(checkout), str(COLLECTION_ROOT)],
                           env=env, capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    version = yaml.safe_load((COLLECTION_ROOT / 'galaxy.yml').read_text())['version']
    tarball = checkout / ('l3metal-provision-%s.tar.gz' % version)
    assert tarball.is_file(), list(checkout.iterdir())

    context = tmp_path / 'context'
    create = subprocess.run([str(BIN / 'ansible-builder'), 'create', '-f', str(checkout / 'meta' / 'execution-environment.yml'), '-c', str(context)],
                            env=env, capture_output=True, text=True, check=False)
    assert create.returncode == 0, create.stdout + create.stderr
    assert 'Complete!' in create.stdout and 'No matches' not in create.stdout + create.stderr, create.stdout + create.stderr
    built = context / '_build'

    # the collection: the very tarball, named by the galaxy requirements the galaxy stage installs (version in step)
    copied = built / 'collections' / tarball.name
    assert hashlib.sha256(copied.read_bytes()).digest() == hashlib.sha256(tarball.read_bytes()).digest()
    galaxy = yaml.safe_load((built / 'requirements.yml').read_text())
    assert galaxy == {'collections': [{'name': 'collections/' + tarball.name, 'type': 'file'}]}
    # Python and system requirements: regular files (a symlink would dangle in the context), what the modules need
    for name in ('requirements.txt', 'bindep.txt'):
        assert not (built / name).is_symlink() and (built / name).read_text() == (COLLECTION_ROOT / name).read_text()
    python = lines(built / 'requirements.txt')
    assert MODULE_PACKAGES <= names(python), python
    assert SYSTEM_PACKAGES <= names(lines(built / 'bindep.txt'))
    containerfile = (context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    # introspection drops ansible-core from requirements: the EE installs the same pin itself
    core = [line for line in python if line.startswith('ansible-core')]
    assert core and 'ARG ANSIBLE_INSTALL_REFS="%s ansible-runner>=2.4,<2.5"' % core[0].split('#')[0].strip() in containerfile, containerfile
    assert ('introspect.py introspect --user-pip=requirements.txt --user-bindep=bindep.txt' in containerfile
            and 'ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml' in containerfile)

    # (--force: ansible-galaxy skips a collection it finds on ANSIBLE_COLLECTIONS_PATH, here the layout copy)
    # what the image build does with the installed collection: ansible-builder's introspect.py (from the context) reads
    # meta/execution-environment.yml of the installed tarball, relative to the collection root (root symlinks -> meta/)
    installed = tmp_path / 'installed'
    install = subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '--offline', '--force', '-p', str(installed), str(tarball)],
                             env=env, capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    introspect = subprocess.run([sys.executable, str(built / 'scripts' / 'introspect.py'), 'introspect', str(installed)],
                                env=env, capture_output=True, text=True, check=False)
    assert introspect.returncode == 0, introspect.stdout + introspect.stderr
    found = yaml.safe_load(introspect.stdout)
    from_collection = [line for line in found['python'] if line.endswith('# from collection l3metal.provision')]
    # introspection leaves out what ansible-core brings (ansible-core itself, PyYAML)
    assert names(from_collection) == MODULE_PACKAGES - {'PyYAML'}, found
    assert SYSTEM_PACKAGES <= names([line for line in found['system'] if line.endswith('# from collection l3metal.provision')]), found
