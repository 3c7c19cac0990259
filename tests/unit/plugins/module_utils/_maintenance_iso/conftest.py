# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the maintenance_iso backend tests: a private copy of the collection's maintenance OS sources."""

from __future__ import annotations

import shutil
import typing as t
from pathlib import Path

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.settings import spec_from_params

# tests/unit/plugins/module_utils/_maintenance_iso/conftest.py -> the collection
COLLECTION_ROOT = Path(__file__).resolve().parents[5]
IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '*.egg-info')


@pytest.fixture
def collection_root() -> Path:
    return COLLECTION_ROOT


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """maintenance_os/ and common/ of this collection, copied: tests edit them."""
    root = tmp_path / 'src'
    for name in ('maintenance_os', 'common'):
        shutil.copytree(COLLECTION_ROOT / name, root / name, ignore=IGNORE, symlinks=True)
    return root


@pytest.fixture
def params(src: Path, tmp_path: Path) -> dict[str, t.Any]:
    """Module parameters of a Debian build into tmp_path (out/, cache/)."""
    return {'base': 'debian', 'src': str(src), 'dest': str(tmp_path / 'out'), 'cache_dir': str(tmp_path / 'cache'),
            'mirror': 'http://deb.example.org/debian'}


@pytest.fixture
def make_spec(params: dict[str, t.Any]) -> t.Callable[..., t.Any]:
    def make(**overrides: t.Any) -> t.Any:
        return spec_from_params(dict(params, **overrides))
    return make
