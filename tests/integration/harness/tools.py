# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the maintenance OS tool entrypoints (python3 -m l3mtools.<step>) as their containers would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

from .playbook import COLLECTION_ROOT

TOOLS_PATH = COLLECTION_ROOT / 'maintenance_os' / 'tools'


OCI_STAND_IN = '''"""Test stand-in for plugins/module_utils/_oci.py: same two functions, reading a local file instead of a registry."""
import json, os, shutil, tarfile


def _record(*call):
    with open(os.environ['OCI_STAND_IN_LOG'], 'a') as handle:
        handle.write(json.dumps(call) + '\\n')


def pull_and_unpack(reference, dest_dir, **kwargs):
    _record('pull_and_unpack', reference, dest_dir)
    with tarfile.open(os.environ['OCI_STAND_IN_SOURCE']) as tar:
        tar.extractall(dest_dir, filter='tar')


def pull_blob_to_file(reference, path, **kwargs):
    _record('pull_blob_to_file', reference, path)
    shutil.copyfile(os.environ['OCI_STAND_IN_SOURCE'], path)
'''


def tools_with_oci_stand_in(dest: Path) -> Path:
    """A copy of l3mtools whose _oci.py is OCI_STAND_IN.

    The shared OCI code lands separately (it is imported, not written, by the image steps); until then
    this checks the steps' side of the contract: which function they call with which arguments, and
    what they do around it.  Returns the directory to use as the tools path.
    """
    shutil.copytree(TOOLS_PATH / 'l3mtools', dest / 'l3mtools', ignore=shutil.ignore_patterns('__pycache__'))
    (dest / 'l3mtools' / '_oci.py').write_text(OCI_STAND_IN)
    return dest


def run_tool(step: str, run_dir: Path, env: t.Mapping[str, str], timeout: float = 300, tools_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PYTHONPATH=str(tools_path or TOOLS_PATH), PROVISION_RUN_DIR=str(run_dir))
    environment.update(env)
    return subprocess.run([sys.executable, '-m', 'l3mtools.' + step], env=environment, capture_output=True, text=True, timeout=timeout, check=False)


def import_tools() -> None:
    """Make ``import l3mtools`` work in the test process (for steps whose OCI fetch is not run here)."""
    if str(TOOLS_PATH) not in sys.path:
        sys.path.insert(0, str(TOOLS_PATH))
