# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection builds into a tarball that installs, and ansible-doc renders every module from it."""

from __future__ import annotations

import json
import subprocess
import tarfile

from l3metal_lab.paths import COLLECTION_ROOT

from l3metal_lab.playbook import ansible_env


def test_build_install_and_document_every_module(tmp_path):
    env = ansible_env(tmp_path)
    build = subprocess.run(['ansible-galaxy', 'collection', 'build', '--output-path', str(tmp_path), str(COLLECTION_ROOT)],
                           env=env, capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    tarballs = list(tmp_path.glob('l3metal-provision-*.tar.gz'))
    assert len(tarballs) == 1
    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
    assert 'galaxy.yml' not in names and 'MANIFEST.json' in names
    assert not [name for name in names if name.startswith(('tests/', 'bench/', '.venv', '.build'))]

    install_root = tmp_path / 'installed'
    install = subprocess.run(['ansible-galaxy', 'collection', 'install', '--offline', '--force', '-p', str(install_root), str(tarballs[0])],
                             env=env, capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (install_root / 'ansible_collections' / 'l3metal' / 'provision' / 'MANIFEST.json').is_file(), install.stdout

    # only the installed copy: no PYTHONPATH pointing at the source tree, not run from inside it
    env['ANSIBLE_COLLECTIONS_PATH'] = str(install_root)
    env.pop('PYTHONPATH', None)
    modules = sorted(path.stem for path in (COLLECTION_ROOT / 'plugins' / 'modules').glob('*.py'))
    listing = subprocess.run(['ansible-doc', '-t', 'module', '-l', 'l3metal.provision', '-j'], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=False)
    assert listing.returncode == 0, listing.stderr
    assert sorted(name.split('.')[-1] for name in json.loads(listing.stdout)) == modules
    for module in modules:
        doc = subprocess.run(['ansible-doc', 'l3metal.provision.' + module], env=env, cwd=tmp_path, capture_output=True, text=True, check=False)
        assert doc.returncode == 0, doc.stderr
        assert 'EXAMPLES' in doc.stdout and 'RETURN VALUES' in doc.stdout, doc.stdout[:500]
        assert 'WARNING' not in doc.stderr, doc.stderr
