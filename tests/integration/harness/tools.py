# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the maintenance OS tool entrypoints (python3 -m l3mtools.<step>) as their containers would."""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
from pathlib import Path

from .playbook import COLLECTION_ROOT

TOOLS_PATH = COLLECTION_ROOT / 'maintenance_os' / 'tools'


def run_tool(step: str, run_dir: Path, env: t.Mapping[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PYTHONPATH=str(TOOLS_PATH), PROVISION_RUN_DIR=str(run_dir))
    environment.update(env)
    return subprocess.run([sys.executable, '-m', 'l3mtools.' + step], env=environment, capture_output=True, text=True, timeout=timeout, check=False)


def import_tools() -> None:
    """Make ``import l3mtools`` work in the test process (for steps whose OCI fetch is not run here)."""
    if str(TOOLS_PATH) not in sys.path:
        sys.path.insert(0, str(TOOLS_PATH))
