# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the OCI suites: real distribution registries (Debian ``docker-registry``) on 127.0.0.1."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .registry import Registry


@pytest.fixture
def registry(tmp_path: Path) -> t.Iterator[Registry]:
    """Plain HTTP, no auth, deletes enabled, storage in the test's temp dir."""
    with Registry(tmp_path / 'registry') as running:
        yield running


@pytest.fixture
def auth_registry(tmp_path: Path) -> t.Iterator[Registry]:
    """HTTPS with a per-test CA (``ca_path``) and htpasswd Basic auth (``testuser``/``testpass``)."""
    with Registry(tmp_path / 'registry-auth', auth='htpasswd', tls=True) as running:
        yield running


@pytest.fixture
def token_registry(tmp_path: Path) -> t.Iterator[Registry]:
    """HTTPS with the Bearer token flow: the registry sends clients to a token service that checks credentials."""
    with Registry(tmp_path / 'registry-token', auth='token', tls=True) as running:
        yield running
