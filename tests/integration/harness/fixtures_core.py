# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures every integration suite can use: ports, the file server, the playbook runner."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .httpserver import FileServer
from .playbook import COLLECTION_ROOT, PlaybookResult, run_playbook
from .ports import free_port


@pytest.fixture
def unused_port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()


@pytest.fixture
def file_server(tmp_path: Path) -> t.Iterator[FileServer]:
    """A Range-capable static HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``."""
    server = FileServer(tmp_path / 'www').start()
    yield server
    server.stop()


@pytest.fixture
def collection_root() -> Path:
    """Root of the collection under test (inside ansible_collections/l3metal/provision)."""
    return COLLECTION_ROOT


class PlaybookRunner(t.Protocol):
    def __call__(self, playbook: t.Any, extra_vars: t.Mapping[str, t.Any] | None = ..., check: bool = ..., diff: bool = ...,
                 **kwargs: t.Any) -> PlaybookResult: ...


@pytest.fixture
def ansible_playbook(tmp_path: Path) -> PlaybookRunner:
    """Run a playbook against localhost with this collection on the path; see ``harness.playbook.run_playbook``."""
    work_dir = tmp_path / 'ansible'

    def run(playbook: t.Any, extra_vars: t.Mapping[str, t.Any] | None = None, check: bool = False, diff: bool = False,
            **kwargs: t.Any) -> PlaybookResult:
        return run_playbook(playbook, work_dir, extra_vars=extra_vars, check=check, diff=diff, **kwargs)

    return run
